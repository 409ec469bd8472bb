"""`evdsearch verify PATH [--repair]`: exit 0 with one summary line, or exit 1 with the first problem."""

from __future__ import annotations

import argparse
import sys


def run_verify(args: argparse.Namespace) -> int:
    from evdsearch.errors import UserError
    from evdsearch.indexer.repair import repair
    from evdsearch.indexer.verify import verify_path

    try:
        line = repair(args.path) if args.repair else f"ok: {verify_path(args.path).summary}"
    except UserError as err:  # every problem found, including "not there": exit 1, not the usage code 2
        print(f"evdsearch: verify: FAILED: {err}", file=sys.stderr)
        return 1
    print(line)
    return 0


def register(tree) -> None:
    parser = tree.add(None, "verify", help="check an index folder or a knowledge base (checksums, counts, records)")
    parser.add_argument("path", help="index folder (from `evdsearch index`) or KB folder (from `evdsearch kb import`)")
    parser.add_argument("--repair", action="store_true",
                        help="when the current version is damaged, make the newest version that verifies current "
                             "(damaged ones are set aside as versions/<id>.damaged); then reload the server")
    parser.set_defaults(run=run_verify)
