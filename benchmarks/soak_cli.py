"""`evdsearch bench soak`: clients for as long as asked against a loopback server: errors, p50/p99 over time, RSS
drift, which server generation answered; `--mixed` also adds/deletes images, imports and calibrates the KB and
reloads the server meanwhile."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from evdsearch.client.channel import add_client_security_options
from evdsearch.plots import Table, fmt, new_figure


def register(tree: Any) -> None:
    p = tree.add("bench", "soak", "soak a running server: errors, p50/p99 latency over time and server RSS drift")
    p.add_argument("--server", default="127.0.0.1:50051",
                   help="host:port of the server, or host:port,host:port,... for replicas (default 127.0.0.1:50051)")
    p.add_argument("--clients", type=int, default=64, help="closed-loop client threads (default 64)")
    p.add_argument("--duration", type=float, default=60.0, help="measured seconds, as many as asked (default 60)")
    p.add_argument("--warmup", type=float, default=5.0, help="unmeasured seconds first (default 5)")
    p.add_argument("--window", type=float, default=5.0, help="seconds per row of the over-time table (default 5)")
    p.add_argument("--server-pid", type=int, metavar="PID",
                   help="the server's process id on this machine: its RSS is sampled every second")
    p.add_argument("--info-every", type=float, default=1.0, metavar="S",
                   help="an Info call every S seconds on a channel of its own: which server generation answers "
                        "(replicas that leave and rejoin, reloads) per window (0: none; default 1)")
    p.add_argument("--mode", default="fused", choices=("fused", "original", "rewritten"), help="search mode")
    p.add_argument("--queries", help="file with one query a line (default: a built-in mix of entity queries)")
    p.add_argument("--k", type=int, default=10, help="hits per query (default 10)")
    p.add_argument("--timeout", type=float, default=10.0, help="per-request timeout in seconds")
    p.add_argument("--channels", type=int, default=4, help="gRPC channels shared by the client threads")
    p.add_argument("--allow-remote", action="store_true", help="allow a non-loopback --server")
    p.add_argument("--machine", default=f"{os.cpu_count()}-core CPU dev box",
                   help="what the figures were measured on (titles)")
    p.add_argument("--out", default="runs/bench/soak", help="output folder (default runs/bench/soak)")
    p.add_argument("--stem", default="soak", help="file name stem of the outputs (default soak)")
    mixed = p.add_argument_group("mixed workload (--mixed): writes and reloads while the clients search")
    mixed.add_argument("--mixed", action="store_true", help="run the writer: index add / delete, kb import, "
                                                            "kb calibrate, each followed by AdminService.Reload")
    mixed.add_argument("--index", type=Path, help="the index folder the server serves")
    mixed.add_argument("--kb", type=Path, help="the KB folder the server serves")
    mixed.add_argument("--add-images", type=Path, metavar="DIR", help="images added, then deleted, each cycle")
    mixed.add_argument("--calibrate-data", metavar="DATA", help="kb calibrate --data (omit: no calibration)")
    mixed.add_argument("--calibrate-model", metavar="CLIP", help="kb calibrate --model (the index's CLIP)")
    mixed.add_argument("--calibrate-every", type=int, default=3, metavar="N", help="calibrate every N cycles")
    mixed.add_argument("--writer-pause", type=float, default=5.0, metavar="S", help="seconds between writes")
    add_client_security_options(p)
    p.set_defaults(run=run)


def info_caller(address: str, timeout_s: float, security: Any) -> tuple[Any, Any]:
    """(call, close): Info on a channel of its own -> (loaded_at or None, generation, status name)."""
    import grpc

    from evdsearch.client.channel import open_channel
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    channel = open_channel(address, security)
    stub = search_pb2_grpc.SearchServiceStub(channel)

    def call() -> tuple[str | None, int, str]:
        try:
            info = stub.Info(pb.InfoRequest(), timeout=timeout_s)
        except grpc.RpcError as err:
            return None, 0, err.code().name if err.code() else type(err).__name__
        return info.loaded_at, info.generation, "OK"

    return call, channel.close


def reload_caller(address: str, security: Any) -> Any:
    """() -> None after a successful AdminService.Reload, else why not."""
    import grpc

    from evdsearch.client.channel import open_channel
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    def reload() -> str | None:
        with open_channel(address, security) as channel:
            try:
                search_pb2_grpc.AdminServiceStub(channel).Reload(pb.ReloadRequest(), timeout=600)
            except grpc.RpcError as err:
                return f"{err.code().name}: {err.details()}"
        return None

    return reload


def make_writer(args: argparse.Namespace, security: Any) -> Any:
    from evdsearch.benchmarks.soak_mixed import MixedConfig, MixedWriter
    from evdsearch.client.targets import grpc_target
    from evdsearch.errors import InvalidInput

    if not args.mixed:
        return None
    if not (args.index and args.kb and args.add_images):
        raise InvalidInput("--mixed needs --index, --kb and --add-images (the folders the server serves)")
    if grpc_target(args.server).replicas:
        raise InvalidInput("--mixed reloads one server: give its single host:port as --server")
    cfg = MixedConfig(args.index, args.kb, args.add_images, args.calibrate_data, args.calibrate_model,
                      args.calibrate_every, args.writer_pause)
    return MixedWriter(cfg, reload_caller(args.server, security))


def run_benchmark(args: argparse.Namespace) -> dict[str, Any]:
    from evdsearch.benchmarks import serve_load
    from evdsearch.benchmarks.serve_cli import grpc_info
    from evdsearch.benchmarks.soak import SoakConfig, run_soak
    from evdsearch.benchmarks.workloads import read_queries
    from evdsearch.client.channel import security_from_args

    serve_load.check_target(args.server, args.allow_remote)
    security = security_from_args(args)
    writer = make_writer(args, security)
    serve_load.wait_for_grpc(args.server, timeout_s=args.timeout, security=security)
    info = grpc_info(args.server, args.timeout, security)  # also fails fast on a refused token
    cfg = SoakConfig(clients=args.clients, duration_s=args.duration, warmup_s=args.warmup, window_s=args.window,
                     info_every_s=args.info_every)
    call, close = serve_load.grpc_caller(args.server, args.mode, k=args.k, explain=False, timeout_s=args.timeout,
                                         channels=args.channels, security=security)
    info_call, info_close = info_caller(args.server, args.timeout, security)
    print(f"bench soak: load starts, measured from +{args.warmup:g} s for {args.duration:g} s", flush=True)
    try:
        result = run_soak(call, read_queries(args.queries), cfg, args.server_pid, info_call, writer)
    finally:
        close()
        info_close()
    config = {"server": args.server, "clients": args.clients, "duration_s": args.duration, "warmup_s": args.warmup,
              "window_s": args.window, "mode": args.mode, "k": args.k, "channels": args.channels,
              "timeout_s": args.timeout, "server_pid": args.server_pid, "machine": args.machine,
              "mixed": bool(args.mixed)}
    return {"benchmark": "soak", "config": config, "server_info": info, **result}


def tables(result: dict[str, Any]) -> list[Table]:
    cfg, rss = result["config"], result["rss"]
    codes = ", ".join(f"{code} {n}" for code, n in result["error_codes"].items())
    drift = "-" if rss["drift_pct"] is None else f"{rss['drift_pct']:+.1f} %"
    ratio = result.get("p99_last_over_first")
    summary = Table(
        f"Soak ({cfg['machine']}): {cfg['clients']} clients for {cfg['duration_s']:g} s against {cfg['server']}"
        + (" with writes and reloads" if cfg.get("mixed") else ""),
        ["requests", "errors", "QPS", "p50 ms", "p99 ms", "p99 last / first window", "server RSS start MiB",
         "end MiB", "peak MiB", "drift"],
        [[str(result["requests"]), f"{result['errors']}" + (f" ({codes})" if codes else ""), fmt(result["qps"]),
          fmt(result["latency_ms"]["p50"]), fmt(result["latency_ms"]["p99"]),
          "-" if ratio is None else f"{ratio:.2f}", fmt(rss["start_mb"]), fmt(rss["end_mb"]), fmt(rss["peak_mb"]),
          drift]],
        note="RSS drift: server RSS at the end of the measured window vs its start (after the warm-up)"
             + ("" if cfg["server_pid"] else "; not measured: pass --server-pid PID")
             + ". Whole-run percentiles from a 2 %-bucket histogram; per-window ones exact."
             + (f" Info calls that failed: {result['info_errors']}." if result.get("info_errors") else ""))
    over_time = Table(f"Over time ({cfg['window_s']:g} s windows)",
                      ["t s", "requests", "errors", "p50 ms", "p99 ms", "server RSS MiB", "generations seen"],
                      [[fmt(w["t_s"], 0), str(w["requests"]),
                        str(w["errors"]) + (f" ({', '.join(f'{c} {n}' for c, n in w['codes'].items())})"
                                            if w.get("codes") else ""),
                        fmt(w["p50"]), fmt(w["p99"]), fmt(w["rss_mb"]), _generations(w)] for w in result["windows"]])
    out = [summary, over_time]
    writes = result.get("writes")
    if writes:
        out.append(Table(f"Writes meanwhile ({writes['cycles']} cycles)",
                         ["write", "runs", "failed", "mean s", "max s", "last failure"],
                         [[name, str(op["runs"]), str(op["failed"]), fmt(op["mean_s"]), fmt(op["max_s"]),
                           op["last_error"] or ""] for name, op in writes["ops"].items()]))
    return out


def _generations(window: dict[str, Any]) -> str:
    """How many distinct servers (by load time) answered Info in the window, and the highest generation."""
    seen = window.get("servers") or []
    return f"{len(seen)} (gen {window['generation']})" if seen else "-"


def plot(result: dict[str, Any]) -> Any:
    """Latency p50/p99 and errors per window, and the server's RSS, over time."""
    cfg, rows = result["config"], result["windows"]
    fig, (lat_ax, rss_ax) = new_figure(ncols=2, width=5.5)
    t = [w["t_s"] for w in rows]
    lat_ax.plot(t, [w["p50"] for w in rows], "-o", label="p50")
    lat_ax.plot(t, [w["p99"] for w in rows], "--^", label="p99")
    errors_ax = lat_ax.twinx()
    errors_ax.bar(t, [w["errors"] for w in rows], width=cfg["window_s"] * 0.6, alpha=0.25, color="red",
                  label="errors")
    errors_ax.set_ylim(0, max(1, *(w["errors"] for w in rows)) * 1.1)  # 0 errors: an empty axis from 0, not +-0.04
    errors_ax.set_ylabel("errors per window")
    lat_ax.set_xlabel("seconds into the measured run")
    lat_ax.set_ylabel("latency ms")
    lat_ax.set_title(f"{cfg['clients']} clients, {cfg['machine']}")
    lat_ax.legend(loc="upper left", fontsize=8)
    lat_ax.grid(True, alpha=0.3)
    samples = result["rss_samples"]
    if samples:
        rss_ax.plot([s[0] for s in samples], [s[1] for s in samples], "-")
        drift = result["rss"]["drift_pct"]
        rss_ax.set_title("server RSS" + ("" if drift is None else f" (drift {drift:+.1f} % after the warm-up)"))
    else:
        rss_ax.set_title("server RSS not measured (no --server-pid)")
    rss_ax.axvline(0, color="grey", linestyle=":", label="end of warm-up")
    rss_ax.set_xlabel("seconds (0 = end of warm-up)")
    rss_ax.set_ylabel("MiB")
    rss_ax.grid(True, alpha=0.3)
    return fig


def run(args: argparse.Namespace) -> int:
    from evdsearch.plots import print_report, write_bundle

    result = run_benchmark(args)
    md = "\n".join(t.markdown() for t in tables(result))
    print_report(tables(result), write_bundle(args.out, args.stem, result, md, plot(result)))
    return 0
