"""A few SFT and PRO steps on a tiny T5 reduce their losses; the stages write loadable rewriter folders."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")

from evdsearch.engine.rewriters.prompt import format_rewriter_input  # noqa: E402
from evdsearch.training.deqr.io import write_deqr  # noqa: E402
from evdsearch.training.rewriter.config import ProConfig, SftConfig  # noqa: E402
from evdsearch.training.rewriter.data import RankedExample  # noqa: E402
from evdsearch.training.rewriter.model import ScratchT5Config, scratch_model  # noqa: E402

TINY = ScratchT5Config(vocab_size=300, d_model=32, d_ff=64, d_kv=16, num_heads=2, num_layers=1,
                       num_decoder_layers=1, dropout_rate=0.0)
ENTITIES = {"tomato": "a red round fruit", "school bus": "a long yellow vehicle", "zorblax": "a blue striped cube"}


def _records() -> list[dict]:
    records = []
    for entity, desc in ENTITIES.items():
        for place in ("on a table", "in the rain"):
            caption = f"a {entity} {place}"
            cands = [f"{desc} {place}", f"a {entity} {place}, {desc}", caption, f"a {entity} {place}, found in books"]
            records.append({"input": format_rewriter_input(caption, {entity: [desc, "found in books"]}),
                            "caption": caption, "candidates": [{"text": c} for c in cands]})
    return records


@pytest.fixture()
def deqr_dir(tmp_path: Path) -> Path:
    return write_deqr(tmp_path / "deqr", _records())


def _examples() -> list[RankedExample]:
    return [RankedExample(r["input"], [c["text"] for c in r["candidates"]]) for r in _records()]


def _tiny_model(examples: list[RankedExample]):  # noqa: ANN202 - transformers types
    from evdsearch.training.rewriter.sft import tokenizer_texts

    return scratch_model(tokenizer_texts(examples), TINY, seed=0)


def test_sft_steps_reduce_the_loss(tmp_path: Path) -> None:
    from evdsearch.training.rewriter.loop import mean_loss, train_loop
    from evdsearch.training.rewriter.sft import sft_loss_fn

    examples = _examples()
    model, tokenizer = _tiny_model(examples)
    cfg = SftConfig(deqr="", out="", base="scratch", steps=25, batch_size=6, lr=3e-3, warmup=2, progress=False)
    loss = sft_loss_fn(model, tokenizer, cfg, "cpu")
    before = mean_loss(loss, examples, 6)
    train_loop(model, loss, examples, [], cfg, "sft")
    assert mean_loss(loss, examples, 6) < 0.7 * before


def test_pro_steps_reduce_the_loss_and_raise_the_best_candidate() -> None:
    from evdsearch.training.rewriter.loop import mean_loss, train_loop
    from evdsearch.training.rewriter.pro import pro_batch_loss, sequence_logprobs

    examples = _examples()
    model, tokenizer = _tiny_model(examples)
    cfg = ProConfig(deqr="", out="", base="", steps=25, batch_size=6, lr=3e-3, warmup=2, list_size=4, beta=0.1,
                    progress=False)
    rng = random.Random(0)

    def loss(batch):  # noqa: ANN001, ANN202
        return pro_batch_loss(model, tokenizer, batch, cfg, "cpu", rng if torch.is_grad_enabled() else None)

    def best_minus_worst() -> float:
        from evdsearch.training.rewriter.data import tokenize_pairs

        enc = tokenize_pairs(tokenizer, [e.input for e in examples], [c for e in examples for c in e.candidates],
                             64, 64, "cpu")
        with torch.no_grad():
            r = sequence_logprobs(model, enc["input_ids"], enc["attention_mask"], enc["labels"], 4)
        return float((r[:, 0] - r[:, -1]).mean())

    model.eval()
    before, gap_before = mean_loss(loss, examples, 6), best_minus_worst()
    train_loop(model, loss, examples, [], cfg, "pro")
    assert mean_loss(loss, examples, 6) < before
    assert best_minus_worst() > gap_before


def test_stages_write_rewriter_folders(deqr_dir: Path, tmp_path: Path) -> None:
    import json

    from evdsearch.artifacts import REWRITER_META as META_FILE
    from evdsearch.engine.rewriters.seq2seq import Seq2SeqRewriter
    from evdsearch.training.rewriter.pro import train_pro
    from evdsearch.training.rewriter.sft import train_sft

    sft = train_sft(SftConfig(deqr=str(deqr_dir), out=str(tmp_path / "sft"), base="scratch", scratch=TINY, steps=8,
                              batch_size=4, warmup=1, val_fraction=0.2, max_target_tokens=16, device="cpu",
                              progress=False))
    meta = json.loads((sft / META_FILE).read_text())
    assert meta["stage"] == "sft" and meta["result"]["steps_done"] == 8 and meta["result"]["val_examples"] == 1
    pro = train_pro(ProConfig(deqr=str(deqr_dir), out=str(tmp_path / "pro"), base=str(sft), steps=4, batch_size=2,
                              warmup=1, max_target_tokens=16, device="cpu", progress=False))
    assert json.loads((pro / META_FILE).read_text())["stage"] == "pro"
    rewriter = Seq2SeqRewriter(pro, device="cpu")
    assert rewriter.max_new_tokens == 16
    assert isinstance(rewriter.rewrite("a tomato on a table", {"tomato": ["a red round fruit"]}), str)
    with pytest.raises(Exception, match="already exists"):
        train_sft(SftConfig(deqr=str(deqr_dir), out=str(sft), base="scratch", device="cpu"))


def test_an_unknown_t5_name_fails_in_one_line_offline(monkeypatch: pytest.MonkeyPatch) -> None:
    from evdsearch.errors import ModelUnavailable
    from evdsearch.training.rewriter import model as model_module

    monkeypatch.setattr(model_module, "_hub_reachable", lambda: False)
    with pytest.raises(ModelUnavailable, match="offline") as err:
        model_module.load_pretrained("surely-not-cached/t5-nothing")
    assert "\n" not in str(err.value)
