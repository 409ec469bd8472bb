"""The picture of a `bench serve` result: per workload, latency (log axis), throughput and, against a peer,
the latency ratio; below, where each server spends a request (stage bars). Legends sit outside the data."""

from __future__ import annotations

import math
from typing import Any

from evdsearch.benchmarks.serve_compare import cells

STAGES = ("rewrite", "encode", "search", "hydrate")
LINES = {"p50": "-", "p99": "--"}  # line style per latency percentile, in every panel


def plot(result: dict[str, Any]) -> Any:
    """One row of panels per workload, plus the stage breakdown at the lowest concurrency."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    rows, cfg = result["results"], result["config"]
    medians = cells(rows)
    workloads = list(dict.fromkeys(w for _, w, _, _ in medians))
    series = list(dict.fromkeys((s, m) for s, _, m, _ in medians))  # (server, mode): one colour each
    colours = {key: plt.get_cmap("tab10")(i % 10) for i, key in enumerate(series)}
    comparison = result.get("comparison") or []
    staged = [r for r in rows if r["stages_ms"]]
    ncols = 3 if comparison else 2
    bars = _stage_rows(staged)
    heights = [3.2] * len(workloads) + ([0.6 + 0.32 * len(bars)] if bars else [])
    fig = plt.figure(figsize=(5.0 * ncols + 2.6, sum(heights)), layout="constrained")
    grid = fig.add_gridspec(len(heights), ncols, height_ratios=heights)
    for row, workload in enumerate(workloads):
        named = f"{workload} workload: " if len(workloads) > 1 or workload != "cycle" else ""
        lat, qps = fig.add_subplot(grid[row, 0]), fig.add_subplot(grid[row, 1])
        for (server, mode) in series:
            mine = sorted((c, m) for (s, w, md, c), m in medians.items() if (s, w, md) == (server, workload, mode))
            if not mine:
                continue
            for pct, style in LINES.items():
                _line(lat, [(c, m[f"{pct}_ms"]) for c, m in mine], style, colours[server, mode])
            _line(qps, [(c, m["qps"]) for c, m in mine], "-", colours[server, mode])
        _axes(lat, f"{named}latency", "ms (log)", cfg["concurrency"])
        _axes(qps, f"{named}throughput", "queries / s (log)", cfg["concurrency"])
        if comparison:
            _ratio_panel(fig.add_subplot(grid[row, 2]), [c for c in comparison if c.get("workload", "cycle") == workload],
                         colours, f"{named}latency / peer's", cfg)
    if bars:
        _stage_bars(fig.add_subplot(grid[len(workloads), :]), bars, min(r["concurrency"] for r in staged))
    handles = [Line2D([], [], color=colours[key], lw=2, label=_label(key, cfg)) for key in series]
    handles += [Line2D([], [], color="0.3", ls=style, label=pct) for pct, style in LINES.items()]
    fig.legend(handles=handles, loc="outside right upper", fontsize=8, title="server, mode")
    if cfg.get("machine"):
        fig.suptitle(cfg["machine"], fontsize=9)
    return fig


def _line(ax: Any, points: list[tuple[int, float | None]], style: str, colour: Any) -> None:
    """A line through the measured points; a cell that completed nothing (0 or None) has no place on a log axis."""
    kept = [(x, y) for x, y in points if y]
    if kept:
        ax.plot(*zip(*kept, strict=True), style, marker="o", ms=3, color=colour)


def _label(key: tuple[str, str], cfg: dict[str, Any]) -> str:
    server, mode = key
    return f"{server} {mode}" if cfg.get("peer") or cfg.get("also") else mode


def _axes(ax: Any, title: str, ylabel: str, levels: list[int]) -> None:
    from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(levels, [str(c) for c in levels])
    ax.xaxis.set_minor_locator(NullLocator())  # only the measured levels, written plainly
    low, high = ax.get_ylim()  # the data's range (call after plotting): the shorter, the finer the labels
    span = math.log10(high / low) if low > 0 else 2.0
    subs = (1.0, 2.0, 5.0) if span > 1.5 else (1.0, 2.0, 3.0, 5.0, 7.0) if span > 0.6 else tuple(range(1, 10))
    ax.yaxis.set_major_locator(LogLocator(base=10, subs=subs))
    ax.yaxis.set_major_formatter(FuncFormatter(lambda value, _pos: f"{value:g}"))  # 4000, not 4x10^3
    ax.yaxis.set_minor_formatter(FuncFormatter(lambda value, _pos: ""))
    ax.set_xlabel("concurrent clients")
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    ax.grid(True, which="both", alpha=0.3)


def _ratio_panel(ax: Any, comparison: list[dict[str, Any]], colours: dict, title: str, cfg: dict[str, Any]) -> None:
    """Our latency over the peer's at each concurrency (below 1: evdsearch faster), p50 and p99."""
    def key_of(c: dict[str, Any]) -> tuple[str, str]:
        return c.get("server", "evdsearch"), c["mode"]  # results before several servers name none

    for key in dict.fromkeys(map(key_of, comparison)):
        mine = sorted((c for c in comparison if key_of(c) == key), key=lambda c: c["concurrency"])
        for pct, style in LINES.items():
            _line(ax, [(c["concurrency"], c[f"{pct}_ratio"]) for c in mine], style, colours.get(key, "0.5"))
    ax.axhline(1.0, color="0.2", lw=1)
    _axes(ax, title, "ratio (log; < 1: evdsearch faster)", cfg["concurrency"])


def _stage_rows(staged: list[dict[str, Any]]) -> list[tuple[str, dict[str, float]]]:
    """(label, mean stage ms over rounds) per server, workload and mode at the lowest concurrency."""
    if not staged:
        return []
    lowest = min(r["concurrency"] for r in staged)
    grouped: dict[str, list[dict[str, float]]] = {}
    for r in staged:
        if r["concurrency"] == lowest:
            grouped.setdefault(f"{r['server']} · {r.get('workload', 'cycle')} · {r['mode']}", []).append(r["stages_ms"])
    return [(label, {s: sum(t.get(s, 0.0) for t in times) / len(times) for s in {s for t in times for s in t}})
            for label, times in grouped.items()]


def _stage_bars(ax: Any, bars: list[tuple[str, dict[str, float]]], lowest: int) -> None:
    """Stacked horizontal bars, one per labelled row: labels never overlap."""
    seen = {s for _, stages in bars for s in stages}
    left = [0.0] * len(bars)
    labels = [label for label, _ in bars]
    for stage in [s for s in STAGES if s in seen] + sorted(seen - set(STAGES)):
        values = [stages.get(stage, 0.0) for _, stages in bars]
        ax.barh(labels, values, left=left, label=stage)
        left = [a + b for a, b in zip(left, values, strict=True)]
    ax.invert_yaxis()  # first row on top, as in the tables
    ax.set_xlabel("mean server ms per request")
    ax.set_title(f"server stages at concurrency {lowest} (mean over rounds)", fontsize=10)
    ax.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.0, 1.0), title="stage")
    ax.grid(True, axis="x", alpha=0.3)
