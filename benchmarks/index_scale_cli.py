"""`evdsearch bench index-scale`: FAISS factories at scale on synthetic vectors; JSON, Markdown and a plot."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.plots import Table, fmt, new_figure


def _ints(text: str) -> tuple[int, ...]:
    return tuple(int(x) for x in text.split(",") if x.strip())


def register(tree: Any) -> None:
    from evdsearch.benchmarks.index_scale import DEFAULT_FACTORIES

    p = tree.add("bench", "index-scale", "build time, size, QPS and recall@10 of FAISS index types at scale")
    p.add_argument("--n", type=int, default=1_000_000, help="database vectors (default 1000000)")
    p.add_argument("--dim", type=int, default=512, help="vector dimension (default 512)")
    p.add_argument("--queries", type=int, default=1000, help="query vectors (default 1000)")
    p.add_argument("--factories", default=";".join(DEFAULT_FACTORIES),
                   help="';'-separated faiss factory strings (commas belong to a factory), "
                        f"default {';'.join(DEFAULT_FACTORIES)!r}")
    p.add_argument("--factory", action="append", default=[], help="one factory; repeatable, replaces --factories")
    p.add_argument("--device", default="auto", choices=("cpu", "gpu", "auto"),
                   help="cpu, gpu, or auto: gpu when faiss-gpu sees one, then cpu (default)")
    p.add_argument("--k", type=int, default=10, help="neighbours per query; recall@k vs exact (default 10)")
    p.add_argument("--clusters", type=int, default=1000, help="Gaussian-mixture components (default 1000)")
    p.add_argument("--latent-dim", type=int, default=64, help="intrinsic dimension of the data (default 64; 0: an isotropic mixture in --dim)")
    p.add_argument("--spread", type=float, default=1.5, help="within-cluster std vs centres' (default 1.5)")
    p.add_argument("--ambient", type=float, default=0.1, help="full-dimensional noise norm (default 0.1)")
    p.add_argument("--nprobe", default="1,4,16,64", help="IVF operating points (default 1,4,16,64)")
    p.add_argument("--ef-search", default="16,64,256", help="HNSW operating points (default 16,64,256)")
    p.add_argument("--single-seconds", type=float, default=2.0, help="budget of the one-query loop per point")
    p.add_argument("--threads", type=int, default=0, help="faiss CPU threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--chunk-size", type=int, default=0,
                   help="larger than RAM: generate, add and brute-force the base this many vectors at a time "
                        "(CPU; 0: all in memory, the default)")
    p.add_argument("--train-size", type=int, default=200_000, help="chunked: vectors IVF/PQ train on (a sample)")
    p.add_argument("--truth-queries", type=int, default=100,
                   help="chunked: queries whose exact top-k is computed over the whole base (default 100)")
    p.add_argument("--out", default="runs/bench/index-scale", help="output folder (default runs/bench/index-scale)")
    p.add_argument("--stem", default="index_scale", help="file name stem of the outputs (default index_scale)")
    p.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> Any:
    from evdsearch.benchmarks.index_scale import IndexScaleConfig

    factories = args.factory or [f.strip() for f in args.factories.split(";") if f.strip()]
    return IndexScaleConfig(n=args.n, dim=args.dim, queries=args.queries, factories=tuple(factories),
                            device=args.device, k=args.k, clusters=args.clusters, latent_dim=args.latent_dim,
                            spread=args.spread, ambient=args.ambient,
                            seed=args.seed, nprobe=_ints(args.nprobe), ef_search=_ints(args.ef_search),
                            single_seconds=args.single_seconds, threads=args.threads)


def _params(params: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in params.items()) or "-"


def tables(result: dict[str, Any]) -> list[Table]:
    """One table per device: a row per (factory, operating point)."""
    cfg, env = result["config"], result["environment"]
    k = cfg["k"]
    header = ["factory", "params", "build s", "size MB", "RSS +MB", f"recall@{k}", "batch QPS",
              "single QPS", "single p50 ms", "single p99 ms"]
    out = []
    for device in dict.fromkeys(r["device"] for r in result["runs"]):
        rows = []
        for run in (r for r in result["runs"] if r["device"] == device):
            if run["skipped"]:
                rows.append([run["factory"], "-", "-", "-", "-", "-", "-", "-", "-", run["skipped"]])
            for i, pt in enumerate(run["points"]):
                cost = [fmt(run["build_s"], 2), fmt(run["size_mb"]), fmt(run["rss_delta_mb"])] if i == 0 else [""] * 3
                rows.append([run["factory"] if i == 0 else "", _params(pt["params"]), *cost, f"{pt['recall']:.3f}",
                             fmt(pt["batch_qps"]), fmt(pt["single_qps"]), fmt(pt["single_p50_ms"], 2),
                             fmt(pt["single_p99_ms"], 2)])
        where = f"GPU {env['gpu']}" if device == "gpu" else f"CPU ({env['omp_threads']} threads, {env['cpus']} cores)"
        out.append(Table(f"Index scale, {where}: n={cfg['n']:,} dim={cfg['dim']} queries={cfg['queries']}",
                         header, rows, note=_note(result)))
    return out


def _note(result: dict[str, Any]) -> str:
    cfg, env = result["config"], result["environment"]
    return (f"Synthetic unit vectors: a {cfg['clusters']}-component Gaussian mixture in {cfg['latent_dim']} "
            f"dimensions (spread {cfg['spread']}), randomly projected to {cfg['dim']} (+ noise {cfg['ambient']}), "
            f"seed {cfg['seed']}; recall@{cfg['k']} = overlap with exact inner-product top-{cfg['k']}. "
            f"Batch QPS: all {cfg['queries']} queries in one call; single: one query per call. "
            f"Build = train + add. faiss {env['faiss']}, {env['machine']}.")


def plot(result: dict[str, Any]) -> Any:
    """Recall@k vs QPS, batched and single-query, one line per (factory, device)."""
    fig, (batch_ax, single_ax) = new_figure(ncols=2, width=6.5)
    for run in result["runs"]:
        if not run["points"]:
            continue
        recalls = [p["recall"] for p in run["points"]]
        style = "-o" if run["device"] == "cpu" else "--s"
        label = f"{run['factory']} ({run['device']})"
        batch_ax.plot(recalls, [p["batch_qps"] for p in run["points"]], style, label=label)
        single_ax.plot(recalls, [p["single_qps"] for p in run["points"]], style, label=label)
    cfg = result["config"]
    for ax, kind in ((batch_ax, "batched"), (single_ax, "one query per call")):
        ax.set_yscale("log")
        ax.set_xlabel(f"recall@{cfg['k']}")
        ax.set_ylabel("queries / s")
        ax.set_title(f"{kind}: n={cfg['n']:,}, dim={cfg['dim']}")
        ax.grid(True, which="both", alpha=0.3)
    batch_ax.legend(fontsize=8)
    return fig


def chunked_table(result: dict[str, Any]) -> Table:
    """The build side of a chunked run: training sample, times, peak memory and bytes per image."""
    cfg = result["config"]
    rows = [[r["factory"], f"{r['train_n']:,}", fmt(r["train_s"], 1), fmt(r["add_s"], 1), fmt(r["build_s"], 1),
             fmt(r["peak_rss_mb"]), fmt(r["size_mb"]), fmt(r["bytes_per_image"], 1), str(r["truth_queries"])]
            for r in result["runs"]]
    return Table(f"Chunked build (2-core CPU dev box): n={cfg['n']:,} dim={cfg['dim']}, "
                 f"{result['chunk_size']:,} vectors per chunk",
                 ["factory", "train n", "train s", "add s", "build s", "peak RSS MB", "size MB", "bytes/image",
                  "truth queries"], rows,
                 note="add s includes generating each chunk and updating the exact top-k of the truth queries; "
                      "recall below is over the truth queries, QPS over all queries.")


def markdown(result: dict[str, Any]) -> str:
    extra = [chunked_table(result)] if result.get("mode") == "chunked" else []
    return "\n".join(t.markdown() for t in [*extra, *tables(result)])


def run(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.index_scale import run_index_scale
    from evdsearch.plots import print_report, write_bundle

    def save(partial: dict[str, Any]) -> dict:
        return write_bundle(args.out, args.stem, partial, markdown(partial), plot(partial))

    if args.chunk_size:
        from evdsearch.benchmarks.index_scale_chunked import run_index_scale_chunked

        result = run_index_scale_chunked(config_from_args(args), args.chunk_size, args.train_size,
                                         args.truth_queries, on_result=save)
        print_report([chunked_table(result), *tables(result)], save(result))
        return 0
    result = run_index_scale(config_from_args(args), on_result=save)
    print_report(tables(result), save(result))
    return 0
