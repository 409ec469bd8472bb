"""`evdsearch demo` from the command line: flag mix-ups and dead servers as one line, a real page, clean stop."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import urllib.request
from pathlib import Path

import pytest
from test_demo_support import free_port

import evdsearch.cli as cli

ROOT = Path(__file__).resolve().parent.parent
CLI = "import sys, evdsearch.cli as c; sys.exit(c.main(sys.argv[1:]))"


@pytest.mark.parametrize(("argv", "message"), [
    ((), "give --index INDEX_DIR [--kb KB_DIR] to search in-process, or --server HOST:PORT"),
    (("--server", "localhost:1", "--index", "x"), "give either --server HOST:PORT or --index INDEX_DIR, not both"),
    (("--server", "localhost:1", "--kb", "x"),
     "--kb goes with --index; with --server the server's knowledge base is used"),
    (("--index", "x", "-k", "0"), "-k must be from 1 to 48, got 0"),
])
def test_flag_mixups_are_one_line(evd, argv: tuple[str, ...], message: str) -> None:  # noqa: ANN001
    code, out, err = evd("demo", *argv)
    assert (code, out, err) == (2, "", f"evdsearch: error: {message}\n")


def test_dead_server_is_one_line(evd) -> None:  # noqa: ANN001
    code, _, err = evd("demo", "--server", f"127.0.0.1:{free_port()}", "--timeout", "3")
    assert code == 3 and err.count("\n") == 1 and err.startswith("evdsearch: error: cannot reach a server at")


def test_missing_index_is_one_line(evd, tmp_path: Path) -> None:  # noqa: ANN001
    code, _, err = evd("demo", "--index", str(tmp_path / "nope"), "--device", "cpu")
    assert code == 2 and err.count("\n") == 1 and str(tmp_path / "nope") in err


def test_busy_port_is_one_line(evd, parts: tuple[Path, Path]) -> None:  # noqa: ANN001
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        code, _, err = evd("demo", "--index", str(parts[0]), "--device", "cpu", "--port", str(port))
    last = err.splitlines()[-1]  # after the demo's server's own warning (no --kb)
    assert code == 2 and last.startswith(f"evdsearch: error: cannot serve the demo on 127.0.0.1:{port}")


def test_importing_the_demo_seam_leaves_gradio_out() -> None:
    code = ("import sys, evdsearch.engine, evdsearch.demo.cli, evdsearch.demo.backend, evdsearch.demo.results, evdsearch.demo.render, "
            "evdsearch.demo.examples; print('gradio' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


@pytest.mark.slow
def test_demo_serves_the_page_and_stops_on_sigterm(parts: tuple[Path, Path]) -> None:
    index, kb = parts
    port = free_port()
    proc = subprocess.Popen([sys.executable, "-c", CLI, "demo", "--index", str(index), "--kb", str(kb),
                             "--device", "cpu", "--port", str(port)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "GRADIO_ANALYTICS_ENABLED": "False"})
    try:
        ready = proc.stdout.readline()
        assert ready == f"evdsearch: demo on http://127.0.0.1:{port}/ (engine: local serve); Ctrl-C stops it\n", \
            ready + proc.stderr.read()
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/config", timeout=30) as answer:
            config = json.load(answer)
        assert any(d.get("api_name") == "search" for d in config["dependencies"])
        assert "12 images" in json.dumps(config)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def test_description_options_reach_the_engine(parts: tuple[Path, Path]) -> None:
    from evdsearch.demo.cli import open_backend

    index, kb = parts
    from evdsearch.search_api import SearchRequest

    args = cli.build_parser().parse_args(["demo", "--index", str(index), "--kb", str(kb), "--device", "cpu",
                                          "--prefer-sources", "ift, llm", "--max-descriptions", "1"])
    backend = open_backend(args)  # the demo's own `serve`, started with these flags
    try:
        assert backend.where == "local serve"
        (answer,) = backend.search([SearchRequest(text="a tomato", k=2, explain=True)])
        assert {e: [d.text for d in found] for e, found in answer.explanation.descriptions.items()} == {
            "tomato": ["glossy skin"]}  # one description, from the preferred source first
    finally:
        backend.close()
    assert backend._proc.poll() == 0  # the server drained and stopped on close


def test_max_descriptions_below_one_is_one_line(evd, parts: tuple[Path, Path]) -> None:  # noqa: ANN001
    code, _, err = evd("demo", "--index", str(parts[0]), "--max-descriptions", "0")
    assert (code, err) == (2, "evdsearch: error: --max-descriptions must be at least 1, got 0\n")


def test_engine_flags_are_forwarded_to_serve() -> None:
    from evdsearch.demo.local_serve import serve_args

    demo = cli.build_parser().parse_args(["demo", "--index", "I", "--kb", "K", "--rewriter", "none", "--device", "cpu",
                                          "--prefer-sources", "ift,llm", "--max-descriptions", "2",
                                          "--fixed-alpha", "0.25", "--no-template-ensemble"])
    serve = cli.build_parser().parse_args(["serve", *serve_args(demo)])
    for name in ("index", "kb", "rewriter", "device", "prefer_sources", "max_descriptions", "fixed_alpha",
                 "template_ensemble"):
        assert getattr(serve, name) == getattr(demo, name), name
