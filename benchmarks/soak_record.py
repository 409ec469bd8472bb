"""Bounded-memory bookkeeping of a soak: per-window counts and percentiles, a latency histogram, failure spans.

A soak may run for hours, so nothing keeps every sample: a window keeps its own latencies only until the
load has moved two windows on, then keeps its percentiles; the whole run's percentiles come from a
log-spaced histogram (2 % wide buckets, so within ±1 %); RSS samples are thinned by half whenever they
pass a cap. Memory is O(windows), a few hundred bytes each.
"""

from __future__ import annotations

import math
import threading
from array import array
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import numpy as np

BUCKET_RATIO = 1.02  # histogram bucket width (each bucket 2 % wider than the last)
MIN_LATENCY_S = 1e-5  # histogram floor (10 µs); anything faster lands in the first bucket
MAX_RSS_SAMPLES = 4000  # kept for the plot; beyond it every other sample is dropped
OPEN_WINDOWS = 2  # windows behind the newest one whose raw latencies are still kept


class LatencyHistogram:
    """Counts of latencies in log-spaced buckets; percentiles within half a bucket (±1 %)."""

    def __init__(self) -> None:
        self.counts: Counter[int] = Counter()
        self.total = 0

    def add(self, seconds: float) -> None:
        self.counts[max(0, int(math.log(max(seconds, MIN_LATENCY_S) / MIN_LATENCY_S, BUCKET_RATIO)))] += 1
        self.total += 1

    def percentile_ms(self, q: float) -> float:
        if not self.total:
            return float("nan")
        rank, seen = q / 100 * (self.total - 1), 0
        for bucket in sorted(self.counts):
            seen += self.counts[bucket]
            if seen > rank:
                return MIN_LATENCY_S * BUCKET_RATIO ** (bucket + 0.5) * 1000
        raise AssertionError("unreachable")


@dataclass
class Window:
    """One time window while it is open (raw latencies) and after (percentiles only)."""

    requests: int = 0
    errors: int = 0
    codes: Counter[str] = field(default_factory=Counter)  # status of the failed requests
    latencies: array | None = field(default_factory=lambda: array("d"))  # successes, seconds; None once closed
    p50: float = float("nan")
    p99: float = float("nan")
    rss_mb: float | None = None  # last server RSS sample in the window
    servers: set[str] = field(default_factory=set)  # distinct loaded_at answered by Info (replicas / reloads)
    generation: int = 0  # highest engine generation Info reported in the window

    def close(self) -> None:
        if self.latencies is not None:
            if self.latencies:
                self.p50, self.p99 = (float(v) for v in np.percentile(np.frombuffer(self.latencies), [50, 99]) * 1000)
            self.latencies = None


class SoakRecorder:
    """Thread-safe sink for request outcomes, RSS samples and Info answers, by window from `t0`."""

    def __init__(self, t0: float, window_s: float, duration_s: float) -> None:
        self.t0, self.window_s = t0, window_s
        self.windows = [Window() for _ in range(max(1, round(duration_s / window_s)))]
        self.histogram = LatencyHistogram()
        self.codes: Counter[str] = Counter()
        self.failed = {"first_s": None, "last_s": None, "max_latency_ms": 0.0}  # when failures happened
        self.rss: list[tuple[float, float]] = []
        self.info_errors: Counter[str] = Counter()
        self._closed = 0  # windows before this one are closed
        self._lock = threading.Lock()

    def _window(self, t: float) -> int | None:
        w = int((t - self.t0) // self.window_s)
        return None if w < 0 else min(w, len(self.windows) - 1)

    def record(self, start: float, latency_s: float, ok: bool, code: str) -> None:
        """One request, by its finish time (requests finishing before t0, in the warm-up, are not kept)."""
        finish = start + latency_s
        w = self._window(finish)
        if w is None:
            return
        with self._lock:
            window = self.windows[w]
            window.requests += 1
            if ok:
                self.histogram.add(latency_s)
                if window.latencies is not None:
                    window.latencies.append(latency_s)
            else:
                window.errors += 1
                window.codes[code] += 1
                self.codes[code] += 1
                self.failed["first_s"] = min(self.failed["first_s"] or math.inf, finish - self.t0)
                self.failed["last_s"] = max(self.failed["last_s"] or -math.inf, finish - self.t0)
                self.failed["max_latency_ms"] = max(self.failed["max_latency_ms"], latency_s * 1000)
            while self._closed < w - OPEN_WINDOWS:
                self.windows[self._closed].close()
                self._closed += 1

    def record_rss(self, t: float, mb: float) -> None:
        with self._lock:
            self.rss.append((t, mb))
            if len(self.rss) > MAX_RSS_SAMPLES:
                self.rss = self.rss[::2]
            w = self._window(t)
            if w is not None:
                self.windows[w].rss_mb = mb

    def record_info(self, t: float, loaded_at: str | None, generation: int, code: str = "OK") -> None:
        """An Info answer (which server generation answered) or its failure."""
        w = self._window(t)
        with self._lock:
            if loaded_at is None:
                if w is not None:
                    self.info_errors[code] += 1
                return
            if w is not None:
                self.windows[w].servers.add(loaded_at)
                self.windows[w].generation = max(self.windows[w].generation, generation)

    def rows(self) -> list[dict[str, Any]]:
        """The per-window table (closes every window)."""
        with self._lock:
            for window in self.windows:
                window.close()
            return [{"t_s": (i + 1) * self.window_s, "requests": w.requests, "errors": w.errors,
                     "codes": dict(w.codes), "p50": w.p50, "p99": w.p99, "rss_mb": w.rss_mb,
                     "servers": sorted(w.servers), "generation": w.generation}
                    for i, w in enumerate(self.windows)]
