"""Soak: many clients for as long as asked against a server; errors, latency and server RSS per time window.

Optionally an Info observer (which server generation answers, so a replica that left and came back, or a
reload, shows up per window) and a writer that changes the served index and KB meanwhile (soak_mixed.py).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.benchmarks.serve_load import JOIN_GRACE_S, Call
from evdsearch.benchmarks.soak_record import SoakRecorder
from evdsearch.errors import InvalidInput, NotFound

InfoCall = Callable[[], tuple[str | None, int, str]]  # () -> (loaded_at or None, generation, status code)


def rss_mb(pid: int) -> float:
    """Resident set size of a local process (VmRSS of /proc/PID/status) in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError as err:
        raise NotFound(f"no process {pid} on this machine (--server-pid must be the local server's)") from err
    raise NotFound(f"process {pid} has no VmRSS (a kernel thread?)")


class Sampler(threading.Thread):
    """Calls `sample()` every `every_s` seconds until stopped (RSS, Info)."""

    def __init__(self, sample: Callable[[], bool | None], every_s: float, name: str) -> None:
        super().__init__(daemon=True, name=name)
        self.sample, self.every_s, self.done = sample, every_s, threading.Event()

    def run(self) -> None:
        while not self.done.is_set():
            if self.sample() is False:
                return
            self.done.wait(self.every_s)

    def stop(self) -> None:
        self.done.set()
        self.join(JOIN_GRACE_S)


@dataclass
class SoakConfig:
    """What `evdsearch bench soak` runs."""

    clients: int = 64  # closed-loop client threads
    duration_s: float = 60.0  # measured seconds (no upper bound: memory does not grow with it)
    warmup_s: float = 5.0  # unmeasured seconds first (caches, lazy loads); RSS drift is measured after it
    window_s: float = 5.0  # width of one time window in the table and plot
    info_every_s: float = 1.0  # an Info call this often (0: none): which generation / replica answers


def load_loop(call: Call, queries: Sequence[str], clients: int, stop_at: float, recorder: SoakRecorder) -> None:
    """`clients` threads each send one request at a time until `stop_at`; every finish goes to `recorder`
    (those in the warm-up are dropped there; those still running at `stop_at` count in the last window)."""

    def worker(offset: int) -> None:
        i = offset
        while (t0 := time.monotonic()) < stop_at:
            result = call(queries[i % len(queries)])
            i += clients
            recorder.record(t0, time.monotonic() - t0, result.ok, result.code)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True, name=f"soak-{n}") for n in range(clients)]
    for thread in threads:
        thread.start()
    for thread in threads:  # self-stopping: no request starts after stop_at; a stuck one is left behind
        thread.join(max(0.0, stop_at + JOIN_GRACE_S - time.monotonic()))


def run_soak(call: Call, queries: Sequence[str], cfg: SoakConfig, server_pid: int | None,
             info: InfoCall | None = None, writer: Any = None) -> dict[str, Any]:
    """Load with `cfg.clients` threads; returns totals, per-window rows, the server's RSS drift, and what the
    writer (a thread with start(stop_at), join(), report()) did meanwhile."""
    if not 1 <= cfg.clients <= 1024 or not cfg.duration_s > 0 or cfg.window_s <= 0 or cfg.warmup_s < 0 \
            or cfg.info_every_s < 0:
        raise InvalidInput("soak needs 1..1024 clients, a duration > 0 s, a window > 0, a warm-up >= 0 and "
                           "an Info interval >= 0")
    if not queries:
        raise InvalidInput("soak needs at least one query")
    if server_pid is not None:
        rss_mb(server_pid)  # fail now if the process is not there
    start = time.monotonic()
    t0, stop_at = start + cfg.warmup_s, start + cfg.warmup_s + cfg.duration_s
    recorder = SoakRecorder(t0, cfg.window_s, cfg.duration_s)
    epoch = time.time() + cfg.warmup_s  # t0 on the wall clock, for scripts that act at set times
    samplers = []
    if server_pid is not None:
        samplers.append(Sampler(lambda: _sample_rss(recorder, server_pid), 1.0, "rss-sampler"))
    if info is not None and cfg.info_every_s:
        samplers.append(Sampler(lambda: recorder.record_info(time.monotonic(), *info()), cfg.info_every_s,
                                "info-sampler"))
    for sampler in samplers:
        sampler.start()
    if writer is not None:
        writer.start(stop_at)
    try:
        load_loop(call, queries, cfg.clients, stop_at, recorder)
    finally:
        for sampler in samplers:
            sampler.stop()
        if writer is not None:
            writer.join()
    return summarize(recorder, cfg, epoch, writer.report() if writer is not None else None)


def _sample_rss(recorder: SoakRecorder, pid: int) -> bool:
    try:
        recorder.record_rss(time.monotonic(), rss_mb(pid))
    except NotFound:
        return False  # the server went away; the errors column will say so
    return True


def summarize(recorder: SoakRecorder, cfg: SoakConfig, epoch: float, writes: Any) -> dict[str, Any]:
    """The result dict (JSON): totals, windows, RSS drift after the warm-up, failure span, writer report."""
    rows = recorder.rows()
    requests = sum(r["requests"] for r in rows)
    errors = sum(r["errors"] for r in rows)
    measured = [mb for t, mb in recorder.rss if t >= recorder.t0]
    rss = {"start_mb": None, "end_mb": None, "peak_mb": None, "drift_pct": None}
    if measured:
        rss = {"start_mb": measured[0], "end_mb": measured[-1], "peak_mb": max(measured),
               "drift_pct": (measured[-1] - measured[0]) / measured[0] * 100}
    timed = [r for r in rows if r["requests"] - r["errors"]]
    ratio = timed[-1]["p99"] / timed[0]["p99"] if len(timed) > 1 and timed[0]["p99"] > 0 else None
    return {
        "requests": requests, "errors": errors, "error_codes": dict(recorder.codes),
        "qps": (requests - errors) / cfg.duration_s,
        "latency_ms": {"p50": recorder.histogram.percentile_ms(50), "p99": recorder.histogram.percentile_ms(99)},
        "p99_last_over_first": ratio, "failures": dict(recorder.failed), "info_errors": dict(recorder.info_errors),
        "t0_epoch": epoch, "rss": rss, "windows": rows, "writes": writes,
        "rss_samples": [(round(t - recorder.t0, 3), mb) for t, mb in recorder.rss],
    }
