"""The `evdsearch` command: a thin dispatcher; each verb lives in the module that implements it.

Each module listed in COMMAND_MODULES has `register(tree: CommandTree) -> None`, which adds its
parsers and sets `run=callable(args) -> int | None`. Modules import heavy libraries inside `run`,
so `evdsearch --help` stays fast.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from evdsearch.errors import UserError

# One entry per module that registers verbs; order is the order of `evdsearch --help`.
COMMAND_MODULES: tuple[str, ...] = (
    "evdsearch.quickstart",
    "evdsearch.training.shapes_world.cli",
    "evdsearch.training.clip.cli",
    "evdsearch.indexer.cli",
    "evdsearch.indexer.kb_cli",
    "evdsearch.evaluation.calibrate_cli",
    "evdsearch.indexer.verify_cli",
    "evdsearch.engine.cli.serve",
    "evdsearch.client.search_cli",
    "evdsearch.client.admin_cli",
    "evdsearch.benchmarks.retrieval_cli",
    "evdsearch.benchmarks.quality_cli",
    "evdsearch.benchmarks.serve_cli",
    "evdsearch.benchmarks.soak_cli",
    "evdsearch.benchmarks.index_scale_cli",
    "evdsearch.benchmarks.scale_out_cli",
    "evdsearch.benchmarks.indexing_cli",
    "evdsearch.benchmarks.classify_cli",
    "evdsearch.demo.cli",
    "evdsearch.training.llm.cli",
    "evdsearch.training.evd.cli",
    "evdsearch.training.rewriter.cli",
    "evdsearch.training.descriptions.cli",
)

GROUPS = {  # verb groups with sub-verbs
    "world": "build the procedural shapes world",
    "train": "train models (clip, rewriter, ...)",
    "llm": "install the local LLMs that write descriptions",
    "evd": "entity visual descriptions from an LLM",
    "kb": "the LMDB knowledge base of entity visual descriptions",
    "bench": "benchmarks: retrieval recall, serving latency, ...",
}


class CommandTree:
    """Hands out sub-parsers so modules can add verbs without knowing the parser layout."""

    def __init__(self, parser: argparse.ArgumentParser) -> None:
        self._top = parser.add_subparsers(dest="command", metavar="COMMAND")
        self._groups: dict[str, argparse._SubParsersAction] = {}

    def add(self, group: str | None, name: str, help: str) -> argparse.ArgumentParser:
        """Add `evdsearch [group] name`; returns its parser."""
        if group is None:
            return self._top.add_parser(name, help=help, description=help)
        if group not in self._groups:
            group_parser = self._top.add_parser(group, help=GROUPS[group], description=GROUPS[group])
            self._groups[group] = group_parser.add_subparsers(dest="verb", metavar="VERB")
            group_parser.set_defaults(run=lambda _args, p=group_parser: p.print_help() or 2)
        return self._groups[group].add_parser(name, help=help, description=help)


DESCRIPTION = ("Text-to-image search with CLIP + FAISS that rewrites queries with entity visual descriptions. "
               "Start with `evdsearch quickstart`; `evdsearch COMMAND --help` says more.")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="evdsearch", description=DESCRIPTION)
    parser.add_argument("-v", "--verbose", action="store_true", help="log debug messages")
    tree = CommandTree(parser)
    for module_name in COMMAND_MODULES:
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as err:
            # A verb whose optional part is not installed is left out; tests assert all import here.
            if not err.name or not (module_name == err.name or module_name.startswith(err.name + ".")):
                raise
            logging.getLogger(__name__).debug("verb module %s not present", module_name)
            continue
        module.register(tree)
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
