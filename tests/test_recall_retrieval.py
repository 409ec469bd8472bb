"""`evdsearch bench retrieval` end to end on a toy Karpathy set: report, per-kind rows, embedding cache."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_clip_train import make_toy_karpathy


@pytest.fixture(scope="module")
def toy_test(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("toy_bench")
    make_toy_karpathy(root, {"train": 1, "test": 2})
    return root


def test_bench_retrieval_cli(toy_test: Path, tiny_clip_dir: Path, tmp_path: Path, capsys) -> None:
    from evdsearch.cli import main

    out = tmp_path / "r.json"
    argv = ["bench", "retrieval", "--data", str(toy_test), "--model", str(tiny_clip_dir), "--json", str(out),
            "--device", "cpu"]
    assert main(argv) == 0
    printed = capsys.readouterr().out
    assert "unseen_entity" in printed and str(out) in printed
    report = json.loads(out.read_text())
    assert report["n_images"] == 16 and report["n_captions"] == 80 and report["image_cache"] == "miss"
    original = report["modes"]["original"]
    assert set(original["by_kind"]) == {"attribute", "seen_entity", "unseen_entity"}
    assert original["by_kind"]["attribute"]["n"] == 48
    assert 0.0 <= original["t2i"]["R@1"] <= original["t2i"]["R@5"] <= original["t2i"]["R@10"] <= 1.0
    assert "| original | attribute | 48 |" in out.with_suffix(".md").read_text()
    assert out.with_suffix(".png").stat().st_size > 5_000 and str(out.with_suffix(".png")) in printed
    # second run: image embeddings come from the cache, same numbers
    assert main(argv) == 0
    again = json.loads(out.read_text())
    assert again["image_cache"] == "hit" and again["modes"] == report["modes"]


def test_bench_retrieval_real_data_form(toy_test: Path, tiny_clip_dir: Path, tmp_path: Path) -> None:
    from evdsearch.benchmarks.retrieval_cli import config_from_args
    from evdsearch.cli import build_parser
    from evdsearch.evaluation.retrieval import run_retrieval

    args = build_parser().parse_args(
        ["bench", "retrieval", "--dataset", "karpathy-json", str(toy_test / "dataset_toy.json"), "--images",
         str(toy_test), "--model", str(tiny_clip_dir), "--device", "cpu", "--cache-dir", str(tmp_path)])
    report = run_retrieval(config_from_args(args))
    assert report["dataset"] == "karpathy-json" and report["n_images"] == 16


def test_bench_matches_engine_encoders(toy_test: Path, tiny_clip_dir: Path) -> None:
    """The batched image path equals LoadedClip.encode_pil_images (what the indexer uses)."""
    import numpy as np
    from PIL import Image

    from evdsearch.clip_models import load_clip
    from evdsearch.evaluation.retrieval import RetrievalConfig, embed_images, load_split

    cfg = RetrievalConfig(model=str(tiny_clip_dir), data=str(toy_test), device="cpu")
    dataset, images = load_split(cfg)
    clip = load_clip(cfg.model, device="cpu")
    fast = embed_images(clip, dataset, images[:4], batch_size=3, workers=1)
    reference = clip.encode_pil_images([Image.open(dataset.image_path(im)) for im in images[:4]])
    assert np.allclose(fast, reference, atol=1e-5)


def test_unknown_mode_is_a_user_error(toy_test: Path, tiny_clip_dir: Path) -> None:
    from evdsearch.errors import InvalidInput
    from evdsearch.evaluation.retrieval import RetrievalConfig, run_retrieval

    with pytest.raises(InvalidInput, match="unknown mode"):
        run_retrieval(RetrievalConfig(model=str(tiny_clip_dir), data=str(toy_test), modes=("nope",)))


def test_rewriting_modes_use_engine_rewriter(toy_test: Path, tiny_clip_dir: Path, tmp_path: Path) -> None:
    from evdsearch.evaluation.retrieval import RetrievalConfig, run_retrieval
    from evdsearch.indexer.kb import KnowledgeBase

    kb_dir = tmp_path / "kb"
    with KnowledgeBase.open(kb_dir, readonly=False) as kb:
        kb.import_records([{"entity": "tomato", "description": "a red round fruit", "source": "test",
                            "score": 1.0, "kind": "visual"}])
    cfg = RetrievalConfig(model=str(tiny_clip_dir), data=str(toy_test), device="cpu", kb=str(kb_dir),
                          modes=("original", "rewritten", "fused"), alpha=0.0, cache_dir=str(tmp_path))
    report = run_retrieval(cfg)
    # 2 of the 5 captions of the red circles (1 image in 8) mention "tomato"
    assert report["rewriting"]["rewritten_fraction"] == pytest.approx(2 / 5 / 8)
    assert report["modes"]["fused"] == report["modes"]["original"]  # alpha 0: the original query
    assert report["modes"]["rewritten"]["by_kind"]["attribute"] == report["modes"]["original"]["by_kind"]["attribute"]
