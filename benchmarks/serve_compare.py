"""`bench serve --peer`: evdsearch against a peer per mode and concurrency, medians over rounds, with ratios."""

from __future__ import annotations

from collections.abc import Sequence
from statistics import median
from typing import Any


def cells(rows: Sequence[dict[str, Any]]) -> dict[tuple[str, str, str, int], dict[str, float]]:
    """(server, workload, mode, concurrency) -> median QPS / p50 / p99 over rounds, and the errors of all rounds."""
    grouped: dict[tuple[str, str, str, int], list[dict[str, Any]]] = {}
    for row in rows:
        key = (row["server"], row.get("workload", "cycle"), row["mode"], row["concurrency"])
        grouped.setdefault(key, []).append(row)
    return {key: {"qps": median(r["qps"] for r in group),
                  "p50_ms": median(r["latency_ms"]["p50"] for r in group),
                  "p99_ms": median(r["latency_ms"]["p99"] for r in group),
                  "errors": sum(r["errors"] for r in group), "rounds": len(group)}
            for key, group in grouped.items()}


def _ratio(mine: float, theirs: float) -> float | None:
    return mine / theirs if theirs else None


def _row(key: tuple[str, str, str, int], mine: dict[str, float], theirs: dict[str, float],
         **extra: str) -> dict[str, Any]:
    """The row shape `compare` and `against_baseline` share: both cells' medians and ours / peer ratios."""
    server, workload, mode, level = key
    return {"server": server, "workload": workload, "mode": mode, "concurrency": level, "rounds": mine["rounds"],
            **extra,
            "qps": mine["qps"], "peer_qps": theirs["qps"], "qps_ratio": _ratio(mine["qps"], theirs["qps"]),
            "p50_ms": mine["p50_ms"], "peer_p50_ms": theirs["p50_ms"], "p50_ratio": _ratio(mine["p50_ms"], theirs["p50_ms"]),
            "p99_ms": mine["p99_ms"], "peer_p99_ms": theirs["p99_ms"], "p99_ratio": _ratio(mine["p99_ms"], theirs["p99_ms"]),
            "errors": mine["errors"], "peer_errors": theirs["errors"]}


def compare(rows: Sequence[dict[str, Any]], ours: str | Sequence[str], peer: str,
            peer_mode: str = "original") -> list[dict[str, Any]]:
    """One row per (our server, workload, mode, concurrency) the peer was measured at (same workload): both
    sides' medians and ours / peer ratios (QPS ratio > 1 and latency ratio < 1 mean evdsearch is ahead)."""
    names = [ours] if isinstance(ours, str) else list(ours)
    table = cells(rows)
    out = []
    for (server, workload, mode, level), mine in table.items():
        theirs = table.get((peer, workload, peer_mode, level))
        if server not in names or theirs is None:
            continue
        out.append(_row((server, workload, mode, level), mine, theirs))
    return out


def against_baseline(rows: Sequence[dict[str, Any]], baseline: str) -> list[dict[str, Any]]:
    """Every other server against the `baseline` server in the same workload, mode and concurrency (e.g. the
    served quality configuration against the template one): the `compare` row shape, peer = the baseline."""
    table = cells(rows)
    out = []
    for (server, workload, mode, level), mine in table.items():
        theirs = table.get((baseline, workload, mode, level))
        if server == baseline or theirs is None:
            continue
        out.append(_row((server, workload, mode, level), mine, theirs, baseline=baseline))
    return out
