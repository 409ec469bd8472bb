"""`evdsearch bench serve`: QPS and latency percentiles of a running server per mode and concurrency (loopback)."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.benchmarks.serve_report import OURS, PEER, tables
from evdsearch.client.channel import add_client_security_options


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
    p.add_argument("--explain-every", type=int, default=1, metavar="N",
                   help="ask for an explanation in every N-th request only (default 1: every request); clients "
                        "seldom ask, and an explained query is always rewritten, even with a fusion weight of 0")
    p.add_argument("--workloads", default="cycle", metavar="W[,W]",
                   help="query streams, cells interleaved: cycle (the queries in turn; default), cold (every text "
                        "unique: no cache hits), warm (a Zipf-distributed log of the queries)")
    p.add_argument("--zipf-exponent", type=float, default=1.1, help="warm workload: P(r-th query) ~ 1/r^s (1.1)")
    p.add_argument("--also", action="append", default=[], metavar="LABEL=HOST:PORT",
                   help="another evdsearch server loaded alongside --server, e.g. the same index with "
                        "--batch-window-ms 0 (repeatable)")
    p.add_argument("--label", default=OURS, help=f"name of --server in the tables (default {OURS})")
    p.add_argument("--baseline", metavar="LABEL",
                   help="also give every other evdsearch server's QPS and latency as ratios to this one's, mode by "
                        "mode (e.g. --label pro --also template=HOST:PORT --baseline template: the served quality "
                        "configuration against the template one)")
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
                                      timeout_s=args.timeout, channels=args.channels, security=security,
                                      explain_every=args.explain_every)

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
    from evdsearch.benchmarks import workloads as streams
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
    levels, queries = _levels(args.concurrency), streams.read_queries(args.queries)
    workloads = streams.make_workloads([w.strip() for w in args.workloads.split(",") if w.strip()], queries,
                                       args.zipf_exponent)
    also = _labelled_servers(args.also)
    if args.baseline and args.baseline not in {args.label, *(label for label, _ in also)}:
        raise InvalidInput(f"--baseline {args.baseline} names no server: give --label or an --also LABEL")
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
              "explain_modes": args.explain_modes, "explain_every": args.explain_every, "machine": args.machine}
    if args.protocol == "grpc":
        from evdsearch.client.channel import security_from_args

        config["entity_query_share"] = entity_share(args.server, queries, args.timeout, security_from_args(args))
    result = {"benchmark": "serve", "config": config, "server_info": info, "results": rows}
    if also_info:
        result["also_info"] = also_info
    if args.protocol == "grpc":
        result["server_configs"] = {target.name: info, **also_info}  # which rewriter each label serves
    if args.baseline:
        from evdsearch.benchmarks.serve_compare import against_baseline

        config["baseline"] = args.baseline
        result["baseline_comparison"] = against_baseline(rows, args.baseline)
    if args.peer:
        from evdsearch.benchmarks.serve_compare import compare

        result["peer_info"] = peer_info
        result["comparison"] = compare(rows, [t.name for t in targets[:-1]], PEER)
    return result


def run(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.serve_plot import plot
    from evdsearch.plots import print_report, write_bundle

    result = run_benchmark(args)
    report = tables(result)
    md = "\n".join(t.markdown() for t in report)
    print_report(report, write_bundle(args.out, args.stem, result, md, plot(result)))
    return 0
