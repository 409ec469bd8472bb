"""`evdsearch bench kb-sources`: knowledge bases side by side, from one `bench quality` report each."""

from __future__ import annotations

import argparse
from typing import Any

DEFAULT_ROWS = ("fused adaptive[train+val] + template", "fused adaptive[train+val] + PRO")


def register(tree: Any) -> None:
    p = tree.add("bench", "kb-sources", "knowledge bases side by side (R@1 per caption kind) from bench quality reports")
    p.add_argument("--source", action="append", required=True, metavar="NAME=QUALITY_JSON",
                   help="a knowledge base's `bench quality` report (quality.json or its folder); repeat, "
                        "in table order")
    p.add_argument("--row", action="append", metavar="ROW",
                   help=f"a row of each report to show; repeat (default: {'; '.join(DEFAULT_ROWS)})")
    p.add_argument("--reference", help="the source whose unseen-entity gain the others are measured against "
                                       "(default: the last --source)")
    p.add_argument("--out", required=True, help="folder for kb_sources.{md,json,png}")
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.kb_sources import compare, figure, load_sources, markdown_table
    from evdsearch.errors import InvalidInput
    from evdsearch.plots import print_report, write_bundle

    sources = load_sources(args.source)
    reference = args.reference or sources[-1].name
    if reference not in {s.name for s in sources}:
        raise InvalidInput(f"--reference {reference!r} is not one of the sources")
    result = compare(sources, list(args.row or DEFAULT_ROWS), reference)
    table = markdown_table(result)
    paths = write_bundle(args.out, "kb_sources", result, table.markdown(), figure(result))
    print_report([table], paths)
    return 0
