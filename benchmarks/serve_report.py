"""Tables of a `bench serve` result: per-cell rows, the ratios against a peer, time outside the encoder (the plot:
serve_plot.py)."""

from __future__ import annotations

from typing import Any

from evdsearch.plots import Table, fmt

STAGES = ("rewrite", "encode", "search", "hydrate")
OURS, PEER = "evdsearch", "clip-back"  # server labels in rows and tables


def _cell_columns(result: dict[str, Any]) -> tuple[list[str], Any]:
    """Leading columns naming a row's cell: server (when a peer ran), mode, concurrency, round (when > 1)."""
    cfg = result["config"]
    with_server = bool(cfg.get("peer") or cfg.get("also"))
    with_round, with_load = cfg.get("rounds", 1) > 1, len(cfg.get("workloads", [])) > 1
    header = [*(["server"] if with_server else []), *(["workload"] if with_load else []), "mode", "concurrency",
              *(["round"] if with_round else [])]

    def cell(r: dict[str, Any]) -> list[str]:
        return [*([r["server"]] if with_server else []), *([r.get("workload", "cycle")] if with_load else []),
                r["mode"], str(r["concurrency"]), *([str(r["round"])] if with_round else [])]

    return header, cell


def tables(result: dict[str, Any]) -> list[Table]:
    cfg = result["config"]
    target = cfg["server"] + (f" vs {PEER} at {cfg['peer']}" if cfg.get("peer") else "")
    title = (f"Serving ({cfg['protocol']} at {target}): {cfg['duration_s']:g} s per cell, k={cfg['k']}, "
             f"{cfg['queries']} distinct queries" + (", unique texts" if cfg["unique_queries"] else "")
             + (f", {cfg['rounds']} interleaved rounds" if cfg.get("rounds", 1) > 1 else "")
             + (f", {cfg['entity_query_share']:.0%} of queries name a KB entity" if "entity_query_share" in cfg
                else ""))
    header, cell = _cell_columns(result)
    main = Table(title, [*header, "requests", "errors", "QPS", "p50 ms", "p95 ms", "p99 ms", "mean ms"],
                 [[*cell(r), str(r["requests"]), _errors(r), fmt(r["qps"]),
                   fmt(r["latency_ms"]["p50"]), fmt(r["latency_ms"]["p95"]), fmt(r["latency_ms"]["p99"]),
                   fmt(r["latency_ms"]["mean"])] for r in result["results"]])
    out = [main]
    if result.get("server_configs"):
        out.append(Table("What each server serves (its Info RPC)", ["server", "rewriter", "KB entities", "model"],
                         [[label, str(info.get("rewriter", "")), str(info.get("kb_entities", "")),
                           str(info.get("model", ""))] for label, info in result["server_configs"].items()]))
    if "baseline_comparison" in result:
        out.append(_comparison_table(result["baseline_comparison"], cfg.get("baseline", "baseline"), same_mode=True))
    if "comparison" in result:
        out.append(_comparison_table(result["comparison"]))
    outside = outside_encoder(result["results"])
    if outside:
        out.append(Table("Server time outside the text encoder (fused mode, medians over rounds)",
                         ["server", "workload", "concurrency", "encode ms", "other stages ms", "outside encoder"],
                         [[o["server"], o["workload"], str(o["concurrency"]), fmt(o["encode_ms"], 2),
                           fmt(o["other_ms"], 2), f"{o['outside_share']:.1%}"] for o in outside],
                         note="other stages: rewrite + search + hydrate of the request's (batch's) server time; "
                              "encode is one encoder call for q and q' together."))
    timed = [r for r in result["results"] if r["stages_ms"]]
    stages = [s for s in STAGES if any(s in r["stages_ms"] for r in timed)]
    extra = sorted({s for r in timed for s in r["stages_ms"]} - set(STAGES))
    if stages or extra:
        rows = []
        for r in timed:
            values = [r["stages_ms"].get(s) for s in stages + extra]
            known = [v for v in values if v is not None]
            rows.append([*cell(r), *(fmt(v, 2) for v in values),
                         fmt(sum(known), 2) if known else "-", fmt(r["latency_ms"]["mean"], 2)])
        out.append(Table("Server stage breakdown (mean ms per request, from the server's own timings)",
                         [*header, *(f"{s} ms" for s in stages + extra), "server sum ms", "client mean ms"],
                         rows, note="client mean - server sum = queueing, (de)serialisation and transport."))
    return out


def outside_encoder(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per (server, workload, concurrency) of fused rows with stage timings: encode ms, the other stages' ms and
    their share of the server time (medians over rounds)."""
    from statistics import median

    grouped: dict[tuple[str, str, int], list[dict[str, float]]] = {}
    for r in rows:
        if r["mode"] == "fused" and "encode" in r["stages_ms"]:
            grouped.setdefault((r["server"], r.get("workload", "cycle"), r["concurrency"]), []).append(r["stages_ms"])
    out = []
    for (server, workload, level), stages in grouped.items():
        encode = median(s["encode"] for s in stages)
        other = median(sum(v for k, v in s.items() if k != "encode") for s in stages)
        out.append({"server": server, "workload": workload, "concurrency": level, "encode_ms": encode,
                    "other_ms": other, "outside_share": other / (encode + other) if encode + other else 0.0})
    return out


def _comparison_table(comparison: list[dict[str, Any]], peer: str = PEER, same_mode: bool = False) -> Table:
    def ratio(value: float | None) -> str:  # None: the peer completed nothing; NaN: one side has no latency
        return "-" if value is None or value != value else f"{value:.2f}x"

    many = same_mode or len({(c.get("server"), c.get("workload")) for c in comparison}) > 1
    lead = ["server", "workload"] if many else []
    rows = [[*([c["server"], c["workload"]] if many else []), c["mode"], str(c["concurrency"]), fmt(c["qps"]), fmt(c["peer_qps"]), ratio(c["qps_ratio"]),
             fmt(c["p50_ms"]), fmt(c["peer_p50_ms"]), ratio(c["p50_ratio"]), fmt(c["p99_ms"]),
             fmt(c["peer_p99_ms"]), ratio(c["p99_ratio"]), f"{c['errors']} / {c['peer_errors']}"]
            for c in comparison]
    ours = "server" if same_mode else OURS
    note = (f"each server against {peer} in the same workload, mode and concurrency." if same_mode else
            f"{PEER} has no rewriting: every {OURS} mode is compared with its plain-query search.")
    return Table(f"{ours} vs {peer} (medians over rounds; QPS ratio > 1 and latency ratio < 1: {ours} ahead)",
                 [*lead, "mode", "concurrency", f"{ours} QPS", f"{peer} QPS", "QPS ratio", f"{ours} p50 ms",
                  f"{peer} p50 ms", "p50 ratio", f"{ours} p99 ms", f"{peer} p99 ms", "p99 ratio", "errors"], rows,
                 note=note)


def _errors(row: dict[str, Any]) -> str:
    codes = ", ".join(f"{code} {n}" for code, n in row["error_codes"].items())
    return f"{row['errors']} ({codes})" if codes else str(row["errors"])
