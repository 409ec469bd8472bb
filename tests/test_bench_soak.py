"""`evdsearch bench soak` against a real in-process gRPC server with token auth (its own RSS sampled)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from test_engine_support import build_index, build_kb, open_engine

from evdsearch.cli import main


@pytest.fixture(scope="module")
def server_address(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[str, Path]:
    from evdsearch.engine.grpc_server.security import TokenStore
    from evdsearch.engine.grpc_server.server import build_server

    root = tmp_path_factory.mktemp("bench_soak")
    tokens = root / "tokens.txt"
    tokens.write_text("soak-token\n")
    with open_engine(build_index(root, tiny_clip_dir), build_kb(root / "kb")) as engine:
        running = build_server(engine, port=0, max_workers=4, tokens=TokenStore(tokens))
        running.start()
        yield f"127.0.0.1:{running.port}", tokens
        running.stop(0)


def test_bench_soak_end_to_end(server_address: tuple[str, Path], tmp_path: Path,
                               capsys: pytest.CaptureFixture[str]) -> None:
    address, tokens = server_address
    code = main(["bench", "soak", "--server", address, "--clients", "4", "--duration", "2", "--warmup", "0.5",
                 "--window", "1", "--server-pid", str(os.getpid()), "--token-file", str(tokens),
                 "--out", str(tmp_path)])
    assert code == 0
    out = capsys.readouterr().out
    assert "soak.md" in out and "soak.png" in out
    result = json.loads((tmp_path / "soak.json").read_text())
    assert result["requests"] > 0 and result["errors"] == 0 and result["qps"] > 0
    assert [w["t_s"] for w in result["windows"]] == [1.0, 2.0]
    assert sum(w["requests"] for w in result["windows"]) == result["requests"]
    rss = result["rss"]
    assert rss["start_mb"] > 0 and rss["peak_mb"] >= rss["end_mb"] and rss["drift_pct"] is not None
    assert len(result["rss_samples"]) >= 2
    assert (tmp_path / "soak.png").stat().st_size > 1000


def test_bench_soak_without_the_token_stops_before_loading(server_address: tuple[str, Path], tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("EVDSEARCH_TOKEN", raising=False)
    address, _ = server_address
    assert main(["bench", "soak", "--server", address, "--clients", "2", "--duration", "0.5", "--warmup", "0",
                 "--out", str(tmp_path)]) == 2
    assert "UNAUTHENTICATED" in capsys.readouterr().err
    assert not (tmp_path / "soak.json").exists()


def test_bench_soak_checks_its_flags(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "soak", "--server", "192.0.2.1:50051"]) == 2
    assert "not a loopback address" in capsys.readouterr().err


def test_bench_soak_reports_the_generation_answering(server_address: tuple[str, Path], tmp_path: Path) -> None:
    address, tokens = server_address
    assert main(["bench", "soak", "--server", address, "--clients", "2", "--duration", "2", "--warmup", "0",
                 "--window", "1", "--info-every", "0.2", "--token-file", str(tokens), "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "soak.json").read_text())
    assert all(len(w["servers"]) == 1 and w["generation"] == 1 for w in result["windows"])
    assert result["info_errors"] == {} and result["failures"]["first_s"] is None
    assert result["p99_last_over_first"] > 0 and result["t0_epoch"] > 0


def test_soak_recorder_keeps_bounded_memory() -> None:
    from evdsearch.benchmarks.soak_record import LatencyHistogram, SoakRecorder

    recorder = SoakRecorder(t0=0.0, window_s=1.0, duration_s=100.0)
    for i in range(100_000):  # 1,000 requests a second for 100 s
        recorder.record(i / 1000, 0.010 + (i % 100) / 10_000, ok=i % 5000 != 0, code="UNAVAILABLE")
    open_windows = [w for w in recorder.windows if w.latencies is not None]
    assert len(open_windows) <= 3  # only the newest windows keep raw latencies
    rows = recorder.rows()
    assert sum(r["requests"] for r in rows) == 100_000 and sum(r["errors"] for r in rows) == 20
    assert abs(rows[0]["p50"] - 15.0) < 0.2 and recorder.failed["first_s"] == 0.01
    hist = LatencyHistogram()
    for ms in range(1, 1001):
        hist.add(ms / 1000)
    assert abs(hist.percentile_ms(50) - 500) / 500 < 0.02 and abs(hist.percentile_ms(99) - 990) / 990 < 0.02


@pytest.mark.slow  # each write is a real `evdsearch` process (torch import): about a minute here
def test_mixed_soak_writes_and_reloads_while_searching(tmp_path: Path, tiny_clip_dir: Path, tiny_world: Path) -> None:
    from PIL import Image
    from test_engine_support import KB_RECORDS

    from evdsearch.engine.grpc_server.server import build_server
    from evdsearch.indexer.kb_publish import import_new_version
    from evdsearch.versioned import version_ids

    index, kb = build_index(tmp_path, tiny_clip_dir), tmp_path / "kb"
    import_new_version(kb, KB_RECORDS)
    extra = tmp_path / "extra"
    extra.mkdir()
    for i, color in enumerate(("red", "blue", "green")):
        Image.new("RGB", (32, 32), color).save(extra / f"extra{i}.png")
    with open_engine(index, kb) as engine:
        running = build_server(engine, port=0, max_workers=4)
        running.start()
        try:
            code = main(["bench", "soak", "--server", running.address, "--clients", "4", "--duration", "75",
                         "--warmup", "0", "--window", "15", "--server-pid", str(os.getpid()), "--mixed",
                         "--index", str(index), "--kb", str(kb), "--add-images", str(extra),
                         "--calibrate-data", str(tiny_world), "--calibrate-model", str(tiny_clip_dir),
                         "--calibrate-every", "1", "--writer-pause", "0", "--out", str(tmp_path / "out")])
        finally:
            running.stop(0)
    assert code == 0
    result = json.loads((tmp_path / "out" / "soak.json").read_text())
    ops = result["writes"]["ops"]
    print({name: (op["runs"], op["failed"], round(op["mean_s"], 1)) for name, op in ops.items()})
    assert result["errors"] == 0 and result["info_errors"] == {} and result["writes"]["failed"] == 0
    assert {"index add", "index delete", "kb import", "reload"} <= set(ops)
    assert max(w["generation"] for w in result["windows"]) >= 3  # the reloads were served
    assert len(version_ids(index)) <= 2 and len(version_ids(kb)) <= 2
