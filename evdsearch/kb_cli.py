"""`evdsearch kb import|get|stats|export|calibrate`: the LMDB knowledge base of entity visual descriptions.

All the `kb` verbs are here, in the top layer beside the dispatcher: import, get, stats and export need only the
indexer, but calibrate measures fusion weights with the engine's rewriter and CLIP (evdsearch.evaluation), and a
verb module sits above everything its verbs call.
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
import textwrap
from dataclasses import asdict
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.engine_options import add_ensemble_option
from evdsearch.errors import NotFound


def run_import(args: argparse.Namespace) -> int:
    from evdsearch.indexer.kb_publish import import_new_version
    from evdsearch.indexer.kb_records import read_import_file

    records = read_import_file(args.file)  # every line is checked before the KB is touched
    report, stats = import_new_version(args.kb, records)  # a new version: safe while a server reads the KB
    print(f"imported {report.added} descriptions ({report.new_entities} new entities, "
          f"{report.duplicates} duplicates skipped) into {args.kb}; "
          f"it now holds {stats.entities} entities, {stats.descriptions} descriptions")
    return 0


def _format_table(rows: list[tuple[str, ...]], header: tuple[str, ...], wrap: int = 72) -> str:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    indent = sum(widths) + 2 * len(widths)
    lines = []
    for row in [header, *rows]:
        head = "".join(cell.ljust(w + 2) for cell, w in zip(row, widths, strict=False))
        text = textwrap.wrap(row[-1], wrap) or [""]
        lines.append(head + text[0])
        lines.extend(" " * indent + more for more in text[1:])
    return "\n".join(lines)


def run_get(args: argparse.Namespace) -> int:
    from evdsearch.indexer.kb import KnowledgeBase, normalize_entity

    with KnowledgeBase.open(args.kb) as kb:
        descriptions = kb.get(args.entity)
        if not descriptions:
            key = normalize_entity(args.entity)
            close = difflib.get_close_matches(key, kb.entities(), n=5)
            hint = f"; close names: {', '.join(close)}" if close else ""
            raise NotFound(f"entity {args.entity!r} (normalised {key!r}) is not in the knowledge base{hint}")
        name = kb.display_name(args.entity)
    measured = any(d.evidence is not None for d in descriptions)  # ranked by `kb calibrate`
    if args.json:
        keep = [{k: v for k, v in asdict(d).items() if measured or k != "evidence"} for d in descriptions]
        print(json.dumps(keep, ensure_ascii=False, indent=2))
        return 0
    print(f"{name}: {len(descriptions)} descriptions" + (", ranked by measured evidence" if measured else ""))
    header = ["#", "score", "kind", "source", "description"]
    rows = [[str(i), f"{d.score:.3f}", d.kind or "-", d.source, d.text] for i, d in enumerate(descriptions, 1)]
    if measured:  # an evidence column after the score
        header.insert(2, "evidence")
        for row, d in zip(rows, descriptions, strict=True):
            row.insert(2, "-" if d.evidence is None else f"{d.evidence:.3f}")
    print(_format_table([tuple(row) for row in rows], tuple(header)))
    return 0


def run_stats(args: argparse.Namespace) -> int:
    from evdsearch.indexer.kb import KnowledgeBase

    with KnowledgeBase.open(args.kb) as kb:
        stats = kb.stats()
    if args.json:
        print(json.dumps(asdict(stats), ensure_ascii=False, indent=2))
        return 0
    print(f"knowledge base {args.kb}")
    print(f"  entities      {stats.entities}")
    print(f"  descriptions  {stats.descriptions}")
    for title, counts in (("source", stats.sources), ("kind", stats.kinds)):
        for key, count in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])):
            print(f"  {title:<6} {key or '(none)':<20} {count}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from evdsearch.atomic import write_text_atomic
    from evdsearch.indexer.kb import KnowledgeBase

    with KnowledgeBase.open(args.kb) as kb:
        lines = [json.dumps(rec, ensure_ascii=False) + "\n" for rec in kb.export()]
    if args.out:
        write_text_atomic(args.out, "".join(lines))
        print(f"exported {len(lines)} descriptions to {args.out}", file=sys.stderr)
    else:
        sys.stdout.writelines(lines)
    return 0


def register(tree: Any) -> None:
    parser = tree.add("kb", "import", help="import entity descriptions from a JSONL file (all or nothing)")
    parser.add_argument("file", help='JSONL: {"entity", "description", "source", "score", "kind"?} a line')
    parser.add_argument("--kb", required=True, help="knowledge base folder (created when missing)")
    parser.set_defaults(run=run_import)

    parser = tree.add("kb", "get", help="show an entity's descriptions, best first")
    parser.add_argument("entity", help="entity name (any case, singular or plural)")
    parser.add_argument("--kb", required=True, help="knowledge base folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(run=run_get)

    parser = tree.add("kb", "stats", help="count entities and descriptions, per source and kind")
    parser.add_argument("--kb", required=True, help="knowledge base folder")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(run=run_stats)

    parser = tree.add("kb", "export", help="write every description as import-ready JSONL")
    parser.add_argument("--kb", required=True, help="knowledge base folder")
    parser.add_argument("--out", help="output file (default: standard output)")
    parser.set_defaults(run=run_export)

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
    p.set_defaults(run=run_calibrate)


def run_calibrate(args: argparse.Namespace) -> int:
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
