"""`evdsearch kb import|get|stats|export` through the CLI entry point: output and exit codes."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evdsearch import cli
from evdsearch.versioned import current_version

LINES = [
    {"entity": "Tomato", "description": "a round red fruit with a green stem", "source": "encyclopedia",
     "score": 0.9, "kind": "visual"},
    {"entity": "tomatoes", "description": "first grown in South America", "source": "encyclopedia",
     "score": 0.2, "kind": "non_visual"},
    {"entity": "stop sign", "description": "a red octagon on a pole", "source": "llm", "score": 0.8},
]


def write_jsonl(path: Path, rows: list, extra_lines: tuple[str, ...] = ()) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows) + "".join(extra_lines))
    return path


def test_import_get_stats_export(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = str(tmp_path / "kb")
    assert cli.main(["kb", "import", str(write_jsonl(tmp_path / "in.jsonl", LINES, ("\n",))), "--kb", kb]) == 0
    assert "imported 3 descriptions (2 new entities, 0 duplicates skipped)" in capsys.readouterr().out

    assert cli.main(["kb", "get", "TOMATOES", "--kb", kb]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0] == "Tomato: 2 descriptions"
    assert out[1].split() == ["#", "score", "kind", "source", "description"]
    assert out[2].split()[:4] == ["1", "0.900", "visual", "encyclopedia"]
    assert "first grown in South America" in out[3]

    assert cli.main(["kb", "get", "stop signs", "--kb", kb, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == [
        {"text": "a red octagon on a pole", "source": "llm", "score": 0.8, "kind": ""}]

    assert cli.main(["kb", "stats", "--kb", kb, "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == {
        "entities": 2, "descriptions": 3, "sources": {"encyclopedia": 2, "llm": 1},
        "kinds": {"visual": 1, "non_visual": 1, "": 1}}
    assert cli.main(["kb", "stats", "--kb", kb]) == 0
    assert "descriptions  3" in capsys.readouterr().out

    assert cli.main(["kb", "export", "--kb", kb, "--out", str(tmp_path / "out.jsonl")]) == 0
    exported = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(exported) == 3 and exported[0]["entity"] == "stop sign"
    capsys.readouterr()
    assert cli.main(["kb", "export", "--kb", kb]) == 0
    assert [json.loads(line) for line in capsys.readouterr().out.splitlines()] == exported


def test_unknown_entity_suggests_close_names(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = str(tmp_path / "kb")
    assert cli.main(["kb", "import", str(write_jsonl(tmp_path / "in.jsonl", LINES)), "--kb", kb]) == 0
    assert cli.main(["kb", "get", "tomatto", "--kb", kb]) == 2
    assert "not in the knowledge base; close names: tomato" in capsys.readouterr().err


def test_malformed_line_names_it_and_writes_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    kb = tmp_path / "kb"
    bad_json = write_jsonl(tmp_path / "bad.jsonl", LINES, ('{"entity": "zebra", "description": \n',))
    assert cli.main(["kb", "import", str(bad_json), "--kb", str(kb)]) == 2
    assert "bad.jsonl line 4: not valid JSON" in capsys.readouterr().err
    assert not kb.exists()  # checked before the knowledge base is even created

    assert cli.main(["kb", "import", str(write_jsonl(tmp_path / "ok.jsonl", LINES[:1])), "--kb", str(kb)]) == 0
    before = (current_version(kb) / "data.mdb").read_bytes()
    no_score = write_jsonl(tmp_path / "no_score.jsonl", [LINES[2], {"entity": "zebra", "description": "stripes",
                                                                     "source": "s"}])
    assert cli.main(["kb", "import", str(no_score), "--kb", str(kb)]) == 2
    assert "no_score.jsonl line 2: field 'score' must be a finite number" in capsys.readouterr().err
    assert (current_version(kb) / "data.mdb").read_bytes() == before


def test_missing_kb_and_file_are_user_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["kb", "stats", "--kb", str(tmp_path / "none")]) == 2
    assert "no knowledge base at" in capsys.readouterr().err
    assert cli.main(["kb", "import", str(tmp_path / "none.jsonl"), "--kb", str(tmp_path / "kb")]) == 2
    assert "import file not found" in capsys.readouterr().err
