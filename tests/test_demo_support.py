"""Builders shared by the demo tests: backends over the tiny index + KB (conftest `parts`), the app on a free port.

Plain functions (no fixtures, no tests), like test_engine_support, so each module picks its fixture scope.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry or version check from tests

QUERY = "two tomatoes next to a school bus"


def local_backend(index_dir: Path, kb_dir: Path | None) -> Any:
    """What `demo --index` talks to, built in this process: a GrpcBackend over a loopback server of the engine
    (full paths, as `demo --index` starts it); `.engine` is that engine, and close() stops both."""
    from test_engine_support import open_engine

    from evdsearch.demo.grpc_backend import GrpcBackend
    from evdsearch.engine.grpc_server.server import build_server

    engine = open_engine(index_dir, kb_dir)
    running = build_server(engine, port=0, expose_paths=True)
    running.start()
    backend = GrpcBackend(running.address, timeout_s=60)
    backend.where, backend.engine = "local serve", engine
    close_channel = backend.close

    def close() -> None:
        close_channel()
        running.stop(0)
        engine.close()

    backend.close = close
    return backend


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_app(backend: Any, k: int = 8) -> tuple[Any, str]:
    """The demo over `backend`, serving on a free loopback port in this process; close with app.close()."""
    from evdsearch.demo.app import build_app, launch

    app = build_app(backend, k=k)
    return app, launch(app, host="127.0.0.1", port=free_port(), block=False)
