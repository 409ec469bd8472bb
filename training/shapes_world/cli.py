"""`evdsearch world make`: the CLI face of training.shapes_world.generate.make_world."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def register(tree) -> None:
    """Add `evdsearch world make`."""
    p = tree.add("world", "make", "generate the procedural shapes world (images, captions, entities)")
    p.add_argument("--out", type=Path, required=True, help="world folder to create")
    p.add_argument("--seed", type=int, default=0, help="random seed; the same seed gives identical files")
    p.add_argument("--n-train", type=int, default=8000, help="training images")
    p.add_argument("--n-val", type=int, default=500, help="validation images")
    p.add_argument("--n-test", type=int, default=1000, help="test images")
    p.add_argument("--image-size", type=int, default=64, help="image side in pixels")
    p.add_argument("--force", action="store_true", help="replace an existing --out folder")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evdsearch.training.shapes_world.generate import WorldConfig, make_world

    out = make_world(WorldConfig(out=args.out, seed=args.seed, n_train=args.n_train, n_val=args.n_val,
                                 n_test=args.n_test, image_size=args.image_size, force=args.force,
                                 progress=not args.no_progress))
    counts = json.loads((out / "world.json").read_text(encoding="utf-8"))["counts"]
    print(f"world written to {out}")
    ents = counts["entities"]
    print(f"entities: {ents['total']} ({ents['seen']} seen, {ents['unseen']} unseen by name in train)")
    for split, n in counts["images"].items():
        kinds = ", ".join(f"{k} {v}" for k, v in counts["captions"][split].items())
        print(f"{split:5s} {n:6d} images, {counts['classification'][split]:5d} classification | captions: {kinds}")
    return 0
