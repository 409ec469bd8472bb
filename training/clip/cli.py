"""`evdsearch train clip`: fills a ClipTrainConfig from flags and runs `train_clip`."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.device import DEVICE_CHOICES

# Flags whose unset value comes from the model's recipe (training.clip.config.RECIPES).
RECIPE_FLAGS = ("steps", "batch_size", "lr", "warmup", "weight_decay")


def register(tree: Any) -> None:
    parser = tree.add("train", "clip", "train or fine-tune a CLIP model on a Karpathy split (open_clip)")
    parser.add_argument("--data", required=True, help="folder with dataset_*.json (e.g. a shapes world) or the JSON")
    parser.add_argument("--images", help="image root when it is not the JSON's folder")
    parser.add_argument("--model", default="evd-tiny",
                        help="open_clip architecture name (evd-tiny, ViT-B-32, ...) or a checkpoint folder")
    parser.add_argument("--pretrained", help="pretrained tag (needs the model hub) or a local weights file")
    parser.add_argument("--out", required=True, help="checkpoint folder to write")
    parser.add_argument("--split", default="train", help="Karpathy split to train on (default: train)")
    parser.add_argument("--steps", type=int, help="optimizer steps (evd-tiny default 500; fine-tuning 1000)")
    parser.add_argument("--batch-size", type=int, help="pairs per step (evd-tiny 256, fine-tuning 128)")
    parser.add_argument("--lr", type=float, help="peak learning rate (evd-tiny 2e-3, fine-tuning 1e-5)")
    parser.add_argument("--warmup", type=int, help="linear warmup steps")
    parser.add_argument("--weight-decay", type=float, help="AdamW weight decay on weight matrices")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--save-every", type=int, default=200, help="checkpoint every N steps (0: end only)")
    parser.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    parser.add_argument("--force", action="store_true", help="overwrite a checkpoint already in OUT")
    parser.add_argument("--no-augment", dest="augment", action="store_false",
                        help="turn off the small random translations of training images")
    parser.add_argument("--num-workers", type=int, default=2, help="threads decoding images (once, cached)")
    parser.add_argument("--cache-dir", help="decoded-image cache (default: DATA/.cache)")
    parser.set_defaults(run=run)


def config_from_args(args: argparse.Namespace) -> Any:
    """Flags -> ClipTrainConfig; unset recipe flags take the model's recipe values."""
    from evdsearch.training.clip.config import ClipTrainConfig, recipe_for

    recipe = recipe_for(args.model, args.pretrained)
    chosen = {name: getattr(args, name) if getattr(args, name) is not None else recipe[name] for name in RECIPE_FLAGS}
    return ClipTrainConfig(
        data=args.data, out=args.out, model=args.model, pretrained=args.pretrained, images=args.images,
        split=args.split, seed=args.seed, device=args.device, threads=args.threads,
        save_every=args.save_every, resume=args.resume, force=args.force, augment=args.augment,
        num_workers=args.num_workers, cache_dir=args.cache_dir, **chosen,
    )


def run(args: argparse.Namespace) -> int:
    from evdsearch.training.clip.train import train_clip

    cfg = config_from_args(args)
    out = train_clip(cfg)
    print(f"checkpoint: {out}")
    return 0
