"""`evdsearch bench serve` against a real in-process gRPC server, and the clip-back harness against a fake one."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from test_engine_support import build_index, build_kb, open_engine, serving

from evdsearch.cli import main


@pytest.fixture(scope="module")
def server_address(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> str:
    root = tmp_path_factory.mktemp("bench_serve")
    with open_engine(build_index(root, tiny_clip_dir), build_kb(root / "kb")) as engine, \
            serving(engine, max_workers=4) as running:
        yield f"127.0.0.1:{running.port}"


def test_bench_serve_end_to_end(server_address: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "serve", "--server", server_address, "--concurrency", "1,2", "--duration", "1",
                 "--warmup", "0.2", "--mode", "fused,original", "--out", str(tmp_path)])
    assert code == 0
    assert "serve.md" in capsys.readouterr().out
    result = json.loads((tmp_path / "serve.json").read_text())
    assert result["server_info"]["index_size"] == "12"  # int64 fields come back as strings from MessageToDict
    cells = [(r["mode"], r["concurrency"]) for r in result["results"]]
    assert cells == [("fused", 1), ("fused", 2), ("original", 1), ("original", 2)]
    for row in result["results"]:
        assert row["requests"] > 0 and row["errors"] == 0 and row["qps"] > 0
        assert 0 < row["latency_ms"]["p50"] <= row["latency_ms"]["p95"] <= row["latency_ms"]["p99"]
        assert set(row["stages_ms"]) == {"rewrite", "encode", "search", "hydrate"}
    md = (tmp_path / "serve.md").read_text()
    assert "| fused | 2 |" in md and "Server stage breakdown" in md
    assert (tmp_path / "serve.png").stat().st_size > 1000


def test_explain_every_asks_only_every_nth_request(server_address: str) -> None:
    from evdsearch.benchmarks.serve_load import grpc_caller

    call, close = grpc_caller(server_address, "fused", explain_every=3)
    try:
        results = [call(f"a red circle {i}") for i in range(6)]
    finally:
        close()
    assert all(r.ok for r in results)
    assert [bool(r.stages_ms) for r in results] == [True, False, False, True, False, False]


def test_bench_serve_refuses_remote_and_missing_servers(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bench", "serve", "--server", "192.0.2.1:50051", "--duration", "1"]) == 2
    assert "not a loopback address" in capsys.readouterr().err
    assert main(["bench", "serve", "--server", "127.0.0.1:1", "--duration", "1", "--timeout", "0.5"]) == 2
    assert "no gRPC server answers" in capsys.readouterr().err


class _FakeClipBack(BaseHTTPRequestHandler):
    """Answers like clip-back: /indices-list and /knn-service."""

    def _send(self, body: object) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self) -> None:
        self._send(["shapes"])

    def do_POST(self) -> None:
        query = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        assert query["indice_name"] == "shapes" and query["modality"] == "image"
        self._send([{"id": i, "similarity": 0.5} for i in range(query["num_images"])])

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def fake_clip_back() -> str:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _FakeClipBack)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"127.0.0.1:{httpd.server_port}"
    httpd.shutdown()


def test_bench_serve_clip_back_protocol(fake_clip_back: str, tmp_path: Path) -> None:
    code = main(["bench", "serve", "--protocol", "clip-back", "--server", fake_clip_back,
                 "--concurrency", "1,2", "--duration", "0.5", "--warmup", "0", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "serve.json").read_text())
    assert result["server_info"] == {"server": "clip-back", "indices": ["shapes"]}
    assert [r["mode"] for r in result["results"]] == ["original", "original"]
    assert all(r["requests"] > 0 and r["errors"] == 0 and r["stages_ms"] == {} for r in result["results"])


def test_bench_serve_against_a_peer_interleaves_rounds_and_reports_ratios(
        server_address: str, fake_clip_back: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["bench", "serve", "--server", server_address, "--peer", fake_clip_back, "--rounds", "2",
                 "--concurrency", "1,2", "--duration", "0.4", "--warmup", "0", "--out", str(tmp_path)])
    assert code == 0
    log = capsys.readouterr().out
    assert log.index("evdsearch fused x1 (round 1)") < log.index("clip-back original x1 (round 1)") \
        < log.index("evdsearch fused x2 (round 1)") < log.index("evdsearch fused x1 (round 2)")
    result = json.loads((tmp_path / "serve.json").read_text())
    assert result["peer_info"]["server"] == "clip-back"
    cells = [(r["server"], r["concurrency"], r["round"]) for r in result["results"]]
    assert cells == [("evdsearch", 1, 1), ("evdsearch", 1, 2), ("evdsearch", 2, 1), ("evdsearch", 2, 2),
                     ("clip-back", 1, 1), ("clip-back", 1, 2), ("clip-back", 2, 1), ("clip-back", 2, 2)]
    assert [(c["mode"], c["concurrency"], c["rounds"]) for c in result["comparison"]] == [("fused", 1, 2),
                                                                                       ("fused", 2, 2)]
    for c in result["comparison"]:
        assert c["qps_ratio"] == pytest.approx(c["qps"] / c["peer_qps"])
    md = (tmp_path / "serve.md").read_text()
    assert "evdsearch vs clip-back" in md and "| evdsearch | fused | 2 | 2 |" in md


def test_bench_serve_peer_flag_mixups_are_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["bench", "serve", "--server", "127.0.0.1:1", "--duration", "1"]
    assert main([*argv, "--peer", "127.0.0.1:2", "--protocol", "clip-back"]) == 2
    assert "drop --protocol clip-back" in capsys.readouterr().err
    assert main([*argv, "--rounds", "0"]) == 2
    assert "--rounds must be at least 1" in capsys.readouterr().err


def test_comparison_takes_medians_over_rounds() -> None:
    from evdsearch.benchmarks.serve_compare import compare

    def row(server: str, mode: str, level: int, qps: float, p50: float, errors: int = 0) -> dict:
        return {"server": server, "mode": mode, "concurrency": level, "qps": qps, "errors": errors,
                "latency_ms": {"p50": p50, "p99": 2 * p50}}

    rows = [row("evdsearch", "fused", 1, 10, 100), row("evdsearch", "fused", 1, 30, 50),
            row("evdsearch", "fused", 1, 20, 80, errors=1), row("clip-back", "original", 1, 10, 100),
            row("clip-back", "original", 1, 10, 120), row("evdsearch", "fused", 4, 5, 10)]  # no peer cell at 4
    (only,) = compare(rows, "evdsearch", "clip-back")
    assert (only["qps"], only["peer_qps"], only["qps_ratio"]) == (20, 10, 2.0)
    assert (only["p50_ms"], only["peer_p50_ms"], only["p50_ratio"]) == (80, 110, pytest.approx(80 / 110))
    assert (only["errors"], only["peer_errors"], only["rounds"]) == (1, 0, 3)


def test_workloads_cold_is_unique_and_warm_is_a_zipf_log() -> None:
    from collections import Counter

    from evdsearch.benchmarks.workloads import make_workloads, zipf_log
    from evdsearch.errors import InvalidInput

    queries = [f"q{i}" for i in range(50)]
    log = zipf_log(queries, size=4000, exponent=1.1)
    counts = Counter(log)
    assert counts["q0"] > counts["q1"] > counts["q9"] > 0 and len(counts) > 25  # a head and a long tail
    assert zipf_log(queries, size=4000) == log  # seeded
    cycle, cold, warm = make_workloads(["cycle", "cold", "warm"], queries)
    assert (cycle.unique, cold.unique, warm.unique) == (False, True, False) and cold.queries == queries
    with pytest.raises(InvalidInput, match="--workloads"):
        make_workloads(["hot"], queries)


def test_cold_cells_of_one_run_never_repeat_a_text() -> None:
    """Every cell of a run draws from one count: a fresh count per cell sent round 2 round 1's texts again,
    so the server's caches answered what was measured as cold."""
    from evdsearch.benchmarks.serve_load import CallResult, Target, run_serve_benchmark
    from evdsearch.benchmarks.workloads import Workload

    seen: list[str] = []
    lock = threading.Lock()

    def call(text: str) -> CallResult:
        with lock:
            seen.append(text)
        return CallResult(True)

    target = Target("t", lambda mode: (call, lambda: None), ["fused"])
    run_serve_benchmark([target], [1, 2], 0.05, ["a", "b"], warmup_s=0.01, rounds=2,
                        workloads=[Workload("cold", ["a", "b"], unique=True)], log=lambda _line: None)
    assert len(seen) > 8 and len(set(seen)) == len(seen)


def test_bench_serve_two_servers_and_workloads(server_address: str, fake_clip_back: str, tmp_path: Path) -> None:
    code = main(["bench", "serve", "--server", server_address, "--also", f"nobatch={server_address}",
                 "--peer", fake_clip_back, "--workloads", "cold,warm", "--mode", "fused,original",
                 "--explain-modes", "fused", "--concurrency", "1", "--duration", "0.3", "--warmup", "0",
                 "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "serve.json").read_text())
    assert {(r["server"], r["workload"]) for r in result["results"]} == {
        (s, w) for s in ("evdsearch", "nobatch", "clip-back") for w in ("cold", "warm")}
    assert all(bool(r["stages_ms"]) == (r["mode"] == "fused") for r in result["results"] if r["server"] != "clip-back")
    assert {(c["server"], c["workload"], c["mode"]) for c in result["comparison"]} == {
        (s, w, m) for s in ("evdsearch", "nobatch") for w in ("cold", "warm") for m in ("fused", "original")}
    assert 0.0 <= result["config"]["entity_query_share"] <= 1.0
    md = (tmp_path / "serve.md").read_text()
    assert "outside the text encoder" in md


def test_bench_serve_baseline_ratios_mode_by_mode(server_address: str, tmp_path: Path,
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    from evdsearch.benchmarks.serve_compare import against_baseline

    code = main(["bench", "serve", "--server", server_address, "--label", "quality", "--also",
                 f"template={server_address}", "--baseline", "template", "--mode", "fused,original",
                 "--concurrency", "1", "--duration", "0.3", "--warmup", "0", "--out", str(tmp_path)])
    assert code == 0
    result = json.loads((tmp_path / "serve.json").read_text())
    assert {(c["server"], c["mode"], c["baseline"]) for c in result["baseline_comparison"]} == {
        ("quality", "fused", "template"), ("quality", "original", "template")}
    assert set(result["server_configs"]) == {"quality", "template"}
    assert result["server_configs"]["quality"]["rewriter"] == "template"
    md = (tmp_path / "serve.md").read_text()
    assert "server vs template" in md and "What each server serves" in md
    assert main(["bench", "serve", "--server", server_address, "--baseline", "nobody", "--duration", "0.1"]) == 2
    assert "--baseline nobody names no server" in capsys.readouterr().err

    def row(server: str, mode: str, qps: float, p50: float) -> dict:
        return {"server": server, "mode": mode, "concurrency": 16, "qps": qps, "errors": 0,
                "latency_ms": {"p50": p50, "p99": 2 * p50}}

    (only,) = against_baseline([row("pro", "fused", 70, 15), row("template", "fused", 100, 10),
                                row("template", "original", 120, 8)], "template")
    assert (only["server"], only["qps_ratio"], only["p50_ratio"]) == ("pro", 0.7, 1.5)


def test_serve_plot_reads_at_a_glance() -> None:
    """One row of panels per workload, log latency axes, the ratio against the peer, legends outside the data."""
    from evdsearch.benchmarks.serve_compare import compare
    from evdsearch.benchmarks.serve_plot import plot

    def row(server: str, workload: str, mode: str, level: int, p50: float) -> dict:
        return {"server": server, "workload": workload, "mode": mode, "concurrency": level, "round": 1,
                "qps": 1000 / p50, "errors": 0, "latency_ms": {"p50": p50, "p99": 3 * p50},
                "stages_ms": {"encode": p50 / 2, "search": 1.0} if server == "evdsearch" else {}}

    rows = [row(server, workload, mode, level, base * level)
            for workload in ("cold", "warm") for level in (1, 4, 16)
            for server, mode, base in (("evdsearch", "fused", 5), ("evdsearch", "original", 4),
                                       ("clip-back", "original", 8)) if server == "evdsearch" or mode == "original"]
    result = {"config": {"peer": "127.0.0.1:2", "concurrency": [1, 4, 16], "workloads": ["cold", "warm"]},
              "results": rows, "comparison": compare(rows, "evdsearch", "clip-back")}
    fig = plot(result)
    fig.canvas.draw()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:6] == ["cold workload: latency", "cold workload: throughput", "cold workload: latency / peer's",
                          "warm workload: latency", "warm workload: throughput", "warm workload: latency / peer's"]
    assert all(ax.get_yscale() == "log" for ax in fig.axes[:6])
    assert titles[6].startswith("server stages")
    renderer = fig.canvas.get_renderer()
    (legend,) = fig.legends
    box = legend.get_window_extent(renderer)
    assert not any(box.overlaps(ax.get_window_extent(renderer)) for ax in fig.axes)  # outside every panel
    labels = [t.get_text() for t in fig.axes[6].get_yticklabels()]  # stage bars: one label per row, horizontal
    assert labels == ["evdsearch · cold · fused", "evdsearch · cold · original", "evdsearch · warm · fused",
                      "evdsearch · warm · original"]
