"""The CLI dispatcher: every registered verb module imports and the help lists the verbs."""

import importlib

import pytest

from evdsearch.cli import COMMAND_MODULES, build_parser, main


@pytest.mark.parametrize("module_name", COMMAND_MODULES)
def test_every_verb_module_imports_and_registers(module_name: str) -> None:
    module = importlib.import_module(module_name)
    assert callable(module.register)


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
