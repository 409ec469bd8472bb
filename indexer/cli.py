"""`evdsearch index`: embed a folder of images (or a Karpathy split) with CLIP and write a FAISS index folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from evdsearch.device import DEVICE_CHOICES

SHOW_SKIPPED = 10  # skipped files listed in the summary; the manifest has all of them


def run_index(args: argparse.Namespace) -> int:
    from evdsearch.indexer.build import IndexBuildConfig, build_index

    cfg = IndexBuildConfig(
        source=Path(args.source), out=Path(args.out), model=args.model, pretrained=args.pretrained,
        factory=args.index_factory, batch_size=args.batch_size, device=args.device, split=args.split,
        images_root=Path(args.images_root) if args.images_root else None, workers=args.workers,
        force=args.force, progress=not args.no_progress,
    )
    report = build_index(cfg)
    rate = report.candidates / report.seconds if report.seconds else 0.0
    print(f"indexed {report.count} of {report.candidates} images into {report.out} "
          f"({args.index_factory}, dim {report.manifest.dim}) in {report.seconds:.1f}s ({rate:.0f} img/s)")
    if report.skipped:
        print(f"skipped {len(report.skipped)} unreadable images (all listed in {report.out}/manifest.json):")
        for entry in report.skipped[:SHOW_SKIPPED]:
            print(f"  {entry['path']}: {entry['reason']}")
        if len(report.skipped) > SHOW_SKIPPED:
            print(f"  ... and {len(report.skipped) - SHOW_SKIPPED} more")
    return 0


def register(tree) -> None:
    parser = tree.add(None, "index", help="embed images with CLIP and write a FAISS index folder")
    parser.add_argument("source", help="image folder (jpg/jpeg/png/webp, recursive) or Karpathy split JSON")
    parser.add_argument("--out", required=True, help="index folder to write (built aside, renamed into place)")
    parser.add_argument("--model", required=True, help="open_clip architecture name or CLIP checkpoint folder")
    parser.add_argument("--pretrained", help="pretrained tag or local weights file for --model")
    parser.add_argument("--index-factory", default="Flat",
                        help='faiss index_factory string, e.g. "Flat", "HNSW32", "IVF1024,Flat" (default Flat)')
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where CLIP (and faiss-gpu) run")
    parser.add_argument("--split", help="Karpathy JSON only: index this split (default: all images)")
    parser.add_argument("--images-root", help="Karpathy JSON only: images folder (default: the JSON's folder)")
    parser.add_argument("--workers", type=int, default=0, help="image decoding threads (0: min(8, CPUs))")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="replace an existing index folder")
    parser.set_defaults(run=run_index)
