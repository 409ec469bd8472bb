"""`evdsearch index` through the CLI entry point: summary, skipped files, --force, user errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from evdsearch import cli


def test_index_command(tmp_path: Path, tiny_clip_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    images = tmp_path / "photos"
    (images / "2024").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(5):
        Image.fromarray(rng.integers(0, 256, (16, 16, 3), dtype=np.uint8)).save(images / "2024" / f"{i}.jpg")
    (images / "broken.png").write_bytes(b"\x89PNG not really")
    args = ["index", str(images), "--out", str(tmp_path / "index"), "--model", str(tiny_clip_dir),
            "--device", "cpu", "--batch-size", "2", "--no-progress"]

    assert cli.main(args) == 0
    out = capsys.readouterr().out
    assert "indexed 5 of 6 images" in out and "skipped 1 unreadable images" in out and "broken.png" in out
    manifest = json.loads((tmp_path / "index" / "manifest.json").read_text())
    assert manifest["count"] == 5 and manifest["model"] == str(tiny_clip_dir.resolve())

    assert cli.main(args) == 2
    assert "already exists; pass --force" in capsys.readouterr().err
    assert cli.main([*args, "--force", "--index-factory", "HNSW32"]) == 0
    assert json.loads((tmp_path / "index" / "manifest.json").read_text())["factory"] == "HNSW32"

    assert cli.main([*args, "--force", "--index-factory", "IVF1024,Flat"]) == 2
    assert "1024 IVF lists but there are only 6 images" in capsys.readouterr().err
    assert cli.main([*args[:2], "--out", str(tmp_path / "other"), "--model", "no-such-model"]) == 2
    assert "unknown CLIP model" in capsys.readouterr().err
    assert cli.main(["index", str(tmp_path / "nowhere"), "--out", str(tmp_path / "x"), "--model", "m"]) == 2
    assert "image source not found" in capsys.readouterr().err
