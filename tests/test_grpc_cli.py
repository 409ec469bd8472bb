"""`evdsearch serve` and `evdsearch search` end to end: ready line, tables, JSON, clear one-line failures, SIGTERM."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_engine_support import png_bytes, serving

from evdsearch.engine.grpc_server.server import RunningServer, build_server
from evdsearch.engine.rewriters.template import TemplateRewriter
from evdsearch.engine.rewriting import QueryRewriter
from evdsearch.engine.search import SearchEngine

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys, evdsearch.cli as c; sys.exit(c.main(sys.argv[1:]))"


@pytest.fixture(scope="module")
def server(engine: SearchEngine) -> RunningServer:
    with serving(engine) as running:
        yield running


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_search_prints_a_table_and_the_explanation(server: RunningServer, evd) -> None:  # noqa: ANN001
    code, out, _ = evd("search", "two tomatoes next to a school bus", "--server", server.address, "-k", "3",
                       "--explain")
    assert code == 0
    assert "3 hits for 'two tomatoes next to a school bus'" in out and ".png" in out
    assert "entities: tomato ('tomatoes' at 4-12), school bus ('school bus' at 23-33)" in out
    assert "- a red round fruit  [encyclopedia, 0.90]" in out
    assert "rewritten query: two tomatoes next to a school bus, tomato which is" in out
    assert re.search(r"timings: rewrite [\d.]+ ms, encode [\d.]+ ms, search [\d.]+ ms, hydrate [\d.]+ ms", out)


def test_search_json_image_and_modes(server: RunningServer, evd, tmp_path: Path) -> None:  # noqa: ANN001
    code, out, _ = evd("search", "a panda", "--server", server.address, "-k", "2", "--mode", "original",
                       "--alpha", "0.2", "--json")
    hits = json.loads(out)["hits"]
    assert code == 0 and len(hits) == 2 and hits[0]["score"] == pytest.approx(hits[0]["original_score"], abs=1e-6)
    image = tmp_path / "q.png"
    image.write_bytes(png_bytes("yellow"))
    code, out, _ = evd("search", "--image", str(image), "--server", server.address, "-k", "4", "--json")
    assert code == 0 and len(json.loads(out)["hits"]) == 4


def test_refused_connection_is_one_line(evd) -> None:  # noqa: ANN001
    code, out, err = evd("search", "a tomato", "--server", f"127.0.0.1:{_free_port()}", "--timeout", "5")
    assert code == 3 and out == ""
    assert err.count("\n") == 1 and err.startswith("evdsearch: error: cannot reach a server at 127.0.0.1:")


def test_server_side_refusals_are_one_line(server: RunningServer, evd) -> None:  # noqa: ANN001
    code, _, err = evd("search", "a tomato", "--server", server.address, "-k", "0")
    assert code == 2 and err == "evdsearch: error: the server refused the request: k must be an integer from 1 " \
                                "to 1000, got 0\n"
    code, _, err = evd("search", "--server", server.address)
    assert code == 2 and "give a text query, --terms JSON, --image PATH or --like ID" in err


class _SlowRewriter(TemplateRewriter):
    def rewrite_batch(self, items):  # noqa: ANN001, ANN201
        time.sleep(1.0)
        return super().rewrite_batch(items)


def test_deadline_is_one_line(engine: SearchEngine, evd) -> None:  # noqa: ANN001
    slow = SearchEngine(engine.store, engine.clip, QueryRewriter(engine.kb, _SlowRewriter(), cache_size=0),
                        engine.config, kb=engine.kb)
    running = build_server(slow, port=0)
    running.start()
    try:
        code, _, err = evd("search", "a tomato", "--server", running.address, "--timeout", "0.3")
    finally:
        running.stop(0)
    assert code == 3 and err == (f"evdsearch: error: no answer from {running.address} within 0.3 s "
                                 f"(deadline exceeded); try a larger --timeout\n")


@pytest.mark.slow
def test_serve_prints_ready_line_and_stops_on_sigterm(parts: tuple[Path, Path]) -> None:
    index, kb = parts
    proc = subprocess.Popen([sys.executable, "-c", CLI, "serve", "--index", str(index), "--kb", str(kb),
                             "--port", "0", "--device", "cpu", "--workers", "2"],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = proc.stdout.readline()
        second = proc.stdout.readline()
        assert "serving evdsearch.v1.SearchService on 127.0.0.1:" in first, first + proc.stderr.read()
        assert "12 images, 4 entities, rewriter template" in first
        port = int(re.search(r"127\.0\.0\.1:(\d+)", first).group(1))
        assert second.startswith("try: evdsearch search 'a photo of a ") and f"--server localhost:{port}" in second
        search = subprocess.run([sys.executable, "-c", CLI, "search", "a tomato", "--server", f"localhost:{port}",
                                 "-k", "2", "--json"], cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert search.returncode == 0 and len(json.loads(search.stdout)["hits"]) == 2, search.stderr
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        rest = proc.stdout.read()
        assert "SIGTERM received, draining" in rest and "server stopped" in rest
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
