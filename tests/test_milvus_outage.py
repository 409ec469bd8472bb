"""The Milvus server behind `--backend milvus` goes away under load and comes back: a real `milvus-lite server`
process is killed (and, in a second phase, paused with SIGSTOP), then started again on the same data; every
failed search is UNAVAILABLE with a message and within its deadline, health is NOT_SERVING meanwhile, and
searches succeed again within 5 s of the server's return, without restarting evdsearch."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from test_engine_support import open_engine, write_images

from evdsearch.client.channel import open_channel
from evdsearch.engine.grpc_server.server import SERVICE_NAME, build_server
from evdsearch.indexer.build import IndexBuildConfig, build_index
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

pytest.importorskip("milvus_lite")
TIMEOUT_S = 10.0  # the clients' deadline


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class MilvusServer:
    """`milvus-lite server` as its own process on a fixed port and data folder; stop and start at will."""

    def __init__(self, data: Path, port: int) -> None:
        self.data, self.port, self.proc = data, port, None
        self.exe = shutil.which("milvus-lite", path=str(Path(sys.executable).parent))

    def start(self) -> float:
        """Start it; returns time.monotonic() when it accepts connections."""
        self.proc = subprocess.Popen([self.exe, "server", "--data-dir", str(self.data), "--host", "127.0.0.1",
                                      "--port", str(self.port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return time.monotonic()
            except OSError:
                time.sleep(0.1)
        raise AssertionError("milvus-lite server did not start")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait()


class Searchers:
    """Threads searching back to back through the CLI's channel (retry policy included); every call is kept."""

    def __init__(self, address: str, n: int = 4) -> None:
        self.calls: list[tuple[float, float, str, str]] = []  # (start, end, code, details)
        self.done = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(address,), daemon=True) for _ in range(n)]
        for t in self.threads:
            t.start()

    def _run(self, address: str) -> None:
        with open_channel(address) as channel:
            stub = search_pb2_grpc.SearchServiceStub(channel)
            while not self.done.is_set():
                start = time.monotonic()
                try:
                    stub.Search(pb.SearchRequest(text="a red picture", k=3), timeout=TIMEOUT_S)
                    code, details = "OK", ""
                except grpc.RpcError as err:
                    code, details = err.code().name, err.details() or ""
                self.calls.append((start, time.monotonic(), code, details))
                if code != "OK":
                    time.sleep(0.05)

    def stop(self) -> list[tuple[float, float, str, str]]:
        self.done.set()
        for t in self.threads:
            t.join(TIMEOUT_S + 5)
        return self.calls


def health_of(address: str) -> str:
    with grpc.insecure_channel(address) as channel:
        answer = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME),
                                                           timeout=5)
    return health_pb2.HealthCheckResponse.ServingStatus.Name(answer.status)


def wait_for(predicate, seconds: float) -> float | None:  # noqa: ANN001
    """Poll until `predicate()`; the time.monotonic() it became true, or None."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.1)
    return None


@pytest.mark.slow  # a milvus-lite process, two outages of a few seconds each
def test_milvus_outage_answers_unavailable_then_recovers(tmp_path: Path, tiny_clip_dir: Path) -> None:
    milvus = MilvusServer(tmp_path / "milvus", free_port())
    milvus.start()
    source = write_images(tmp_path / "data")
    build_index(IndexBuildConfig(source=source, out=tmp_path / "index", model=str(tiny_clip_dir), device="cpu",
                                 workers=1, progress=False, backend="milvus",
                                 milvus_uri=f"http://127.0.0.1:{milvus.port}"))
    with open_engine(tmp_path / "index", None, rewriter="none") as engine:
        running = build_server(engine, port=0, max_workers=8)
        running.start()
        clients = Searchers(running.address)
        try:
            time.sleep(2)
            phases = []
            for stop in ("kill", "pause"):
                stopped = time.monotonic()
                if stop == "kill":
                    milvus.kill()
                else:
                    milvus.proc.send_signal(signal.SIGSTOP)
                not_serving = wait_for(lambda: health_of(running.address) == "NOT_SERVING", 15)
                time.sleep(6)
                if stop == "kill":
                    back = milvus.start()
                else:
                    milvus.proc.send_signal(signal.SIGCONT)
                    back = time.monotonic()
                serving = wait_for(lambda: health_of(running.address) == "SERVING", 15)
                time.sleep(3)
                phases.append((stop, stopped, not_serving, back, serving))
        finally:
            calls = clients.stop()
            running.stop(0)
            if milvus.proc.poll() is None:
                milvus.proc.send_signal(signal.SIGCONT)
                milvus.kill()
    failed = [c for c in calls if c[2] != "OK"]
    ends = [p[1] for p in phases[1:]] + [float("inf")]  # a phase lasts until the next one stops Milvus
    for (stop, stopped, not_serving, back, serving), until in zip(phases, ends, strict=True):
        ok_after = [end for start, end, code, _ in calls if code == "OK" and back <= start < until]
        failed_after = [end for start, end, code, _ in calls if code != "OK" and back < end < until]
        recovery = (min(ok_after) - back) if ok_after else None
        print(f"milvus {stop}: health NOT_SERVING after {not_serving - stopped:.1f} s, SERVING "
              f"{serving - back:.1f} s after it was back; first search OK {recovery:.1f} s after; last failure "
              f"{(max(failed_after) - back) if failed_after else 0:.1f} s after")
        assert not_serving is not None and serving is not None and serving - back <= 5
        assert recovery is not None and recovery <= 5 and (not failed_after or max(failed_after) - back <= 5)
    print(f"searches: {len(calls)}, failed: {len(failed)} "
          f"({sorted({c[2] for c in failed})}), longest failed call {max((c[1] - c[0] for c in failed), default=0):.1f} s")
    assert failed and {c[2] for c in failed} == {"UNAVAILABLE"}  # nothing else: no INTERNAL, no deadline
    assert all(c[3].startswith("Milvus at http://127.0.0.1:") for c in failed), failed[0]
    assert max(c[1] - c[0] for c in failed) < TIMEOUT_S
    assert calls[-1][2] == "OK"
