"""`evdsearch dedup INDEX --threshold T`: list the index's near-duplicate groups (table or JSON)."""

from __future__ import annotations

import argparse


def run_dedup(args: argparse.Namespace) -> int:
    import json

    from evdsearch.indexer.dedup import near_duplicates
    from evdsearch.indexer.store import IndexStore

    store = IndexStore.open(args.index)
    groups = near_duplicates(store, args.threshold, args.neighbours)
    if args.json:
        print(json.dumps([{"ids": g.ids, "uris": [store.item(i)["uri"] for i in g.ids], "min_score": g.min_score}
                          for g in groups], indent=2, ensure_ascii=False))
        return 0
    images = sum(len(g.ids) for g in groups)
    print(f"{len(groups)} near-duplicate groups ({images} images) at similarity >= {args.threshold:g} "
          f"among {store.live_count} images of {args.index}")
    for number, group in enumerate(groups[:args.limit], 1):
        print(f"group {number}: {len(group.ids)} images, lowest similarity {group.min_score:.4f}")
        for row in group.ids:
            print(f"  {row}  {store.item(row)['uri']}")
    if len(groups) > args.limit:
        print(f"... and {len(groups) - args.limit} more groups (--limit N, or --json for all)")
    return 0


def register(tree) -> None:
    parser = tree.add(None, "dedup", help="list near-duplicate images of an index (cosine similarity >= T)")
    parser.add_argument("index", help="index folder (from `evdsearch index`)")
    parser.add_argument("--threshold", type=float, default=0.95,
                        help="cosine similarity at which two images count as duplicates (default 0.95)")
    parser.add_argument("--neighbours", type=int, default=16,
                        help="nearest images each image is compared with (default 16)")
    parser.add_argument("--limit", type=int, default=50, help="groups printed (default 50; --json prints all)")
    parser.add_argument("--json", action="store_true", help="print the groups as JSON")
    parser.set_defaults(run=run_dedup)
