"""`evdsearch index`: embed a folder of images (or a Karpathy split) with CLIP and write a FAISS index folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from evdsearch.device import DEVICE_CHOICES

SHOW_SKIPPED = 10  # skipped files listed in the summary; the manifest has all of them


def run_index(args: argparse.Namespace) -> int:
    from evdsearch.errors import InvalidInput
    from evdsearch.indexer.build import IndexBuildConfig, build_index

    if args.source in UPDATE_VERBS:
        return run_update(args)
    if args.extra:
        raise InvalidInput(f"unexpected argument {args.extra!r} (did you mean `evdsearch index add SOURCE`?)")
    if not args.model:
        raise InvalidInput("the following argument is required to build an index: --model")

    cfg = IndexBuildConfig(
        source=Path(args.source), out=Path(args.out), model=args.model, pretrained=args.pretrained,
        factory=args.index_factory, batch_size=args.batch_size, device=args.device, split=args.split,
        images_root=Path(args.images_root) if args.images_root else None, workers=args.workers,
        force=args.force, progress=not args.no_progress, distributed=args.distributed,
        ray_address=args.ray_address, ray_workers=args.workers, gpus_per_worker=args.gpus_per_worker,
        shard_size=args.shard_size, resume=args.resume, backend=args.backend, milvus_uri=args.milvus_uri,
        collection=args.collection, milvus_index=args.milvus_index,
        metadata=Path(args.metadata) if args.metadata else None,
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
    print(f"metadata fields: {', '.join(report.metadata_fields)}")
    if report.metadata_unmatched:
        print(f"warning: {report.metadata_unmatched} rows of {args.metadata} name no indexed image")
    return 0


def run_update(args: argparse.Namespace) -> int:
    """`index add SOURCE --out DIR` and `index delete --out DIR (--ids ... | --uris ...)`."""
    from evdsearch.errors import InvalidInput
    from evdsearch.indexer.update import add_images, delete_items

    if args.source == "add":
        if not args.extra:
            raise InvalidInput("index add needs a SOURCE: evdsearch index add IMAGES --out DIR")
        report = add_images(Path(args.out), args.extra, args.split, args.images_root, args.device, args.batch_size,
                            args.workers, not args.no_progress, milvus_uri=args.milvus_uri, metadata=args.metadata)
        print(f"added {report.added} images to {report.out} ({report.unchanged} already indexed, "
              f"{report.deleted} replaced, {len(report.skipped)} unreadable); {report.live} searchable "
              f"in {report.seconds:.1f}s")
        if report.metadata_unmatched:
            print(f"warning: {report.metadata_unmatched} rows of {args.metadata} name no added image")
        return 0
    if args.extra:
        raise InvalidInput(f"index delete takes no SOURCE (got {args.extra!r}); use --ids or --uris")
    report = delete_items(Path(args.out), args.ids, args.uris, milvus_uri=args.milvus_uri)
    print(f"deleted {report.deleted} items from {report.out}; {report.live} searchable in {report.seconds:.1f}s")
    return 0


UPDATE_VERBS = ("add", "delete")  # `index add SOURCE`, `index delete`: first positional word (no group: `index SOURCE` stays)


def register(tree) -> None:
    parser = tree.add(None, "index", help="embed images with CLIP and write a FAISS index folder")
    parser.add_argument("source", help="image folder (jpg/jpeg/png/webp, recursive) or Karpathy split JSON; "
                                       "or `add SOURCE` / `delete` to update the index at --out in place")
    parser.add_argument("extra", nargs="?", metavar="SOURCE", help="with `add`: the images to add")
    parser.add_argument("--out", required=True, help="index folder to write (built aside, renamed into place)")
    parser.add_argument("--model", help="open_clip architecture name or CLIP checkpoint folder (required to build; "
                                        "add uses the index's own)")
    parser.add_argument("--pretrained", help="pretrained tag or local weights file for --model")
    parser.add_argument("--index-factory", default="Flat",
                        help='faiss index_factory string, e.g. "Flat", "HNSW32", "IVF1024,Flat" (default Flat)')
    parser.add_argument("--batch-size", type=int, default=64, help="images per forward pass")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where CLIP (and faiss-gpu) run")
    parser.add_argument("--split", help="Karpathy JSON only: index this split (default: all images)")
    parser.add_argument("--images-root", help="Karpathy JSON only: images folder (default: the JSON's folder)")
    parser.add_argument("--workers", type=int, default=0,
                        help="image decoding threads (0: min(8, CPUs)); with --distributed ray: embedding actors "
                             "(0: one per cluster CPU, at most 8)")
    parser.add_argument("--distributed", default="none", choices=("none", "ray"),
                        help="who embeds the shards: none (this process, default) or ray (Ray Data; "
                             "pip install 'evdsearch[ray]')")
    parser.add_argument("--ray-address", help="with --distributed ray: cluster to join (default: a local Ray)")
    parser.add_argument("--gpus-per-worker", type=float, default=0.0,
                        help="with --distributed ray: GPUs per embedding actor (default 0: CPU actors)")
    parser.add_argument("--shard-size", type=int, default=4096,
                        help="images per staged embedding shard, the unit of --resume (default 4096)")
    parser.add_argument("--resume", action="store_true",
                        help="reuse the shards an interrupted build of the same images and model staged")
    parser.add_argument("--backend", default="faiss", choices=("faiss", "milvus"),
                        help="where vectors are searched: faiss (index.faiss in --out, default) or milvus "
                             "(pip install 'evdsearch[milvus]')")
    parser.add_argument("--milvus-uri", help="with --backend milvus: Milvus Lite file (*.db) or server address")
    parser.add_argument("--collection", help="with --backend milvus: collection name (default evdsearch)")
    parser.add_argument("--milvus-index", default="FLAT", choices=("FLAT", "IVF_FLAT", "HNSW"),
                        help="with --backend milvus: index type, metric IP (default FLAT: exact)")
    parser.add_argument("--metadata", metavar="FILE",
                        help="per-image fields (filterable, shown on hits): JSONL objects or a CSV with a header, "
                             "keyed by a `path` column (absolute, or relative to the image folder / Karpathy "
                             "images root); build and `add`")
    parser.add_argument("--ids", type=int, nargs="+", help="with `delete`: item ids to delete")
    parser.add_argument("--uris", nargs="+", help="with `delete`: item URIs (paths) to delete")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument("--force", action="store_true", help="replace an existing index folder")
    parser.set_defaults(run=run_index)
