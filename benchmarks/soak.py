"""Soak: many clients for a long while against one server; errors, latency and server RSS per time window."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.benchmarks.serve_load import Call, Sample, percentiles_ms, run_closed_loop
from evdsearch.errors import InvalidInput, NotFound


def rss_mb(pid: int) -> float:
    """Resident set size of a local process (VmRSS of /proc/PID/status) in MiB."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError as err:
        raise NotFound(f"no process {pid} on this machine (--server-pid must be the local server's)") from err
    raise NotFound(f"process {pid} has no VmRSS (a kernel thread?)")


class RssSampler:
    """A thread reading a process's RSS every `every_s` seconds while the load runs: [(monotonic, MiB)]."""

    def __init__(self, pid: int, every_s: float = 1.0) -> None:
        rss_mb(pid)  # fail now if the process is not there
        self.pid, self.every_s = pid, every_s
        self.samples: list[tuple[float, float]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="rss-sampler")

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.samples.append((time.monotonic(), rss_mb(self.pid)))
            except NotFound:
                return  # the server went away; the errors column will say so
            self._stop.wait(self.every_s)

    def __enter__(self) -> RssSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(5)


@dataclass
class SoakConfig:
    """What `evdsearch bench soak` runs."""

    clients: int = 64  # closed-loop client threads
    duration_s: float = 60.0  # measured seconds
    warmup_s: float = 5.0  # unmeasured seconds first (caches, lazy loads); RSS drift is measured after it
    window_s: float = 5.0  # width of one time window in the table and plot


def windows(samples: Sequence[Sample], rss: Sequence[tuple[float, float]], t0: float,
            cfg: SoakConfig) -> list[dict[str, Any]]:
    """Per window from t0: requests, errors, p50/p99 ms of the successes, last RSS (MiB) seen in it."""
    count = max(1, round(cfg.duration_s / cfg.window_s))
    by_window: list[list[Sample]] = [[] for _ in range(count)]
    for s in samples:  # by finish time; the last window is closed, as the load loop keeps a finish at its end
        w = int((s.start + s.latency_s - t0) // cfg.window_s)
        if w >= 0:
            by_window[min(w, count - 1)].append(s)
    rows = []
    for w in range(count):
        lo, hi = t0 + w * cfg.window_s, t0 + (w + 1) * cfg.window_s
        mine = by_window[w]
        ok = [s.latency_s for s in mine if s.result.ok]
        in_window = [mb for t, mb in rss if lo <= t < hi]
        rows.append({"t_s": (w + 1) * cfg.window_s, "requests": len(mine), "errors": len(mine) - len(ok),
                     **percentiles_ms(ok, (50, 99)), "rss_mb": in_window[-1] if in_window else None})
    return rows


def drift(rss: Sequence[tuple[float, float]], t0: float) -> dict[str, float | None]:
    """RSS at the start of the measured window, at its end, its peak, and end vs start in percent."""
    measured = [mb for t, mb in rss if t >= t0]
    if not measured:
        return {"start_mb": None, "end_mb": None, "peak_mb": None, "drift_pct": None}
    start, end = measured[0], measured[-1]
    return {"start_mb": start, "end_mb": end, "peak_mb": max(measured), "drift_pct": (end - start) / start * 100}


def run_soak(call: Call, queries: Sequence[str], cfg: SoakConfig, server_pid: int | None) -> dict[str, Any]:
    """Load with `cfg.clients` threads; returns totals, per-window rows and the server's RSS drift."""
    if not 1 <= cfg.clients <= 1024 or not 0 < cfg.duration_s <= 3600 or cfg.window_s <= 0 or cfg.warmup_s < 0:
        raise InvalidInput("soak needs 1..1024 clients, a duration in (0, 3600] s, a window > 0 and a warm-up >= 0")
    sampler = RssSampler(server_pid) if server_pid is not None else None
    start = time.monotonic()
    if sampler is not None:
        with sampler:
            samples, seconds = run_closed_loop(call, queries, cfg.clients, cfg.duration_s, cfg.warmup_s)
    else:
        samples, seconds = run_closed_loop(call, queries, cfg.clients, cfg.duration_s, cfg.warmup_s)
    t0 = start + cfg.warmup_s
    rss = sampler.samples if sampler is not None else []
    ok = [s.latency_s for s in samples if s.result.ok]
    return {
        "requests": len(samples), "errors": len(samples) - len(ok),
        "error_codes": dict(Counter(s.result.code for s in samples if not s.result.ok)),
        "qps": len(ok) / seconds, "latency_ms": percentiles_ms(ok, (50, 99)),
        "rss": drift(rss, t0), "windows": windows(samples, rss, t0, cfg),
        "rss_samples": [(round(t - t0, 3), mb) for t, mb in rss],
    }
