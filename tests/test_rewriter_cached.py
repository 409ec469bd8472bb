"""The cached ONNX decoder (key/value cache, rows leaving the batch, prompt-lookup drafts) gives the greedy
tokens of the uncached decoder and of transformers' `generate`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
torch = pytest.importorskip("torch")

from evdsearch.engine.rewriters.prompt import format_rewriter_input  # noqa: E402

EXAMPLES = [
    ("a tomato on a table", {"tomato": ["a red round fruit"]}, "a tomato on a table, a red round fruit"),
    ("a school bus in the rain", {"school bus": ["a long yellow vehicle"]},
     "a school bus in the rain, a long yellow vehicle with black windows"),
    ("two zebras", {"zebra": ["a striped horse"]}, "two striped horses"),
]
MORE = [("a cat next to a tomato and a school bus on a table in the rain",
         {"tomato": ["a red round fruit", "grown in gardens"], "school bus": ["a long yellow vehicle"]}),
        ("zebra", {"zebra": ["a black and white striped horse with a mane"]}),
        ("a photo", {"photo": ["a picture"]})]


@pytest.fixture(scope="module")
def rewriter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny 2-layer T5 overfitted on EXAMPLES (long, copy-heavy generations), exported with both decoders."""
    from test_rewriter_support import train_exported_rewriter

    return train_exported_rewriter(tmp_path_factory.mktemp("rewriter"), EXAMPLES, layers=2)


def _prompts() -> list[str]:
    return [format_rewriter_input(q, e) for q, e, _ in EXAMPLES] + [format_rewriter_input(q, e) for q, e in MORE]


def test_cached_batch_equals_uncached_and_torch(rewriter_dir: Path) -> None:
    from transformers import AutoModelForSeq2SeqLM, AutoTokenizer

    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter

    runner = OnnxSeq2SeqRewriter(rewriter_dir, device="cpu")
    assert runner.cached
    prompts = _prompts()
    cached = runner.generate_ids(prompts)
    plain = runner.generate_ids(prompts, cached=False)
    assert np.array_equal(cached, plain)
    tokenizer = AutoTokenizer.from_pretrained(rewriter_dir)
    model = AutoModelForSeq2SeqLM.from_pretrained(rewriter_dir).eval()
    batch = tokenizer(prompts, return_tensors="pt", padding=True)
    with torch.no_grad():
        reference = model.generate(**batch, max_new_tokens=24, do_sample=False, num_beams=1).numpy()
    assert np.array_equal(cached[:, : reference.shape[1]], reference)
    assert (cached[:, reference.shape[1]:] == runner.ids.pad).all()
    texts = tokenizer.batch_decode(cached, skip_special_tokens=True)
    assert texts[:3] == [t for _, _, t in EXAMPLES]
    assert runner.decoder_cache.stats.calls <= 24  # one decoder call per step, not one per row


def test_one_row_speculative_equals_greedy_and_accepts_drafts(rewriter_dir: Path) -> None:
    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter

    runner = OnnxSeq2SeqRewriter(rewriter_dir, device="cpu")
    plain = OnnxSeq2SeqRewriter(rewriter_dir, device="cpu", draft_tokens=0)
    for prompt in _prompts():
        spec = runner.generate_ids([prompt])
        assert np.array_equal(spec, plain.generate_ids([prompt])), prompt
        assert np.array_equal(spec, runner.generate_ids([prompt], cached=False)), prompt
        for steps in (1, 3, 7):  # a max_new_tokens bound cuts drafts exactly where greedy stops
            assert np.array_equal(runner.generate_ids([prompt], steps), plain.generate_ids([prompt], steps))
    stats = runner.decoder_cache.stats
    assert stats.accepted > 0 and stats.calls < plain.decoder_cache.stats.calls  # copies took fewer calls


def test_rewrite_batch_order_and_rows_leaving_the_batch(rewriter_dir: Path) -> None:
    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter

    runner = OnnxSeq2SeqRewriter(rewriter_dir, device="cpu")
    items = [(q, e) for q, e, _ in EXAMPLES] + MORE
    batch = runner.rewrite_batch(items)
    assert batch == [runner.rewrite(q, e) for q, e in items]  # sorted by length inside, answered in order
    assert batch[:3] == [t for _, _, t in EXAMPLES]


def test_draft_from_prompt() -> None:
    from evdsearch.engine.rewriters.onnx_cached import DraftSource, draft_from_prompt

    prompt = np.array([9, 4, 5, 6, 7, 4, 8, 1])
    assert draft_from_prompt(prompt, [3, 4], 2) == [5, 6]  # equally long matches: the earliest (the query)
    assert draft_from_prompt(prompt, [7, 4], 3) == [8, 1]  # the longest match wins
    assert draft_from_prompt(prompt, [2], 3) == []
    assert draft_from_prompt(prompt, [], 3, DraftSource(start=1)) == [4, 5, 6]  # nothing yet: the query
    assert draft_from_prompt(prompt, [9, 4], 5, DraftSource(stops=frozenset({7}))) == [5, 6]  # not past a stop
    assert draft_from_prompt(prompt, [2, 3, 2, 3], 4) == [2, 3]  # a loop in the rewrite copies itself
    assert draft_from_prompt(prompt, [9, 4], 0) == []


def test_batch_rows_finish_speculatively_with_the_same_tokens(rewriter_dir: Path) -> None:
    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter

    runner = OnnxSeq2SeqRewriter(rewriter_dir, device="cpu")
    plain = OnnxSeq2SeqRewriter(rewriter_dir, device="cpu", draft_tokens=0)
    prompts = _prompts()[:3]  # the second rewrite is the longest: it ends alone
    assert np.array_equal(runner.generate_ids(prompts), plain.generate_ids(prompts))
    assert runner.decoder_cache.stats.drafted > 0  # the last row left decoded with drafts


def test_format_1_export_runs_uncached(rewriter_dir: Path, tmp_path: Path) -> None:
    import json
    import shutil

    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter
    from evdsearch.errors import IncompatibleArtifact

    old = tmp_path / "old"
    shutil.copytree(rewriter_dir, old)
    for name in ("encoder_kv.onnx", "decoder_past.onnx"):
        (old / "onnx" / name).unlink()
    meta = json.loads((old / "onnx" / "export.json").read_text())
    (old / "onnx" / "export.json").write_text(json.dumps({**meta, "format_version": 1}))
    runner = OnnxSeq2SeqRewriter(old, device="cpu")
    assert not runner.cached
    assert runner.rewrite(*MORE[0]) == OnnxSeq2SeqRewriter(rewriter_dir, device="cpu").rewrite(*MORE[0])
    with pytest.raises(IncompatibleArtifact, match="no cached decoder"):
        OnnxSeq2SeqRewriter(old, device="cpu", cached=True)


def test_bench_rewrite_latency_reports_cached_and_uncached(rewriter_dir: Path, tiny_world: Path,
                                                           tmp_path: Path) -> None:
    import json

    from evdsearch.benchmarks.rewrite_latency import LatencyConfig, markdown, run_latency
    from evdsearch.indexer.kb import KnowledgeBase

    lines = (tiny_world / "encyclopedia.jsonl").read_text().splitlines()
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records(json.loads(line) for line in lines if line.strip())
    report = run_latency(LatencyConfig(rewriter=str(rewriter_dir), kb=str(tmp_path / "kb"), data=str(tiny_world),
                                       n=0, batch_size=4, threads=1, torch=False, out=str(tmp_path / "out")))
    assert report["queries"] > 4 and report["generated_tokens"] >= report["queries"]
    assert set(report["rewriter"]) == {"onnxruntime", "onnxruntime-cached", "onnxruntime-cached-draft"}
    assert report["same_rewrites"] == {"onnxruntime": 1.0, "onnxruntime-cached": 1.0, "onnxruntime-cached-draft": 1.0}
    assert all(row["ms_per_token"] > 0 for rows in report["rewriter"].values() for row in rows)
    table = markdown(report)
    assert "onnxruntime-cached-draft | 1 |" in table and "ms per token" in table
    assert (tmp_path / "out" / "latency.md").is_file()
