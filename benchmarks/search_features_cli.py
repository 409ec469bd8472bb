"""`evdsearch bench search-features`: filtered recall and QPS on synthetic vectors, and the search options on a
shapes world (filters, pages, threshold, weighted terms, dedup, MMR, hostile filters); tables, JSON and plots."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any

from evdsearch.plots import Table, fmt, new_figure


def register(tree: Any) -> None:
    p = tree.add("bench", "search-features", "filters (recall, QPS, FAISS vs Milvus), pages, thresholds, "
                                            "weighted terms, dedup and MMR")
    p.add_argument("--part", choices=("filters", "world", "all"), default="all",
                   help="filters: synthetic vectors; world: a shapes world through the engine (default all)")
    p.add_argument("--n", type=int, default=100_000, help="filters: database vectors (default 100000)")
    p.add_argument("--dim", type=int, default=128, help="filters: dimension (default 128)")
    p.add_argument("--queries", type=int, default=200, help="filters: queries (default 200)")
    p.add_argument("--factories", default="Flat;IVF256,Flat;HNSW32", help="filters: ';'-separated index types")
    p.add_argument("--seconds", type=float, default=1.5, help="filters: single-query timing budget per cell")
    p.add_argument("--nprobe", type=int, default=64, help="filters: IVF lists probed unfiltered (default 64)")
    p.add_argument("--ef-search", type=int, default=128, help="filters: HNSW efSearch unfiltered (default 128)")
    p.add_argument("--threads", type=int, default=1,
                   help="FAISS / torch threads (default 1: one request on one thread, as a busy server runs it)")
    p.add_argument("--milvus-rows", type=int, default=20_000, help="filters: rows compared in Milvus Lite (0: skip)")
    p.add_argument("--world", type=Path, help="world: shapes world folder (dataset_shapes.json)")
    p.add_argument("--clip", type=Path, help="world: its CLIP checkpoint folder")
    p.add_argument("--kb", type=Path, help="world: knowledge base (rewriting; optional)")
    p.add_argument("--copies", type=int, default=200, help="world: images copied twice with jitter (default 200)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=Path("runs/bench/search-features"), help="output folder (tables)")
    p.add_argument("--workdir", type=Path, default=Path("runs/bench/search-features/work"),
                   help="where the Milvus Lite file, the world's indexes and the jittered copies go")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evdsearch.errors import InvalidInput
    from evdsearch.plots import print_report, write_bundle

    if args.part in ("world", "all") and (args.world is None or args.clip is None):
        raise InvalidInput("the world part needs --world DIR and --clip CKPT (or --part filters)")
    from evdsearch.engine.threads import apply_thread_budget

    apply_thread_budget(args.threads)
    result: dict[str, Any] = {"machine": machine()}
    if args.part in ("filters", "all"):
        from dataclasses import asdict

        from evdsearch.benchmarks.search_filters import FilterBenchConfig, measure

        cfg = FilterBenchConfig(n=args.n, dim=args.dim, queries=args.queries, seconds=args.seconds,
                                factories=tuple(f for f in args.factories.split(";") if f),
                                milvus_rows=args.milvus_rows, seed=args.seed, workdir=str(args.workdir / "milvus"),
                                nprobe=args.nprobe, ef_search=args.ef_search)
        result["filters"] = asdict(measure(cfg))
    if args.part in ("world", "all"):
        from evdsearch.benchmarks.search_world import WorldBenchConfig
        from evdsearch.benchmarks.search_world import measure as measure_world

        result["world"] = measure_world(WorldBenchConfig(world=args.world, clip=args.clip, kb=args.kb,
                                                         workdir=args.workdir / "world", copies=args.copies,
                                                         seed=args.seed))
    tables = report_tables(result)
    command = "evdsearch bench search-features " + " ".join(_argv(args))
    markdown = f"Command: `{command}`\n\nMachine: {result['machine']['text']}\n\n" + "\n".join(
        t.markdown() for t in tables)
    paths = write_bundle(args.out, "search_features", result, markdown, plot(result) if "filters" in result else None)
    print_report(tables, paths)
    return 0


def _argv(args: argparse.Namespace) -> list[str]:
    out = [f"--part {args.part}"]
    if args.part != "world":
        out += [f"--n {args.n}", f"--queries {args.queries}", f"--factories '{args.factories}'",
                f"--nprobe {args.nprobe}", f"--ef-search {args.ef_search}", f"--threads {args.threads}"]
    if args.part != "filters":
        out += [f"--world {args.world}", f"--clip {args.clip}"] + ([f"--kb {args.kb}"] if args.kb else [])
    if args.part != "filters" and args.copies != 200:
        out.append(f"--copies {args.copies}")
    return out + [f"--workdir {args.workdir}", f"--out {args.out}"]


def machine() -> dict[str, Any]:
    """The machine in neutral words ("2-core AMD EPYC CPU, no GPU"); dated notes on load go to CHANGELOG.md."""
    cpu = "CPU"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as info:
            names = [line.split(":", 1)[1].strip() for line in info if line.startswith("model name")]
        cpu = f"{names[0]} CPU" if names else cpu
    except OSError:
        pass
    gpus = len(list(Path("/proc/driver/nvidia/gpus").glob("*"))) if Path("/proc/driver/nvidia/gpus").is_dir() else 0
    gpu = f"{gpus} NVIDIA GPU(s), not used" if gpus else "no GPU"
    return {"cpus": os.cpu_count(), "cpu": cpu, "gpus": gpus, "text": f"{os.cpu_count()}-core {cpu}, {gpu}"}


def report_tables(result: dict[str, Any]) -> list[Table]:
    tables = []
    if "filters" in result:
        f = result["filters"]
        tables.append(Table(f"Filtered search, {f['config']['n']:,} synthetic vectors (dim {f['config']['dim']}), "
                            f"recall@{f['config']['k']} vs exact filtered brute force",
                            ["index", "kept", "path", "recall", "QPS", "plan"],
                            [[c["factory"], "all" if c["selectivity"] == 1.0 else f"{c['selectivity']:.1%}",
                              c["path"], f"{c['recall']:.3f}", fmt(c["qps"], 0), c["plan"]] for c in f["cells"]]))
        tables.append(Table("Exact vs selector search by rows kept (ms per query)",
                            ["index", "rows kept", "exact ms", "selector ms"],
                            [[c["factory"], f"{c['rows']:,}", fmt(c["exact_ms"], 2), fmt(c["selector_ms"], 2)]
                             for c in f["crossover"]]))
        if f["milvus"]:
            tables.append(Table("FAISS Flat vs Milvus Lite FLAT under the same filter",
                                ["kept", "Milvus expression", "rows", "same ids", "same ids up to ties",
                                 "same sets", "largest swapped score gap"],
                                [[f"{m['selectivity']:.1%}", f"`{m['filter']}`", f"{m['rows']:,}",
                                  f"{m['same_ids']:.3f}", f"{m['same_ids_up_to_ties']:.3f}", f"{m['same_sets']:.3f}",
                                  f"{m['largest_swap_gap']:.1e}"] for m in f["milvus"]]))
    if "world" in result:
        from evdsearch.benchmarks.search_features_report import world_tables

        tables += world_tables(result["world"])
    return tables


def plot(result: dict[str, Any]) -> Any:
    f = result["filters"]
    fig, (ax_qps, ax_cross) = new_figure(ncols=2, width=6.5, height=4.5)
    colours = dict(zip(f["config"]["factories"], ("tab:blue", "tab:orange", "tab:green"), strict=False))
    for factory, colour in colours.items():
        cells = [c for c in f["cells"] if c["factory"] == factory]
        for path, style in (("planned", "-"), ("selector", "--"), ("exact", ":")):
            points = sorted((c["selectivity"], c["qps"]) for c in cells if c["path"] == path)
            ax_qps.plot(*zip(*points, strict=True), style, color=colour, marker="o", label=f"{factory} {path}")
        unfiltered = next(c["qps"] for c in cells if c["path"] == "unfiltered")
        ax_qps.axhline(unfiltered, color=colour, alpha=0.4, linewidth=4, label=f"{factory} unfiltered")
        cross = [c for c in f["crossover"] if c["factory"] == factory]
        ax_cross.plot([c["rows"] for c in cross], [c["exact_ms"] for c in cross], ":", marker="o", color=colour,
                      label=f"{factory} exact")
        ax_cross.plot([c["rows"] for c in cross], [c["selector_ms"] for c in cross], "--", marker="s", color=colour,
                      label=f"{factory} selector")
    for ax in (ax_qps, ax_cross):
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.grid(True, which="both", alpha=0.3)
    ax_qps.set(xlabel="fraction of rows the filter keeps", ylabel="single-query QPS",
               title="Filtered QPS (planned: exact below the crossover)")
    ax_cross.set(xlabel="rows the filter keeps", ylabel="ms per query", title="Exact vs ID-selector search")
    ax_qps.legend(fontsize=6, ncol=2)
    ax_cross.legend(fontsize=6)
    fig.suptitle(f"{f['config']['n']:,} vectors, dim {f['config']['dim']}; {result['machine']['text']}", fontsize=8)
    return fig
