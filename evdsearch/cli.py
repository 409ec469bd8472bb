"""The `evdsearch` command: the verb table, and a dispatcher that stays out of the verbs' way.

Each verb is implemented by one module, named in VERBS; the module's `register(tree)` adds its parser(s) with
`tree.add(group, name, help)` and sets `run=callable(args) -> int | None`. Verb modules import heavy libraries
inside `run`, so `evdsearch --help` stays fast.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence
from types import ModuleType

from evdsearch import kb_cli, quickstart
from evdsearch.benchmarks import (
    classify_cli,
    index_scale_cli,
    indexing_cli,
    kb_sources_cli,
    quality_cli,
    retrieval_cli,
    rewriters_cli,
    scale_out_cli,
    soak_cli,
)
from evdsearch.benchmarks import serve_cli as bench_serve_cli
from evdsearch.client import admin_cli, search_cli
from evdsearch.command_tree import CommandTree
from evdsearch.demo import cli as demo_cli
from evdsearch.engine.cli import serve
from evdsearch.errors import UserError
from evdsearch.indexer import cli as index_cli
from evdsearch.indexer import verify_cli
from evdsearch.training.clip import cli as clip_cli
from evdsearch.training.descriptions import cli as descriptions_cli
from evdsearch.training.evd import cli as evd_cli
from evdsearch.training.llm import cli as llm_cli
from evdsearch.training.rewriter import cli as rewriter_cli
from evdsearch.training.shapes_world import cli as world_cli

# Every verb and the module that implements it, in the order of `evdsearch --help`.
VERBS: tuple[tuple[str, ModuleType], ...] = (
    ("quickstart", quickstart),
    ("world make", world_cli),
    ("train clip", clip_cli),
    ("index", index_cli),
    ("kb import", kb_cli),
    ("kb get", kb_cli),
    ("kb stats", kb_cli),
    ("kb export", kb_cli),
    ("kb calibrate", kb_cli),
    ("verify", verify_cli),
    ("serve", serve),
    ("search", search_cli),
    ("info", admin_cli),
    ("reload", admin_cli),
    ("bench retrieval", retrieval_cli),
    ("bench quality", quality_cli),
    ("bench kb-sources", kb_sources_cli),
    ("bench serve", bench_serve_cli),
    ("bench soak", soak_cli),
    ("bench index-scale", index_scale_cli),
    ("bench scale-out", scale_out_cli),
    ("bench indexing", indexing_cli),
    ("bench classify", classify_cli),
    ("bench rewriters", rewriters_cli),
    ("bench rewrite-latency", rewriters_cli),
    ("demo", demo_cli),
    ("llm install", llm_cli),
    ("llm list", llm_cli),
    ("evd generate", evd_cli),
    ("evd select", evd_cli),
    ("evd label", evd_cli),
    ("train deqr", rewriter_cli),
    ("train rewriter", rewriter_cli),
    ("train rewriter-pro", rewriter_cli),
    ("train export-onnx", rewriter_cli),
    ("train clip-rewrite", rewriter_cli),
    ("train ift", descriptions_cli),
    ("train fudd", descriptions_cli),
    ("train ex2", descriptions_cli),
    ("train ex2-inspect", descriptions_cli),
)

DESCRIPTION = ("Text-to-image search with CLIP + FAISS that rewrites queries with entity visual descriptions. "
               "Start with `evdsearch quickstart`; `evdsearch COMMAND --help` says more.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evdsearch", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    tree = CommandTree(parser, VERBS)
    for module in dict.fromkeys(module for _, module in VERBS):  # each module once, in table order
        tree.module = module
        module.register(tree)
    missing = [verb for verb, _ in VERBS if verb not in tree.added]
    if missing:
        raise AssertionError(f"verbs in VERBS that no module added: {', '.join(missing)}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        code = args.run(args)
    except UserError as err:
        print(f"evdsearch: error: {err}", file=sys.stderr)
        return err.exit_code
    except KeyboardInterrupt:
        print("evdsearch: interrupted", file=sys.stderr)
        return 130
    return int(code or 0)


if __name__ == "__main__":
    sys.exit(main())
