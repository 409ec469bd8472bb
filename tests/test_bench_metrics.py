"""Benchmark metrics on hand-made cases: percentiles, QPS, recall@k vs exact search, loopback guard, load loop."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest

from evdsearch.benchmarks.index_scale import qps
from evdsearch.benchmarks.serve_load import (
    CallResult,
    Sample,
    check_target,
    percentiles_ms,
    run_closed_loop,
    summarize,
    throughput,
)
from evdsearch.benchmarks.synthetic_vectors import exact_topk, recall_at_k
from evdsearch.errors import InvalidInput
from evdsearch.plots import Table, fmt


def test_percentiles_interpolate_linearly() -> None:
    latencies = [i / 1000 for i in range(1, 101)]  # 1..100 ms
    got = percentiles_ms(latencies)
    assert got["p50"] == pytest.approx(50.5)
    assert got["p95"] == pytest.approx(95.05)
    assert got["p99"] == pytest.approx(99.01)
    assert percentiles_ms([0.004])["p99"] == pytest.approx(4.0)
    assert all(math.isnan(v) for v in percentiles_ms([]).values())


def test_qps_from_fixed_timings() -> None:
    assert throughput(50, 2.0) == 25.0 and qps(1000, 0.5) == 2000.0
    assert throughput(10, 0.0) == 0.0 and qps(3, 0) == 0.0


def test_summarize_counts_errors_and_stages() -> None:
    ok = CallResult(True, stages_ms={"encode": 2.0, "search": 1.0})
    samples = [Sample(0.0, 0.010, ok), Sample(0.1, 0.030, CallResult(True, stages_ms={"encode": 4.0})),
               Sample(0.2, 0.500, CallResult(False, "UNAVAILABLE")), Sample(0.3, 0.5, CallResult(False, "UNAVAILABLE"))]
    row = summarize(samples, seconds=2.0)
    assert (row["requests"], row["errors"], row["error_codes"]) == (4, 2, {"UNAVAILABLE": 2})
    assert row["qps"] == 1.0  # only successful requests count
    assert row["latency_ms"]["p50"] == pytest.approx(20.0) and row["latency_ms"]["mean"] == pytest.approx(20.0)
    assert row["stages_ms"] == {"encode": 3.0, "search": 1.0}


def test_recall_at_k_hand_made() -> None:
    truth = np.array([[1, 2, 3, 4], [5, 6, 7, 8]])
    found = np.array([[4, 3, 9, 1], [-1, -1, 5, 0]])  # order inside the top-k does not matter; -1 never matches
    assert recall_at_k(found, truth, 4) == pytest.approx((3 + 1) / 8)
    assert recall_at_k(truth, truth, 4) == 1.0
    assert recall_at_k(found[:, :2], truth[:, :2], 2) == pytest.approx(0.0)


def test_exact_topk_matches_full_sort_across_chunks() -> None:
    rng = np.random.default_rng(0)
    base, queries = rng.standard_normal((1000, 8)).astype(np.float32), rng.standard_normal((7, 8)).astype(np.float32)
    expected = np.argsort(-(queries @ base.T), axis=1, kind="stable")[:, :10]
    got = exact_topk(base, queries, 10, chunk=97)  # chunks smaller than the base exercise the merge
    assert (got == expected).all()
    assert recall_at_k(got, expected, 10) == 1.0


@pytest.mark.parametrize("address", ["127.0.0.1:50051", "localhost:1", "[::1]:8080", "127.3.4.5:9"])
def test_loopback_targets_are_allowed(address: str) -> None:
    assert check_target(address, allow_remote=False)[1] > 0


@pytest.mark.parametrize("address", ["10.0.0.1:50051", "8.8.8.8:443", "[2001:db8::1]:80"])
def test_non_loopback_targets_are_refused(address: str) -> None:
    with pytest.raises(InvalidInput, match="not a loopback"):
        check_target(address, allow_remote=False)
    assert check_target(address, allow_remote=True)


def test_malformed_target() -> None:
    with pytest.raises(InvalidInput, match="host:port"):
        check_target("localhost", allow_remote=False)


def test_closed_loop_stops_by_itself() -> None:
    seen: list[str] = []

    def call(text: str) -> CallResult:
        seen.append(text)
        time.sleep(0.002)
        return CallResult(True)

    start = time.monotonic()
    samples, seconds = run_closed_loop(call, ["a", "b", "c"], concurrency=2, duration_s=0.3, warmup_s=0.1)
    assert time.monotonic() - start < 2.0
    assert 0.25 < seconds < 1.0 and len(samples) > 10 and all(s.result.ok for s in samples)
    assert len(seen) >= len(samples) and set(seen) == {"a", "b", "c"}  # warm-up requests are sent, not kept
    with pytest.raises(InvalidInput):
        run_closed_loop(call, [], concurrency=1, duration_s=1)


def test_markdown_table_and_numbers() -> None:
    table = Table("T", ["name", "value"], [["x", fmt(12345.6)], ["y", fmt(None)]], note="n")
    assert table.markdown() == "### T\n\n| name | value |\n|---|---:|\n| x | 12,346 |\n| y | - |\n\nn\n"
    assert fmt(3.14159, 2) == "3.14"
