"""`evdsearch bench classify`: zero-shot accuracy of description sets on an ImageFolder / the shapes world."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.device import DEVICE_CHOICES


def register(tree: Any) -> None:
    parser = tree.add("bench", "classify", "zero-shot classification accuracy of description sets (table + plot)")
    parser.add_argument("--data", required=True, action="append",
                        help="shapes world folder, or an ImageFolder (CLASS/IMG, optionally under train/val/test); "
                        "repeat it or give a comma list for several worlds (mean ± 95 %% CI over them)")
    parser.add_argument("--model", required=True, action="append",
                        help="CLIP checkpoint folder or open_clip architecture name; one per --data folder, in "
                        "the same order (repeated or a comma list), or one for all")
    parser.add_argument("--pretrained", help="pretrained tag (needs the model hub) or a local weights file")
    parser.add_argument("--descriptions", default="classname,templates",
                        help="comma-separated sets: classname, templates (the 80 CLIP ImageNet ones), "
                             "encyclopedia (each world's own encyclopedia.jsonl), waffle[:N] (WaffleCLIP: the name "
                             "+ N random word strings, default 25), and description JSONL files in kb-import "
                             "format, FILE.jsonl[:N] for the N best-scored per class (each scored as written and "
                             "joined to the class name). Every set is also compared with the templates and with "
                             "random words of its own size")
    parser.add_argument("--split", default="test", help="split folder when DATA has train/val/test (default test)")
    parser.add_argument("--top", type=int, help="use only each class's N best-scored descriptions of a JSONL set")
    parser.add_argument("--out", required=True, help="folder for classify.json / .md / .png")
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    parser.add_argument("--waffle-seed", type=int, default=0, help="seed of the random-words descriptors")
    parser.add_argument("--cache-dir", help="folder for cached image embeddings (default: beside each data folder)")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.classify import ClassifyConfig, bar_plot, report_tables, run_classify
    from evdsearch.errors import InvalidInput
    from evdsearch.plots import print_report, write_bundle

    sets = tuple(s.strip() for s in args.descriptions.split(",") if s.strip())
    if not sets:
        raise InvalidInput("--descriptions names no set")
    if args.top is not None and args.top < 1:
        raise InvalidInput("--top must be at least 1")
    data = tuple(d.strip() for item in args.data for d in item.split(",") if d.strip())
    models = tuple(m.strip() for item in args.model for m in item.split(",") if m.strip())
    cfg = ClassifyConfig(data=data, model=models, sets=sets, split=args.split, pretrained=args.pretrained,
                         top=args.top, device=args.device, threads=args.threads, waffle_seed=args.waffle_seed,
                         cache_dir=args.cache_dir)
    result = run_classify(cfg)
    tables = report_tables(result)
    paths = write_bundle(args.out, "classify", result, "".join(t.markdown() for t in tables), bar_plot(result))
    print_report(tables, paths)
    return 0
