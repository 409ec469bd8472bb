"""`evdsearch bench indexing`: images/s of our indexer, and of clip-retrieval's clip-inference when its venv is given."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.plots import Table, fmt, new_figure


def register(tree: Any) -> None:
    p = tree.add("bench", "indexing", "indexing throughput (images/s): evdsearch index vs clip-retrieval inference")
    p.add_argument("--images", required=True, help="image folder (walked recursively)")
    p.add_argument("--model", required=True, help="open_clip architecture name (e.g. ViT-B-32) or checkpoint folder")
    p.add_argument("--pretrained", help="local weights file (or hub tag) for --model; the peer needs one")
    p.add_argument("--batch-size", type=int, default=64, help="images per forward pass (default 64)")
    p.add_argument("--workers", type=int, default=0, help="decoding workers (default min(8, CPUs))")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where our encoder runs")
    p.add_argument("--peer-venv", help="virtualenv with clip-retrieval installed (e.g. /tmp/peer-venv); "
                                       "omitted: only our indexer runs")
    p.add_argument("--peer-timeout", type=float, default=1800.0, help="seconds before the peer run is killed")
    p.add_argument("--out", default="runs/bench/indexing", help="output folder (default runs/bench/indexing)")
    p.add_argument("--stem", default="indexing", help="file name stem of the outputs (default indexing)")
    p.set_defaults(run=run)


def tables(result: dict[str, Any]) -> list[Table]:
    cfg = result["config"]
    header = ["tool", "status", "images", "model load s", "work s", "wall s", "images/s (work)", "images/s (wall)"]
    rows = []
    for r in result["runs"]:
        if r["status"] != "ok":
            rows.append([r["tool"], r["status"], "-", "-", "-", "-", "-", "-"])
            continue
        rows.append([r["tool"], "ok", str(r["images"]), fmt(r.get("model_load_s"), 2), fmt(r.get("work_s"), 2),
                     fmt(r["wall_s"], 2), fmt(r.get("images_per_s")), fmt(r["images_per_s_wall"])])
    failures = [f"- {r['tool']}: {r['status']}: `{r.get('command', '')}`\n\n```\n{r['error']}\n```"
                for r in result["runs"] if r["status"] != "ok"]
    note = (f"Same {result['images_found']} images, model {cfg['model']}"
            + (f" / {Path(cfg['pretrained']).name}" if cfg["pretrained"] else "")
            + f", batch {cfg['batch_size']}, {result['environment']['cpus']} CPUs. Ours: work = decode + embed + "
            "FAISS Flat + write; wall adds model loading. Peer work = its stats' total_duration (read + inference + "
            "write .npy, after model load and warm-up; it builds no index); peer wall = the whole "
            "`clip-retrieval inference` process (interpreter start-up, imports, model load, warm-up)."
            + ("\n\n" + "\n".join(failures) if failures else ""))
    return [Table("Indexing throughput", header, rows, note=note)]


def plot(result: dict[str, Any]) -> Any:
    fig, (ax,) = new_figure(width=6.0, height=3.5)
    ok = [r for r in result["runs"] if r["status"] == "ok"]
    ax.barh([r["tool"] for r in ok], [r["images_per_s_wall"] for r in ok], label="wall (incl. start-up)")
    work = [r for r in ok if r.get("images_per_s")]
    ax.barh([r["tool"] + " (work)" for r in work], [r["images_per_s"] for r in work], label="work only")
    ax.set_xlabel("images / s")
    ax.set_title(f"indexing {result['images_found']} images")
    ax.legend(fontsize=8)
    return fig


def run(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.indexing_throughput import IndexingBenchConfig, run_indexing_bench
    from evdsearch.plots import print_report, write_bundle

    cfg = IndexingBenchConfig(images=Path(args.images), model=args.model, pretrained=args.pretrained,
                              batch_size=args.batch_size, workers=args.workers, device=args.device,
                              peer_venv=Path(args.peer_venv) if args.peer_venv else None,
                              work_dir=Path(args.out) / "scratch", peer_timeout_s=args.peer_timeout)
    result = run_indexing_bench(cfg)
    md = "\n".join(t.markdown() for t in tables(result))
    print_report(tables(result), write_bundle(args.out, args.stem, result, md, plot(result)))
    return 0
