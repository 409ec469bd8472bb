"""`evdsearch bench index-scale` end to end on a tiny input, and its synthetic data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evdsearch.benchmarks.index_scale import IndexScaleConfig, devices_for
from evdsearch.benchmarks.synthetic_vectors import make_dataset
from evdsearch.cli import main
from evdsearch.errors import InvalidInput


def test_dataset_is_seeded_unit_and_held_out() -> None:
    cfg = IndexScaleConfig(n=500, dim=16, queries=20, clusters=8, latent_dim=4)
    base, queries = make_dataset(cfg)
    again, _ = make_dataset(cfg)
    assert base.shape == (500, 16) and queries.shape == (20, 16) and base.dtype == np.float32
    assert np.allclose(np.linalg.norm(base, axis=1), 1.0, atol=1e-5)
    assert (base == again).all()
    assert not (make_dataset(IndexScaleConfig(n=500, dim=16, queries=20, clusters=8, seed=1))[0] == base).all()
    assert np.abs(queries @ base.T).max() < 0.99999  # queries are not copies of base rows
    iso, _ = make_dataset(IndexScaleConfig(n=50, dim=16, queries=2, clusters=8, latent_dim=0, ambient=0))
    assert iso.shape == (50, 16) and np.allclose(np.linalg.norm(iso, axis=1), 1.0, atol=1e-5)


def test_devices() -> None:
    assert devices_for("cpu") == ["cpu"]
    with pytest.raises(InvalidInput):
        devices_for("tpu")


def test_index_scale_cli_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "index-scale", "--n", "2000", "--dim", "16", "--queries", "50", "--clusters", "16",
                 "--latent-dim", "8", "--factories", "Flat;IVF16,Flat;HNSW8", "--nprobe", "1,4",
                 "--ef-search", "16", "--single-seconds", "0.05", "--threads", "1", "--device", "cpu",
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "index_scale.json" in out and "index_scale.png" in out
    result = json.loads((tmp_path / "index_scale.json").read_text())
    runs = {r["factory"]: r for r in result["runs"]}
    assert set(runs) == {"Flat", "IVF16,Flat", "HNSW8"} and all(r["device"] == "cpu" for r in runs.values())
    assert runs["Flat"]["points"][0]["recall"] == 1.0
    assert [p["params"] for p in runs["IVF16,Flat"]["points"]] == [{"nprobe": 1}, {"nprobe": 4}]
    ivf = runs["IVF16,Flat"]["points"]
    assert 0 < ivf[0]["recall"] <= ivf[1]["recall"] <= 1.0
    for run in runs.values():
        assert run["build_s"] > 0 and run["size_mb"] > 0
        assert all(p["batch_qps"] > 0 and p["single_qps"] > 0 for p in run["points"])
    md = (tmp_path / "index_scale.md").read_text()
    assert "| IVF16,Flat | nprobe=1 |" in md
    assert (tmp_path / "index_scale.png").stat().st_size > 1000


def test_index_scale_rejects_bad_factory(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "index-scale", "--n", "100", "--dim", "8", "--queries", "5", "--factory", "Nonsense42",
                 "--device", "cpu", "--out", str(tmp_path)])
    assert code == 2 and "faiss cannot build index" in capsys.readouterr().err
