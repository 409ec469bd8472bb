"""`evdsearch bench indexing` end to end with the tiny CLIP; the peer is recorded as not run, with the reason."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_engine_support import write_images

from evdsearch.benchmarks.indexing_throughput import peer_model_spec
from evdsearch.cli import main
from evdsearch.errors import InvalidInput


def test_bench_indexing_ours_and_peer_reason(tmp_path: Path, tiny_clip_dir: Path) -> None:
    write_images(tmp_path / "data")
    code = main(["bench", "indexing", "--images", str(tmp_path / "data" / "images"), "--model", str(tiny_clip_dir),
                 "--device", "cpu", "--workers", "1", "--batch-size", "4", "--peer-venv", str(tmp_path / "no-venv"),
                 "--out", str(tmp_path / "out")])
    assert code == 0
    result = json.loads((tmp_path / "out" / "indexing.json").read_text())
    ours, peer = result["runs"]
    assert ours["status"] == "ok" and ours["images"] == 12 and ours["images_per_s"] > 0
    assert (tmp_path / "out" / "scratch" / "evdsearch-index" / "manifest.json").is_file()
    assert peer["status"] == "not run" and "architecture name" in peer["error"]
    md = (tmp_path / "out" / "indexing.md").read_text()
    assert "| evdsearch index | ok | 12 |" in md and "not run" in md


def test_peer_model_spec(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    weights.write_bytes(b"x")
    assert peer_model_spec("ViT-B-32", str(weights)) == f"open_clip:ViT-B-32/{weights.resolve()}"
    with pytest.raises(InvalidInput, match="--pretrained"):
        peer_model_spec("ViT-B-32", None)
