"""`evdsearch verify PATH`: exit 0 with one summary line, or exit 1 with the first problem."""

from __future__ import annotations

import argparse
import sys


def run_verify(args: argparse.Namespace) -> int:
    from evdsearch.errors import UserError
    from evdsearch.indexer.verify import verify_path

    try:
        report = verify_path(args.path)
    except UserError as err:  # every problem found, including "not there": exit 1, not the usage code 2
        print(f"evdsearch: verify: FAILED: {err}", file=sys.stderr)
        return 1
    print(f"ok: {report.summary}")
    return 0


def register(tree) -> None:
    parser = tree.add(None, "verify", help="check an index folder or a knowledge base (checksums, counts, records)")
    parser.add_argument("path", help="index folder (from `evdsearch index`) or KB folder (from `evdsearch kb import`)")
    parser.set_defaults(run=run_verify)
