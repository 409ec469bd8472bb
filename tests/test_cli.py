"""The CLI dispatcher: one verb table, each verb group in one package, the help lists the verbs."""

import argparse
import subprocess
import sys
from types import ModuleType

import pytest

from evdsearch.cli import VERBS, build_parser, main
from evdsearch.command_tree import CommandTree

# Where each verb group lives (a verb without a group is its own module).
GROUP_PACKAGES = {"world": "evdsearch.training.", "train": "evdsearch.training.", "llm": "evdsearch.training.",
                  "evd": "evdsearch.training.", "bench": "evdsearch.benchmarks.", "kb": "evdsearch.kb_cli"}


def test_every_verb_in_the_table_is_registered_by_its_module() -> None:
    parser = build_parser()  # raises when a module adds a verb the table does not give it, or misses one
    top = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for verb, _module in VERBS:
        group, _, name = verb.rpartition(" ")
        if group:
            sub = next(a for a in top.choices[group]._actions if isinstance(a, argparse._SubParsersAction))
            assert name in sub.choices, verb
        else:
            assert name in top.choices, verb
    assert len({verb for verb, _ in VERBS}) == len(VERBS)


@pytest.mark.parametrize("group", sorted(GROUP_PACKAGES))
def test_each_verb_group_lives_in_one_package(group: str) -> None:
    modules = {module.__name__ for verb, module in VERBS if verb.startswith(group + " ")}
    assert modules and all(name.startswith(GROUP_PACKAGES[group]) for name in modules), modules


def test_a_module_cannot_add_a_verb_the_table_does_not_give_it() -> None:
    tree = CommandTree(argparse.ArgumentParser(), VERBS)
    tree.module = ModuleType("rogue")
    with pytest.raises(AssertionError, match="rogue adds `bench serve`"):
        tree.add("bench", "serve", "not mine")


def test_help_imports_no_heavy_library() -> None:
    """Verb modules import heavy libraries inside `run`, so `evdsearch --help` stays fast."""
    code = ("import sys, evdsearch.cli as c; c.build_parser(); print(sorted(m for m in ('torch', 'grpc', 'gradio', "
            "'lmdb', 'faiss', 'open_clip', 'transformers', 'matplotlib', 'google.protobuf', 'scipy') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "[]", out.stderr


def test_help_lists_main_verbs(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args(["--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    for verb in ("quickstart", "world", "train", "index", "kb", "serve", "search", "bench"):
        assert verb in out


def test_no_command_prints_help_and_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert "usage" in capsys.readouterr().out
