"""ONNX exports agree with torch: the rewriter (same greedy tokens, close logits) and the CLIP text tower."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("onnxruntime")
pytest.importorskip("torch")

from evdsearch.engine.rewriters.prompt import format_rewriter_input  # noqa: E402

EXAMPLES = [
    ("a tomato on a table", {"tomato": ["a red round fruit"]}, "a red round fruit on a table"),
    ("a school bus in the rain", {"school bus": ["a long yellow vehicle"]},
     "a school bus in the rain, a long yellow vehicle with black windows"),
]


@pytest.fixture(scope="module")
def rewriter_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny T5 overfitted on EXAMPLES (so generations are long and meaningful), then exported."""
    from test_rewriter_support import train_exported_rewriter

    return train_exported_rewriter(tmp_path_factory.mktemp("rewriter"), EXAMPLES, layers=1)


def test_onnx_generation_matches_torch(rewriter_dir: Path) -> None:
    from evdsearch.training.export.rewriter_onnx import check_agreement

    prompts = [format_rewriter_input(q, e) for q, e, _ in EXAMPLES]
    prompts.append(format_rewriter_input("two zorblaxes next to a very long wooden table in a garden",
                                         {"zorblax": ["a small blue striped triangle", "lives under bridges"]}))
    agreement = check_agreement(rewriter_dir, prompts)
    assert agreement.same_tokens, (agreement.torch_texts, agreement.onnx_texts)
    assert agreement.max_abs_logit_diff < 1e-3
    assert agreement.torch_texts[:2] == [t for _, _, t in EXAMPLES]


def test_engine_factory_runs_the_export(rewriter_dir: Path) -> None:
    from evdsearch.engine.rewriters import create_rewriter
    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter
    from evdsearch.engine.rewriters.seq2seq import Seq2SeqRewriter

    rewriter = create_rewriter(str(rewriter_dir), device="cpu")
    assert isinstance(rewriter, OnnxSeq2SeqRewriter) and rewriter.providers == ["CPUExecutionProvider"]
    items = [(q, e) for q, e, _ in EXAMPLES]
    assert rewriter.rewrite_batch(items) == Seq2SeqRewriter(rewriter_dir, device="cpu").rewrite_batch(items)
    assert rewriter.rewrite_batch([]) == []


def test_onnx_rewrites_chunk_large_batches(rewriter_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import evdsearch.engine.rewriters.onnx_seq2seq as onnx_seq2seq

    rewriter = onnx_seq2seq.OnnxSeq2SeqRewriter(rewriter_dir, device="cpu")
    items = [(q, e) for q, e, _ in EXAMPLES] * 2
    whole = rewriter.rewrite_batch(items)
    monkeypatch.setattr(onnx_seq2seq, "CHUNK", 3)
    assert rewriter.rewrite_batch(items) == whole == [t for _, _, t in EXAMPLES] * 2


def test_a_stale_export_is_refused(rewriter_dir: Path, tmp_path: Path) -> None:
    import shutil

    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter
    from evdsearch.errors import IncompatibleArtifact

    copy = Path(shutil.copytree(rewriter_dir, tmp_path / "copy"))
    with open(copy / "model.safetensors", "ab") as handle:  # the torch weights change after the export
        handle.write(b"\0")
    with pytest.raises(IncompatibleArtifact, match="stale"):
        OnnxSeq2SeqRewriter(copy, device="cpu")


def test_clip_text_tower_matches_torch(tiny_clip_dir: Path, tmp_path: Path) -> None:
    from evdsearch.clip_models import load_clip
    from evdsearch.training.export.clip_text import OnnxClipText, export_clip_text

    texts = ["a red square", "a tomato, a red round fruit, on a table", "x"]
    onnx = OnnxClipText(export_clip_text(str(tiny_clip_dir), tmp_path / "clip_onnx"), device="cpu")
    expected = load_clip(str(tiny_clip_dir), device="cpu").encode_texts(texts)
    got = onnx.encode_texts(texts)
    assert got.shape == expected.shape and np.abs(got - expected).max() < 1e-4


def test_engine_picks_the_onnx_text_tower_and_ranks_as_torch(tiny_clip_dir: Path, tmp_path: Path) -> None:
    import shutil

    from test_engine_support import build_index, build_kb, open_engine

    from evdsearch.errors import IncompatibleArtifact
    from evdsearch.search_api import SearchRequest
    from evdsearch.training.export.clip_text import export_clip_text

    clip_dir = tmp_path / "clip"
    shutil.copytree(tiny_clip_dir, clip_dir)
    index, kb = build_index(tmp_path / "parts", clip_dir), build_kb(tmp_path / "kb")
    with pytest.raises(IncompatibleArtifact, match="no clip_text.onnx"):  # demanded, none exported yet
        open_engine(index, kb, text_encoder="onnx")
    export_clip_text(str(clip_dir), clip_dir / "onnx")
    request = SearchRequest(text="a tomato next to a school bus", k=5, explain=True)
    with open_engine(index, kb, text_encoder="torch") as torch_engine:
        expected = torch_engine.search(request)
    with open_engine(index, kb) as onnx_engine:  # auto finds CKPT/onnx
        assert hasattr(onnx_engine.clip, "text_encoder")
        got = onnx_engine.search(request)
    assert [h.id for h in got.hits] == [h.id for h in expected.hits]
    assert np.allclose([h.score for h in got.hits], [h.score for h in expected.hits], atol=1e-4)
    meta = clip_dir / "onnx" / "clip_text.json"
    meta.write_text(meta.read_text().replace(expected_fingerprint(meta), "0" * 64))  # a stale export
    with open_engine(index, kb) as engine:
        assert not hasattr(engine.clip, "text_encoder")  # auto: back to torch
    with pytest.raises(IncompatibleArtifact, match="stale"):
        open_engine(index, kb, text_encoder="onnx")
    meta.write_text("{not json")  # a damaged export: a clear refusal, not a crash
    with open_engine(index, kb) as engine:
        assert not hasattr(engine.clip, "text_encoder")
    with pytest.raises(IncompatibleArtifact, match="clip_text.json is missing or not an export's metadata"):
        open_engine(index, kb, text_encoder="onnx")


def expected_fingerprint(meta: Path) -> str:
    import json

    return json.loads(meta.read_text())["clip"]["fingerprint"]


def test_clip_export_of_an_architecture_name_needs_an_output_folder(capsys: pytest.CaptureFixture[str]) -> None:
    from evdsearch.cli import main

    assert main(["train", "export-onnx", "--clip", "ViT-B-32", "--clip-pretrained", "weights.pt"]) != 0
    assert "--clip-out" in capsys.readouterr().err
