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
