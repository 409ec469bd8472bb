"""A bounded closed-loop load generator (threads) and its latency statistics, for any request/answer server."""

from __future__ import annotations

import ipaddress
import itertools
import socket
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from evdsearch.benchmarks.workloads import Workload, unique_texts
from evdsearch.errors import InvalidInput

LOOPBACK_NAMES = ("localhost", "127.0.0.1", "::1")
JOIN_GRACE_S = 30.0  # after the duration, workers get this long (plus the RPC timeout) to return


@dataclass
class CallResult:
    """What one request gave: success, an error code, and the server's per-stage timings if it sent any."""

    ok: bool
    code: str = "OK"  # status name (gRPC) or HTTP status / exception name
    stages_ms: dict[str, float] = field(default_factory=dict)


Call = Callable[[str], CallResult]  # one request for a query text; must be thread-safe


@dataclass
class Sample:
    start: float  # monotonic seconds
    latency_s: float
    result: CallResult


def split_address(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, sep, port = address.rpartition(":")
    if not sep or not port.isdigit():
        raise InvalidInput(f"--server must be host:port, got {address!r}")
    return host.strip("[]"), int(port)


def is_loopback(host: str) -> bool:
    """True when every address `host` resolves to is a loopback address (127.0.0.0/8, ::1)."""
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None)
    except OSError:
        return False
    return bool(infos) and all(ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback for info in infos)


def check_target(address: str, allow_remote: bool) -> tuple[str, int]:
    """Refuse non-loopback targets unless explicitly allowed: load tests stay on this machine by default.

    A replica list ("ipv4:127.0.0.1:P1,127.0.0.1:P2") is checked address by address; the first is returned.
    """
    checked = []
    for one in replica_addresses(address):
        host, port = split_address(one)
        if not allow_remote and not is_loopback(host):
            raise InvalidInput(f"--server {one} is not a loopback address; benchmarks only load this machine "
                               f"(127.0.0.1 / localhost / ::1) unless --allow-remote is given")
        checked.append((host, port))
    return checked[0]


def replica_addresses(address: str) -> list[str]:
    """host:port of each server a gRPC target names: "h:p", or "ipv4:h1:p1,h2:p2" for replicas."""
    body = address.split(":", 1)[1] if address.startswith(("ipv4:", "ipv6:")) else address
    return [part for part in body.split(",") if part] or [address]


def channel_options(address: str) -> list[tuple[str, str]]:
    """gRPC's own client-side load balancing over a replica list: round_robin (the default pick_first
    would send everything to the first replica)."""
    return [("grpc.lb_policy_name", "round_robin")] if len(replica_addresses(address)) > 1 else []


def run_closed_loop(call: Call, queries: Sequence[str], concurrency: int, duration_s: float,
                    warmup_s: float = 0.0) -> tuple[list[Sample], float]:
    """`concurrency` threads each send one request at a time, back to back, for `warmup_s + duration_s`.

    Kept: the requests that complete inside the measured window (after the warm-up, before the deadline),
    so throughput = kept / `duration_s` even when single requests take longer than the window; requests
    still in flight at the deadline are awaited but not kept. Returns (samples, `duration_s`).
    Self-stopping: no request starts after the deadline, and threads are joined with a bound.
    """
    if concurrency < 1 or duration_s <= 0 or not queries:
        raise InvalidInput("concurrency must be >= 1, duration > 0 and at least one query given")
    start = time.monotonic()
    measure_from, stop_at = start + warmup_s, start + warmup_s + duration_s
    samples: list[Sample] = []
    lock = threading.Lock()

    def worker(offset: int) -> None:
        mine, i = [], offset
        while (t0 := time.monotonic()) < stop_at:
            result = call(queries[i % len(queries)])
            i += concurrency
            if measure_from <= (t1 := time.monotonic()) <= stop_at:
                mine.append(Sample(t0, t1 - t0, result))
        with lock:
            samples.extend(mine)

    threads = [threading.Thread(target=worker, args=(n,), daemon=True, name=f"load-{n}") for n in range(concurrency)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(max(0.0, stop_at + JOIN_GRACE_S - time.monotonic()))
    with lock:  # a thread still stuck past the bound cannot change what is returned
        return list(samples), duration_s


def percentiles_ms(latencies_s: Sequence[float], qs: Sequence[float] = (50, 95, 99)) -> dict[str, float]:
    """{'p50': ms, ...} with linear interpolation (numpy's default); empty input gives NaN."""
    if not latencies_s:
        return {f"p{q:g}": float("nan") for q in qs}
    values = np.percentile(np.asarray(latencies_s, dtype=np.float64) * 1000.0, list(qs))
    return {f"p{q:g}": float(v) for q, v in zip(qs, values, strict=True)}


def throughput(count: int, seconds: float) -> float:
    """Completed requests per second."""
    return count / seconds if seconds > 0 else 0.0


def summarize(samples: Sequence[Sample], seconds: float) -> dict[str, Any]:
    """Requests, errors by code, QPS of successful requests, latency percentiles, mean server stage times."""
    ok = [s for s in samples if s.result.ok]
    latencies = [s.latency_s for s in ok]
    stages: dict[str, list[float]] = {}
    for s in ok:
        for stage, ms in s.result.stages_ms.items():
            stages.setdefault(stage, []).append(ms)
    return {
        "requests": len(samples),
        "errors": len(samples) - len(ok),
        "error_codes": dict(Counter(s.result.code for s in samples if not s.result.ok)),
        "seconds": seconds,
        "qps": throughput(len(ok), seconds),
        "latency_ms": {**percentiles_ms(latencies), "mean": float(np.mean(latencies) * 1000) if ok else float("nan")},
        "stages_ms": {stage: float(np.mean(v)) for stage, v in stages.items()},
    }


def grpc_caller(address: str, mode: str, k: int = 10, explain: bool = True, timeout_s: float = 10.0,
                channels: int = 1, security: Any = None, explain_every: int = 1) -> tuple[Call, Callable[[], None]]:
    """(call, close): Search RPCs on `channels` shared loopback channels; explain timings become stages.
    `explain_every`: only every n-th request asks for an explanation (clients seldom do, and an explained
    query is always rewritten, even where its fusion weight is 0)."""
    import grpc

    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    modes = {"fused": pb.MODE_FUSED, "original": pb.MODE_ORIGINAL, "rewritten": pb.MODE_REWRITTEN}
    if mode not in modes:
        raise InvalidInput(f"unknown mode {mode!r}: use {', '.join(modes)}")
    from evdsearch.client.channel import open_channel

    opened = [open_channel(address, security, options=channel_options(address)) for _ in range(max(1, channels))]
    stubs = [search_pb2_grpc.SearchServiceStub(ch) for ch in opened]
    turn = itertools.count()

    def call(text: str) -> CallResult:
        n = next(turn)
        stub, explained = stubs[n % len(stubs)], explain and n % max(1, explain_every) == 0
        try:
            resp = stub.Search(pb.SearchRequest(text=text, k=k, mode=modes[mode], explain=explained), timeout=timeout_s)
        except grpc.RpcError as err:
            return CallResult(False, err.code().name if err.code() else type(err).__name__)
        return CallResult(True, stages_ms=dict(resp.explanation.timings_ms) if explained else {})

    def close() -> None:
        for ch in opened:
            ch.close()

    return call, close


def wait_for_grpc(address: str, timeout_s: float = 10.0, security: Any = None) -> None:
    """Block until the server's channel is ready; a clear error if nothing answers there."""
    import grpc

    from evdsearch.client.channel import open_channel

    with open_channel(address, security) as channel:
        try:
            grpc.channel_ready_future(channel).result(timeout=timeout_s)
        except grpc.FutureTimeoutError as err:
            raise InvalidInput(f"no gRPC server answers at {address} within {timeout_s:g} s; "
                               f"start one with `evdsearch serve --index DIR --port PORT`") from err


@dataclass
class Target:
    """One server under load: `make_call(mode)` gives a fresh (call, close) per measured cell."""

    name: str  # label in the report, e.g. "evdsearch" or "clip-back"
    make_call: Callable[[str], tuple[Call, Callable[[], None]]]
    modes: Sequence[str]


def run_serve_benchmark(targets: Sequence[Target], concurrency: Sequence[int], duration_s: float,
                        queries: Sequence[str], warmup_s: float = 1.0, unique: bool = False, rounds: int = 1,
                        log: Callable[[str], None] = print,
                        workloads: Sequence[Workload] | None = None) -> list[dict[str, Any]]:
    """Every (target, workload, mode, concurrency) cell, `rounds` times. Cells are interleaved (round by round,
    level by level, workload by workload, target by target) so that a slow minute on a shared machine hits every
    server alike; rows come back sorted by target, workload, mode, concurrency and round. Without `workloads`,
    one stream of `queries` (unique texts when `unique`)."""
    workloads = list(workloads or [Workload("cold" if unique else "cycle", list(queries), unique)])
    numbers = itertools.count()  # one count for the whole run: no cell repeats an earlier cell's unique texts
    rows = []
    for round_no in range(1, rounds + 1):
        for level in concurrency:
            for workload in workloads:
                for target in targets:
                    for mode in target.modes:
                        call, close = target.make_call(mode)
                        try:
                            samples, seconds = run_closed_loop(unique_texts(call, numbers) if workload.unique else call,
                                                               workload.queries, level, duration_s, warmup_s)
                        finally:
                            close()
                        row = {"server": target.name, "workload": workload.name, "mode": mode, "concurrency": level,
                               "round": round_no, **summarize(samples, seconds)}
                        rows.append(row)
                        lat = row["latency_ms"]
                        named = f" {workload.name}" if len(workloads) > 1 else ""
                        log(f"{target.name}{named} {mode} x{level} (round {round_no}): {row['qps']:.1f} QPS, "
                            f"p50 {lat['p50']:.1f} ms, p99 {lat['p99']:.1f} ms, {row['errors']} errors")
    order = {t.name: (i, {m: j for j, m in enumerate(t.modes)}) for i, t in enumerate(targets)}
    loads = [w.name for w in workloads]
    return sorted(rows, key=lambda r: (order[r["server"]][0], loads.index(r["workload"]),
                                       order[r["server"]][1][r["mode"]], concurrency.index(r["concurrency"]),
                                       r["round"]))
