"""`evdsearch bench scale-out`: Ray vs sequential indexing, resume, FAISS vs Milvus Lite, add/delete; JSON + Markdown."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evdsearch.plots import Table, fmt


def register(tree: Any) -> None:
    p = tree.add("bench", "scale-out", "Ray vs sequential indexing, resume after kill, FAISS vs Milvus Lite, add/delete")
    p.add_argument("source", help="Karpathy JSON of a shapes world (WORLD/dataset_shapes.json)")
    p.add_argument("--model", required=True, help="CLIP checkpoint folder")
    p.add_argument("--split", default="test", help="split indexed and queried (default test)")
    p.add_argument("--add-split", default="train", help="split whose images are added and deleted (default train)")
    p.add_argument("--add-count", type=int, default=100, help="images added and deleted (default 100)")
    p.add_argument("--shard-size", type=int, default=128, help="images per shard (default 128)")
    p.add_argument("--ray-workers", type=int, default=2, help="Ray embedding actors (default 2)")
    p.add_argument("--out", default="runs/bench/scale-out", help="output folder (default runs/bench/scale-out)")
    p.set_defaults(run=run)


def tables(result: dict[str, Any]) -> list[Table]:
    ix, rs, fm, ad = result["indexing"], result["resume"], result["faiss_vs_milvus"], result["add_delete"]
    machine = result["machine"]
    t1 = Table(f"Indexing, {machine}: {ix['sequential']['images']} images",
               ["distributor", "seconds", "images/s"],
               [[n, fmt(ix[n]["seconds"], 1), fmt(ix[n]["images_per_s"], 1)] for n in ("sequential", "ray")],
               note=f"Equality: same ids {ix['same_ids']}, max |vector difference| {ix['max_abs_diff']:.1e}. "
                    f"Resume: killed with {rs['shards_staged_at_kill']} shards staged, --resume finished in "
                    f"{rs['resume_seconds']:.1f} s, equal to a fresh build: {rs['equal_to_fresh_build']}.")
    t2 = Table(f"FAISS Flat vs Milvus Lite FLAT, {machine}: {fm['queries']} caption queries",
               ["backend", "R@1", "R@5", "R@10", "p50 ms", "p99 ms"],
               [[n, f"{fm[n]['R@1']:.4f}", f"{fm[n]['R@5']:.4f}", f"{fm[n]['R@10']:.4f}", fmt(fm[n]["p50_ms"], 2),
                 fmt(fm[n]["p99_ms"], 2)] for n in ("faiss", "milvus")],
               note=f"Same top-k ids for every query: {fm['same_top_k_ids']}. Latency: one engine.search call "
                    f"(text encoding + search + hydration).")
    t3 = Table(f"add / delete round trip (FAISS), {machine}: start {ad['start_count']} rows",
               ["step", "added", "unchanged", "deleted", "seconds", "searchable"],
               [["add", ad["add"]["added"], ad["add"]["unchanged"], 0, fmt(ad["add"]["seconds"], 1), ad["add"]["live"]],
                ["add again", ad["add_again"]["added"], ad["add_again"]["unchanged"], 0,
                 fmt(ad["add_again"]["seconds"], 1), ad["add_again"]["live"]],
                ["delete by URI", 0, 0, ad["delete"]["deleted"], fmt(ad["delete"]["seconds"], 1),
                 ad["delete"]["live"]]])
    t3.rows = [[str(cell) for cell in row] for row in t3.rows]
    return [t1, t2, t3]


def run(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.scale_out import ScaleOutConfig, run_scale_out
    from evdsearch.plots import print_report, write_bundle

    cfg = ScaleOutConfig(source=Path(args.source), model=args.model, out=Path(args.out), split=args.split,
                         add_split=args.add_split, add_count=args.add_count, shard_size=args.shard_size, ray_workers=args.ray_workers)
    result = run_scale_out(cfg)
    tabs = tables(result)
    print_report(tabs, write_bundle(args.out, "scale_out", result, "\n".join(t.markdown() for t in tabs)))
    return 0
