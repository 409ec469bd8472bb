"""`evdsearch bench serve`: QPS and latency percentiles of a running server per mode and concurrency (loopback)."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.client.channel import add_client_security_options
from evdsearch.plots import Table, fmt, new_figure

STAGES = ("rewrite", "encode", "search", "hydrate")
OURS, PEER = "evdsearch", "clip-back"  # server labels in rows and tables


def register(tree: Any) -> None:
    p = tree.add("bench", "serve", "load a running search server: QPS and p50/p95/p99 latency per mode and concurrency")
    p.add_argument("--server", default="127.0.0.1:50051", help="host:port of the server (default 127.0.0.1:50051)")
    p.add_argument("--protocol", default="grpc", choices=("grpc", "clip-back"),
                   help="grpc: `evdsearch serve`; clip-back: clip-retrieval's HTTP /knn-service (peer comparison)")
    p.add_argument("--concurrency", default="1,4,16,64", help="comma-separated client threads (default 1,4,16,64)")
    p.add_argument("--duration", type=float, default=10.0, help="measured seconds per (mode, concurrency)")
    p.add_argument("--warmup", type=float, default=1.0, help="unmeasured seconds before each measurement")
    p.add_argument("--mode", default="fused", help="comma-separated: fused, original, rewritten (default fused)")
    p.add_argument("--queries", help="file with one query a line (default: a built-in mix of entity queries)")
    p.add_argument("--k", type=int, default=10, help="hits per query (default 10)")
    p.add_argument("--no-explain", action="store_true", help="do not ask for explanations (no stage breakdown)")
    p.add_argument("--explain-modes", metavar="MODES",
                   help="ask for explanations (stage timings) only in these modes (default: every mode); an "
                        "explanation makes original mode compute q', which it otherwise skips")
    p.add_argument("--workloads", default="cycle", metavar="W[,W]",
                   help="query streams, cells interleaved: cycle (the queries in turn; default), cold (every text "
                        "unique: no cache hits), warm (a Zipf-distributed log of the queries)")
    p.add_argument("--zipf-exponent", type=float, default=1.1, help="warm workload: P(r-th query) ~ 1/r^s (1.1)")
    p.add_argument("--also", action="append", default=[], metavar="LABEL=HOST:PORT",
                   help="another evdsearch server loaded alongside --server, e.g. the same index with "
                        "--batch-window-ms 0 (repeatable)")
    p.add_argument("--label", default=OURS, help=f"name of --server in the tables (default {OURS})")
    p.add_argument("--machine", default="", help="what ran the benchmark, for the plot's title (e.g. 2-core CPU box)")
    p.add_argument("--unique-queries", action="store_true",
                   help="append a running number to every query so the server's rewrite cache never hits")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    p.add_argument("--channels", type=int, default=4, help="gRPC channels shared by the client threads")
    p.add_argument("--peer", metavar="HOST:PORT",
                   help="also load a clip-retrieval clip-back here, cell by cell interleaved with --server, "
                        "and report evdsearch / clip-back ratios (start one with `python -m benchmarks.peer_clip_back`)")
    p.add_argument("--rounds", type=int, default=1,
                   help="measure every cell this many times, interleaved; tables give medians (default 1)")
    p.add_argument("--indice-name", help="clip-back: the index name from its indices JSON (default: its first)")
    p.add_argument("--allow-remote", action="store_true",
                   help="allow a non-loopback --server (off: load tests stay on this machine)")
    p.add_argument("--out", default="runs/bench/serve", help="output folder (default runs/bench/serve)")
    p.add_argument("--stem", default="serve", help="file name stem of the outputs (default serve)")
    add_client_security_options(p)
    p.set_defaults(run=run)


def _levels(text: str) -> list[int]:
    from evdsearch.errors import InvalidInput

    try:
        levels = [int(x) for x in text.split(",") if x.strip()]
    except ValueError as err:
        raise InvalidInput(f"--concurrency must be comma-separated integers, got {text!r}") from err
    if not levels or min(levels) < 1 or max(levels) > 1024:
        raise InvalidInput("--concurrency levels must be between 1 and 1024")
    return levels


def _clip_back_target(args: argparse.Namespace, address: str) -> tuple[Any, dict[str, Any]]:
    """(Target, server info) for a clip-back at `address`; its one mode is the plain query (no rewriting)."""
    from evdsearch.benchmarks.peer_clip_back import http_caller, server_info
    from evdsearch.benchmarks.serve_load import Target

    def make(mode: str) -> Any:
        return http_caller(address, k=args.k, indice_name=args.indice_name, timeout_s=args.timeout)

    return Target(PEER, make, ["original"]), server_info(address)


def _grpc_target(args: argparse.Namespace, modes: list[str], address: str | None = None,
                 label: str | None = None) -> tuple[Any, dict[str, Any]]:
    """(Target, Info RPC) for the evdsearch server at `address` (default --server)."""
    from evdsearch.benchmarks import serve_load
    from evdsearch.client.channel import security_from_args

    address = address or args.server
    security = security_from_args(args)
    serve_load.wait_for_grpc(address, timeout_s=args.timeout, security=security)
    explained = set(modes) if args.explain_modes is None else {m.strip() for m in args.explain_modes.split(",")}

    def make_grpc(mode: str) -> Any:
        return serve_load.grpc_caller(address, mode, k=args.k, explain=not args.no_explain and mode in explained,
                                      timeout_s=args.timeout, channels=args.channels, security=security)

    return serve_load.Target(label or args.label, make_grpc, modes), grpc_info(address, args.timeout, security)


def entity_share(address: str, queries: list[str], timeout_s: float, security: Any = None) -> float:
    """Share of the queries in which the server's rewriter finds a knowledge-base entity (Rewrite RPC)."""
    from evdsearch.client.channel import open_channel
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    with open_channel(address, security) as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        found = sum(bool(stub.Rewrite(pb.RewriteRequest(text=q), timeout=timeout_s).entities) for q in queries)
    return found / len(queries) if queries else 0.0


def _labelled_servers(specs: list[str]) -> list[tuple[str, str]]:
    from evdsearch.errors import InvalidInput

    out = []
    for spec in specs:
        label, sep, address = spec.partition("=")
        if not sep or not label or not address:
            raise InvalidInput(f"--also takes LABEL=HOST:PORT, got {spec!r}")
        out.append((label, address))
    return out


def grpc_info(address: str, timeout_s: float, security: Any = None) -> dict[str, Any]:
    """The server's Info RPC as a dict (what was loaded), for the report."""
    import grpc
    from google.protobuf.json_format import MessageToDict

    from evdsearch.client.channel import open_channel
    from evdsearch.client.search_cli import explain_rpc_error
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    with open_channel(address, security) as channel:
        try:
            info = search_pb2_grpc.SearchServiceStub(channel).Info(pb.InfoRequest(), timeout=timeout_s)
        except grpc.RpcError as err:  # e.g. UNAUTHENTICATED: one line, before any load is sent
            raise explain_rpc_error(err, address, timeout_s) from None
    return MessageToDict(info, preserving_proto_field_name=True)


def run_benchmark(args: argparse.Namespace, log: Any = print) -> dict[str, Any]:
    """Flags -> the result dict (config, server info, one row per mode x concurrency)."""
    from evdsearch.benchmarks import serve_load
    from evdsearch.errors import InvalidInput

    serve_load.check_target(args.server, args.allow_remote)
    if args.peer:
        if args.protocol == "clip-back":
            raise InvalidInput("--peer compares an evdsearch --server with a clip-back; drop --protocol clip-back")
        serve_load.check_target(args.peer, args.allow_remote)
    if args.rounds < 1:
        raise InvalidInput(f"--rounds must be at least 1, got {args.rounds}")
    modes = [m.strip() for m in args.mode.split(",") if m.strip()]
    if args.protocol == "grpc" and (not modes or set(modes) - {"fused", "original", "rewritten"}):
        raise InvalidInput(f"--mode takes fused, original, rewritten (comma-separated), got {args.mode!r}")
    levels, queries = _levels(args.concurrency), serve_load.read_queries(args.queries)
    workloads = serve_load.make_workloads([w.strip() for w in args.workloads.split(",") if w.strip()], queries,
                                          args.zipf_exponent)
    also = _labelled_servers(args.also)
    for _, address in also:
        serve_load.check_target(address, args.allow_remote)
    target, info = _clip_back_target(args, args.server) if args.protocol == "clip-back" else _grpc_target(args, modes)
    targets = [target]
    also_info = {}
    for label, address in also:
        extra, also_info[label] = _grpc_target(args, modes, address, label)
        targets.append(extra)
    if args.peer:
        peer, peer_info = _clip_back_target(args, args.peer)
        targets.append(peer)
    rows = serve_load.run_serve_benchmark(targets, levels, args.duration, queries, args.warmup,
                                          args.unique_queries, args.rounds, log,
                                          workloads if args.workloads != "cycle" else None)
    config = {"server": args.server, "protocol": args.protocol, "peer": args.peer, "modes": list(target.modes),
              "concurrency": levels, "rounds": args.rounds, "duration_s": args.duration, "warmup_s": args.warmup,
              "k": args.k, "explain": not args.no_explain, "unique_queries": args.unique_queries,
              "queries": len(queries), "channels": args.channels, "workloads": [w.name for w in workloads],
              "zipf_exponent": args.zipf_exponent, "also": dict((label, a) for label, a in also),
              "explain_modes": args.explain_modes, "machine": args.machine}
    if args.protocol == "grpc":
        from evdsearch.client.channel import security_from_args

        config["entity_query_share"] = entity_share(args.server, queries, args.timeout, security_from_args(args))
    result = {"benchmark": "serve", "config": config, "server_info": info, "results": rows}
    if also_info:
        result["also_info"] = also_info
    if args.peer:
        from evdsearch.benchmarks.serve_compare import compare

        result["peer_info"] = peer_info
        result["comparison"] = compare(rows, [t.name for t in targets[:-1]], PEER)
    return result


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


def _comparison_table(comparison: list[dict[str, Any]]) -> Table:
    def ratio(value: float | None) -> str:  # None: the peer completed nothing; NaN: one side has no latency
        return "-" if value is None or value != value else f"{value:.2f}x"

    many = len({(c.get("server"), c.get("workload")) for c in comparison}) > 1
    lead = ["server", "workload"] if many else []
    rows = [[*([c["server"], c["workload"]] if many else []), c["mode"], str(c["concurrency"]), fmt(c["qps"]), fmt(c["peer_qps"]), ratio(c["qps_ratio"]),
             fmt(c["p50_ms"]), fmt(c["peer_p50_ms"]), ratio(c["p50_ratio"]), fmt(c["p99_ms"]),
             fmt(c["peer_p99_ms"]), ratio(c["p99_ratio"]), f"{c['errors']} / {c['peer_errors']}"]
            for c in comparison]
    return Table(f"{OURS} vs {PEER} (medians over rounds; QPS ratio > 1 and latency ratio < 1: {OURS} ahead)",
                 [*lead, "mode", "concurrency", f"{OURS} QPS", f"{PEER} QPS", "QPS ratio", f"{OURS} p50 ms",
                  f"{PEER} p50 ms", "p50 ratio", f"{OURS} p99 ms", f"{PEER} p99 ms", "p99 ratio", "errors"], rows,
                 note=f"{PEER} has no rewriting: every {OURS} mode is compared with its plain-query search.")


def _errors(row: dict[str, Any]) -> str:
    codes = ", ".join(f"{code} {n}" for code, n in row["error_codes"].items())
    return f"{row['errors']} ({codes})" if codes else str(row["errors"])


def plot(result: dict[str, Any]) -> Any:
    """QPS and p50/p99 latency vs concurrency per server and mode (medians over rounds), plus the stage
    breakdown at the lowest concurrency."""
    from evdsearch.benchmarks.serve_compare import cells

    rows = result["results"]
    has_stages = any(r["stages_ms"] for r in rows)
    fig, axes = new_figure(ncols=3 if has_stages else 2, width=5.0)
    qps_ax, lat_ax = axes[:2]
    medians = cells(rows)
    cfg = result["config"]
    for server, load, mode in dict.fromkeys((server, load, mode) for server, load, mode, _ in medians):
        mine = sorted((level, m) for (s, w, md, level), m in medians.items() if (s, w, md) == (server, load, mode))
        levels = [level for level, _ in mine]
        label = " ".join([*([server] if cfg.get("peer") or cfg.get("also") else []),
                          *([load] if len(cfg.get("workloads", [])) > 1 else []), mode])
        (line,) = qps_ax.plot(levels, [m["qps"] for _, m in mine], "-o", label=label)
        lat_ax.plot(levels, [m["p50_ms"] for _, m in mine], "-o", color=line.get_color(), label=f"{label} p50")
        lat_ax.plot(levels, [m["p99_ms"] for _, m in mine], "--^", color=line.get_color(), label=f"{label} p99")
    for ax, ylabel in ((qps_ax, "queries / s"), (lat_ax, "latency ms")):
        ax.set_xscale("log", base=2)
        ax.set_xlabel("concurrent clients")
        ax.set_ylabel(ylabel)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=8)
    qps_ax.set_title("throughput")
    lat_ax.set_title("latency")
    if has_stages:
        _stage_bars(axes[2], [r for r in rows if r["stages_ms"] and r.get("round", 1) == 1])
    if cfg.get("machine"):
        fig.suptitle(cfg["machine"], fontsize=9)
    return fig


def _stage_bars(stage_ax: Any, rows: list[dict[str, Any]]) -> None:
    """Stacked mean server stage times per mode at the lowest concurrency (queueing least distorts them)."""
    lowest = min(r["concurrency"] for r in rows)
    bars = [r for r in rows if r["concurrency"] == lowest and r["stages_ms"]]
    bottom = [0.0] * len(bars)
    seen = {s for r in bars for s in r["stages_ms"]}
    for stage in [s for s in STAGES if s in seen] + sorted(seen - set(STAGES)):
        values = [r["stages_ms"].get(stage, 0.0) for r in bars]
        names = [f"{r['server']}\n{r.get('workload', 'cycle')}\n{r['mode']}" for r in bars]
        stage_ax.bar(names if len(set(names)) > len({r["mode"] for r in bars}) else [r["mode"] for r in bars],
                     values, bottom=bottom, label=stage)
        bottom = [b + v for b, v in zip(bottom, values, strict=True)]
    stage_ax.set_title(f"server stages at concurrency {lowest}")
    stage_ax.set_ylabel("mean ms")
    stage_ax.legend(fontsize=8)


def run(args: argparse.Namespace) -> int:
    from evdsearch.plots import print_report, write_bundle

    result = run_benchmark(args)
    md = "\n".join(t.markdown() for t in tables(result))
    print_report(tables(result), write_bundle(args.out, args.stem, result, md, plot(result)))
    return 0
