"""`demo --index`: the demo's own `evdsearch serve`, on a free loopback port, for as long as the page runs.

The demo stays a gRPC client (it never imports the engine): it starts the server as a child process with a
one-time token, reads its address from the ready line, and stops it on close.
"""

from __future__ import annotations

import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
from collections import deque
from pathlib import Path
from typing import IO

from evdsearch.client.channel import ClientSecurity
from evdsearch.demo.grpc_backend import GrpcBackend
from evdsearch.errors import UserError

READY = re.compile(r"^evdsearch: serving \S+ on (\S+):(\d+) ")  # the first line `serve` prints once it listens
ERROR_PREFIX = "evdsearch: error: "  # how `serve` reports a UserError (flags, paths) on stderr
STOP_GRACE_S = 10.0  # the server's drain time on close before it is killed


def _die_with_parent() -> None:
    """Linux: the child gets SIGTERM when the demo dies, even by SIGKILL (no orphaned server)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


class LocalServeBackend(GrpcBackend):
    """A GrpcBackend over a child `evdsearch serve --host 127.0.0.1 --port 0 --expose-paths SERVE_ARGS...`."""

    def __init__(self, serve_args: list[str], timeout_s: float = 60.0) -> None:
        self._tmp = Path(tempfile.mkdtemp(prefix="evdsearch-demo-"))
        token = secrets.token_urlsafe(24)
        token_file = self._tmp / "token"
        token_file.write_text(token + "\n", encoding="utf-8")
        token_file.chmod(0o600)
        command = [sys.executable, "-m", "evdsearch", "serve", "--host", "127.0.0.1", "--port", "0",
                   "--expose-paths", "--auth-token-file", str(token_file), *serve_args]
        self._stderr: deque[str] = deque(maxlen=50)  # the child's last lines, for an error before it is ready
        self._proc = subprocess.Popen(command, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE, text=True,
                                      preexec_fn=_die_with_parent if sys.platform.startswith("linux") else None)
        try:
            address = self._wait_ready()
            super().__init__(address, timeout_s=timeout_s, security=ClientSecurity(token=token))
        except BaseException:
            self._stop()
            raise
        self.where = "local serve"

    def _wait_ready(self) -> str:
        """HOST:PORT from the ready line; the child's own error line when it exits first."""
        stderr_done = threading.Event()
        threading.Thread(target=self._pump_stderr, args=(self._proc.stderr, stderr_done), daemon=True).start()
        for line in self._proc.stdout:
            found = READY.match(line)
            if found:
                threading.Thread(target=lambda: self._proc.stdout.read(), daemon=True).start()  # drain the rest
                return f"{found.group(1)}:{found.group(2)}"
        code = self._proc.wait()
        stderr_done.wait(5.0)  # let the stderr thread read the last lines
        errors = [line[len(ERROR_PREFIX):] for line in self._stderr if line.startswith(ERROR_PREFIX)]
        if errors:
            raise UserError(errors[-1])
        tail = "".join(self._stderr).strip().splitlines()
        raise UserError(f"the demo's server exited with code {code} before it was ready"
                        + (f": {tail[-1]}" if tail else ""))

    def _pump_stderr(self, stream: IO[str], done: threading.Event) -> None:
        """The child's warnings and logs go to the demo's stderr; its error line becomes the demo's UserError."""
        for line in stream:
            self._stderr.append(line.rstrip("\n"))
            if not line.startswith(ERROR_PREFIX):
                print(line, end="", file=sys.stderr, flush=True)
        done.set()

    def _stop(self) -> None:
        if self._proc.poll() is None:
            self._proc.terminate()  # SIGTERM: `serve` drains and exits
            try:
                self._proc.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait()
        shutil.rmtree(self._tmp, ignore_errors=True)

    def close(self) -> None:
        try:
            super().close()
        finally:
            self._stop()


def serve_args(args: object) -> list[str]:
    """`serve` flags for the demo's --index, --kb, --rewriter, --device and engine options."""
    from evdsearch.engine_options import forward_engine_options

    words = ["--index", str(args.index), "--rewriter", args.rewriter, "--device", args.device]
    if args.kb:
        words += ["--kb", str(args.kb)]
    return words + forward_engine_options(args)

