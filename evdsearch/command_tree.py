"""How a verb module adds its verbs to the `evdsearch` parser (the verb table itself is evdsearch.cli.VERBS)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from types import ModuleType

GROUPS = {  # verb groups with sub-verbs
    "world": "build the procedural shapes world",
    "train": "train models (clip, rewriter, ...)",
    "llm": "install the local LLMs that write descriptions",
    "evd": "entity visual descriptions from an LLM",
    "kb": "the LMDB knowledge base of entity visual descriptions",
    "bench": "benchmarks: retrieval recall, serving latency, ...",
}


class CommandTree:
    """Hands out sub-parsers so modules can add verbs without knowing the parser layout; given the verb table, a
    module may add only the verbs the table names for it."""

    def __init__(self, parser: argparse.ArgumentParser, verbs: Sequence[tuple[str, ModuleType]] = ()) -> None:
        self._top = parser.add_subparsers(dest="command", metavar="COMMAND")
        self.verbs = set(verbs)  # ("group name", module) pairs allowed; empty: any
        self._groups: dict[str, argparse._SubParsersAction] = {}
        self.module: ModuleType | None = None  # the module registering now
        self.added: list[str] = []  # verbs added so far, as "group name"

    def add(self, group: str | None, name: str, help: str) -> argparse.ArgumentParser:
        """Add `evdsearch [group] name`; returns its parser."""
        verb = f"{group} {name}" if group else name
        if self.verbs and (verb, self.module) not in self.verbs:
            owner = getattr(self.module, "__name__", None)
            raise AssertionError(f"{owner} adds `{verb}`, which evdsearch.cli.VERBS does not give it")
        self.added.append(verb)
        if group is None:
            return self._top.add_parser(name, help=help, description=help)
        if group not in self._groups:
            group_parser = self._top.add_parser(group, help=GROUPS[group], description=GROUPS[group])
            self._groups[group] = group_parser.add_subparsers(dest="verb", metavar="VERB")
            group_parser.set_defaults(run=lambda _args, p=group_parser: p.print_help() or 2)
        return self._groups[group].add_parser(name, help=help, description=help)
