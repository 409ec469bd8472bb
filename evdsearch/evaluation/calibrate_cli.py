"""`evdsearch kb calibrate`: per-entity fusion weights written into the knowledge base (adaptive fusion)."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.engine_options import add_ensemble_option


def register(tree: Any) -> None:
    p = tree.add("kb", "calibrate", help="calibrate a fusion weight per entity (adaptive fusion) into the KB")
    p.add_argument("--kb", required=True, metavar="KB_DIR", help="knowledge base folder (written in place)")
    p.add_argument("--data", required=True, metavar="DATA", help="shapes world folder or a Karpathy JSON")
    p.add_argument("--model", required=True, metavar="CLIP",
                   help="CLIP checkpoint folder or open_clip architecture name (the one the index uses)")
    p.add_argument("--pretrained", help="pretrained tag or weights file for an architecture name")
    p.add_argument("--images", help="image folder when it is not the JSON's folder")
    p.add_argument("--splits", default="train,val",
                   help="comma-separated captioned splits to calibrate on (default train,val; test is refused)")
    p.add_argument("--rewriter", default="template", metavar="none|template|PATH",
                   help="rewriter the captions are rewritten with while calibrating (default template)")
    p.add_argument("--max-captions", type=int, default=40, help="captions scored per entity (default 40)")
    p.add_argument("--keep-description-order", action="store_true",
                   help="do not rank descriptions by measured evidence (keep the imported scores' order)")
    p.add_argument("--best-caption-weight", action="store_true",
                   help="give a captioned entity its captions' best weight even when it beats the familiarity "
                        "fit's by less than one standard error (default: keep the fit's then)")
    add_ensemble_option(p)
    p.add_argument("--cache-dir", help="image-embedding cache folder (default: DATA/.cache)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from collections import Counter

    from evdsearch.errors import InvalidInput
    from evdsearch.evaluation.calibration import CalibrationConfig, calibrate, check_splits

    splits = check_splits(tuple(s.strip() for s in args.splits.split(",") if s.strip()))
    if args.max_captions < 1:
        raise InvalidInput(f"--max-captions must be at least 1, got {args.max_captions}")
    summary = calibrate(CalibrationConfig(kb=args.kb, data=args.data, model=args.model, pretrained=args.pretrained,
                                          images=args.images, splits=splits, rewriter=args.rewriter,
                                          max_captions=args.max_captions, seed=args.seed, device=args.device,
                                          cache_dir=args.cache_dir,
                                          rank_descriptions=not args.keep_description_order,
                                          template_ensemble=args.template_ensemble,
                                          prefer_prior=not args.best_caption_weight))
    weights = summary["weights"]
    methods = Counter(w["method"] for w in weights.values())
    for method in sorted(methods):
        alphas = [w["alpha"] for w in weights.values() if w["method"] == method]
        print(f"{method:>10}: {methods[method]} entities, weight mean {sum(alphas) / len(alphas):.3f} "
              f"(min {min(alphas):.2f}, max {max(alphas):.2f})")
    ranked = summary.get("descriptions_ranked")
    if ranked:
        print(f"ranked the descriptions of {sum(ranked.values())} entities by measured evidence "
              f"({ranked['captions']} by their captioned images, {ranked['consensus']} by agreement "
              "between their descriptions)")
    if summary.get("captions_kept_the_fit"):
        print(f"{summary['captions_kept_the_fit']} captioned entities kept the familiarity fit's weight (their "
              "captions' best was not better by one standard error)")
    print(f"calibrated {len(weights)} entities from {summary['captions']} {','.join(splits)} captions "
          f"(+{summary['stand_ins']} stand-ins for unknown names) into {args.kb}")
    return 0
