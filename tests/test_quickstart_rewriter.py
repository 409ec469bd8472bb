"""The quickstart serves the trained rewriter: a shipped folder pinned to the quickstart CLIP is used only on that
CLIP (one line otherwise), exported to ONNX, and the KB is calibrated with it; `serve` refuses a pinned rewriter
on another CLIP in one line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evdsearch import quickstart_rewriter as qr
from evdsearch.artifacts import REWRITER_CLIP_PIN, REWRITER_META
from evdsearch.clip_models import CKPT_WEIGHTS, file_sha256
from evdsearch.errors import IncompatibleArtifact


def _pinned(folder: Path, fingerprint: str, kb_sha: str | None = None) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REWRITER_META).write_text("{}")
    (folder / REWRITER_CLIP_PIN).write_text(json.dumps({"clip_fingerprint": fingerprint, "kb_source": "kb.jsonl",
                                                       "kb_source_sha256": kb_sha, "remake": "REMAKE"}))
    return folder


def test_check_pin_refuses_another_clip(tmp_path: Path) -> None:
    from evdsearch.engine.rewriters.pin import check_pin

    folder = _pinned(tmp_path / "rw", "a" * 64)
    check_pin(folder, "a" * 64)
    check_pin(tmp_path, "b" * 64)  # no pin: any CLIP
    with pytest.raises(IncompatibleArtifact, match=r"trained for CLIP aaaaaaaaaaaa… .*not this CLIP bbbbbbbbbbbb…"):
        check_pin(folder, "b" * 64)
    (folder / REWRITER_CLIP_PIN).write_text("[]")
    with pytest.raises(IncompatibleArtifact, match="names no clip_fingerprint"):
        check_pin(folder, "a" * 64)


def test_shipped_rewriter_only_on_its_clip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    clip = tmp_path / "clip"
    clip.mkdir()
    (clip / CKPT_WEIGHTS).write_bytes(b"weights")
    kb = tmp_path / "kb.jsonl"
    kb.write_text('{"entity": "tomato", "description": "red"}\n')
    lines: list[str] = []
    monkeypatch.setattr(qr, "SHIPPED", tmp_path / "none")
    assert qr.shipped_rewriter(clip, kb, lines.append) is None and "no trained rewriter ships" in lines[-1]
    monkeypatch.setattr(qr, "SHIPPED", _pinned(tmp_path / "other", "f" * 64))
    assert qr.shipped_rewriter(clip, kb, lines.append) is None and "trained for CLIP ffffffffffff" in lines[-1]
    shipped = _pinned(tmp_path / "ours", file_sha256(clip / CKPT_WEIGHTS), file_sha256(kb))
    monkeypatch.setattr(qr, "SHIPPED", shipped)
    assert qr.shipped_rewriter(clip, kb, lines.append) == shipped and "serving it, ensembled" in lines[-1]
    kb.write_text('{"entity": "tomato", "description": "a red round fruit"}\n')
    assert qr.shipped_rewriter(clip, kb, lines.append) == shipped and "another knowledge base" in lines[-1]
    installed = qr.install_shipped(tmp_path / "work")
    assert (installed / REWRITER_CLIP_PIN).read_bytes() == (shipped / REWRITER_CLIP_PIN).read_bytes()


def test_the_shipped_rewriter_is_pinned_to_the_shipped_descriptions() -> None:
    """What ships is whole: weights and tokenizer, a pin naming a CLIP, and the KB file the quickstart imports."""
    from evdsearch import quickstart as qs

    record = json.loads((qr.SHIPPED / REWRITER_CLIP_PIN).read_text(encoding="utf-8"))
    assert len(record["clip_fingerprint"]) == 64 and record["kb_source"] == qs.shipped_descriptions().name
    assert record["kb_source_sha256"] == file_sha256(qs.shipped_descriptions())
    assert all((qr.SHIPPED / name).is_file() for name in (REWRITER_META, "model.safetensors", "tokenizer.json"))


def test_kb_source_is_llm_encyclopedia_or_a_file(tmp_path: Path) -> None:
    """One --kb-source: llm (default, the shipped LLM descriptions), encyclopedia, or a JSONL path; kb.source
    records which (a file with its hash), so another source, or an edited file, re-imports."""
    from evdsearch import quickstart as qs
    from evdsearch.cli import build_parser
    from evdsearch.errors import UserError

    layout = qs.QuickstartLayout(tmp_path / "qs")
    assert build_parser().parse_args(["quickstart"]).kb_source == "llm"
    assert qs.kb_source_file(layout, "llm") == qs.shipped_descriptions() and qs.shipped_descriptions().is_file()
    assert qs.kb_source_file(layout, "encyclopedia") == layout.world / "encyclopedia.jsonl"
    own = tmp_path / "mine.jsonl"
    with pytest.raises(UserError, match="no such file"):
        qs.kb_source_file(layout, str(own))
    own.write_text('{"entity": "tomato", "description": "red"}\n')
    assert qs.kb_source_file(layout, str(own)) == own
    record = qs._source_record(layout, str(own))
    assert record.startswith(str(own.resolve())) and file_sha256(own) in record
    own.write_text('{"entity": "tomato", "description": "a red round fruit"}\n')
    assert qs._source_record(layout, str(own)) != record
    assert qs._source_record(layout, "llm") == "llm"


def _tiny_rewriter(out: Path) -> Path:
    from evdsearch.training.rewriter.model import ScratchT5Config, scratch_model

    texts = ["rewrite: a tomato next to a school bus | tomato: a small red circle", "a small red circle"] * 5
    cfg = ScratchT5Config(vocab_size=120, d_model=32, d_ff=64, d_kv=8, num_heads=2, num_layers=1,
                          num_decoder_layers=1, dropout_rate=0.0)
    model, tokenizer = scratch_model(texts, cfg, seed=0)
    model.generation_config.max_new_tokens = 8
    model.eval().save_pretrained(out)
    tokenizer.save_pretrained(out)
    (out / REWRITER_META).write_text("{}")
    return out


@pytest.mark.slow
def test_quickstart_serves_the_shipped_rewriter(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("onnxruntime")
    from evdsearch.cli import main
    from evdsearch.engine.api import EngineConfig
    from evdsearch.engine.search import SearchEngine
    from evdsearch.search_api import SearchRequest
    from evdsearch.training.rewriter.ship import ship_rewriter

    workdir = tmp_path / "qs"
    argv = ["quickstart", "--workdir", str(workdir), "--small", "--steps", "2", "--no-serve"]
    monkeypatch.setattr(qr, "SHIPPED", tmp_path / "shipped")
    assert main(argv) == 0
    assert "serving the template rewriter" in capsys.readouterr().out
    ship_rewriter(_tiny_rewriter(tmp_path / "trained"), qr.SHIPPED, workdir / "clip",
                  workdir / "world" / "encyclopedia.jsonl")
    assert main(argv) == 0
    out = capsys.readouterr().out
    served = workdir / "rewriter-shipped"
    assert "export the rewriter to ONNX (cached decoder): done" in out
    assert "trained on another knowledge base (encyclopedia.jsonl); it still serves" in out  # the KB is llm
    assert f"calibrate per-entity fusion weights (adaptive fusion, rewriter {served.name}): done" in out
    assert f"--rewriter {served}" in out
    config = EngineConfig(index_dir=str(workdir / "index"), kb_dir=str(workdir / "kb"), rewriter=str(served))
    with SearchEngine.open(config) as engine:
        assert engine.rewriter.rewriter.cached and engine.alpha_policy.adaptive
        response = engine.search(SearchRequest(text="a tomato next to a school bus", k=5, explain=True))
    assert response.explanation.rewrite_variants  # the trained rewrite, ensembled with the template's
    (served / REWRITER_CLIP_PIN).write_text(json.dumps({"clip_fingerprint": "0" * 64}))
    with pytest.raises(IncompatibleArtifact, match="was trained for CLIP 000000000000"):
        SearchEngine.open(config)
