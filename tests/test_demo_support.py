"""Builders shared by the demo tests: a tiny index + KB, backends over them, the app on a free loopback port.

Plain functions (no fixtures, no tests), like test_engine_support, so each module picks its fixture scope.
"""

from __future__ import annotations

import os
import socket
from pathlib import Path
from typing import Any

from test_engine_support import build_index, build_kb

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry or version check from tests

QUERY = "two tomatoes next to a school bus"


def build_parts(root: Path, clip_dir: Path) -> tuple[Path, Path]:
    """(index folder of twelve captioned PNGs, KB folder with tomato / school bus / panda / red panda)."""
    return build_index(root, clip_dir), build_kb(root / "kb")


def local_backend(index_dir: Path, kb_dir: Path | None) -> Any:
    from evdsearch.demo.backend import LocalBackend
    from evdsearch.engine.api import EngineConfig

    return LocalBackend.open(EngineConfig(index_dir=str(index_dir), kb_dir=str(kb_dir) if kb_dir else None,
                                          device="cpu"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def launch_app(backend: Any, k: int = 8) -> tuple[Any, str]:
    """The demo over `backend`, serving on a free loopback port in this process; close with app.close()."""
    from evdsearch.demo.app import build_app, launch

    app = build_app(backend, k=k)
    return app, launch(app, host="127.0.0.1", port=free_port(), block=False)
