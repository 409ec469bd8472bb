"""`bench kb-sources`: quality reports of several knowledge bases merged into one table with gain shares."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evdsearch.cli import main

KINDS = ("attribute", "seen_entity", "unseen_entity", "all")


def _entry(unseen: float, delta: float | None = None) -> dict:
    cells = {}
    for kind in KINDS:
        mean = unseen if kind == "unseen_entity" else 0.7
        cell = {"mean": mean, "ci": [mean - 0.01, mean + 0.01], "per_world": [mean]}
        if delta is not None:
            cell |= {"delta": mean - (0.15 if kind == "unseen_entity" else 0.7), "p_vs_original": 0.01}
        cells[kind] = {"n": 10, "R@1": cell, "R@5": cell}
    return {"by_kind": cells, "alpha_mean": [None]}


def _report(path: Path, rows: dict[str, float], worlds: tuple[str, ...] = ("s1", "s2")) -> Path:
    table = {"original": _entry(0.15), **{label: _entry(u, 0.0) for label, u in rows.items()}}
    path.mkdir(parents=True)
    (path / "quality.json").write_text(json.dumps({"worlds": [{"name": w} for w in worlds], "table": table}))
    return path


def test_merged_table_and_shares(tmp_path: Path) -> None:
    t, p = "fused adaptive[train+val] + template", "fused adaptive[train+val] + PRO"
    enc_t = _report(tmp_path / "enc-t", {t: 0.35})
    enc_p = _report(tmp_path / "enc-p", {p: 0.45})
    llm_t = _report(tmp_path / "llm-t", {t: 0.25})
    llm_p = _report(tmp_path / "llm-p", {p: 0.30})
    out = tmp_path / "out"
    assert main(["bench", "kb-sources", "--source", f"llm={llm_t}", "--source", f"llm={llm_p}",
                 "--source", f"encyclopedia={enc_t}", "--source", f"encyclopedia={enc_p / 'quality.json'}",
                 "--out", str(out)]) == 0
    result = json.loads((out / "kb_sources.json").read_text())
    table = result["table"]
    assert list(table) == ["original (no KB)", f"llm: {t}", f"llm: {p}", f"encyclopedia: {t}", f"encyclopedia: {p}"]
    assert table[f"llm: {t}"]["share_of_reference_unseen_gain"] == pytest.approx(0.5)  # 0.10 of 0.20
    assert table[f"llm: {p}"]["share_of_reference_unseen_gain"] == pytest.approx(0.5)  # 0.15 of 0.30
    assert table[f"encyclopedia: {p}"]["share_of_reference_unseen_gain"] == pytest.approx(1.0)
    assert "50 %" in (out / "kb_sources.md").read_text() and (out / "kb_sources.png").is_file()


def test_mismatched_worlds_and_missing_rows_are_refused(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    a = _report(tmp_path / "a", {"fused adaptive[train+val] + template": 0.3})
    b = _report(tmp_path / "b", {"fused adaptive[train+val] + template": 0.3}, worlds=("s9",))
    assert main(["bench", "kb-sources", "--source", f"a={a}", "--source", f"b={b}", "--out", str(tmp_path)]) == 2
    assert "different worlds" in capsys.readouterr().err
    assert main(["bench", "kb-sources", "--source", f"a={a}", "--out", str(tmp_path)]) == 2
    assert "no source has the row 'fused adaptive[train+val] + PRO'" in capsys.readouterr().err
    full = _report(tmp_path / "full", {"fused adaptive[train+val] + template": 0.35,
                                       "fused adaptive[train+val] + PRO": 0.45})
    assert main(["bench", "kb-sources", "--source", f"a={a}", "--source", f"ref={full}", "--out",
                 str(tmp_path / "out")]) == 0  # a source without a PRO row: shown as not measured
    result = json.loads((tmp_path / "out" / "kb_sources.json").read_text())
    assert result["not_measured"] == ["a: fused adaptive[train+val] + PRO"]
    assert "Not measured: a: fused adaptive[train+val] + PRO" in (tmp_path / "out" / "kb_sources.md").read_text()
    assert main(["bench", "kb-sources", "--source", f"a={tmp_path / 'none'}", "--out", str(tmp_path)]) == 2


def test_sources_in_their_own_roots_over_one_world_compare_equal(tmp_path: Path) -> None:
    """kb_sources_world.sh gives each source a root (kb-llm, kb-encyclopedia) linking one shared world: the reports'
    world names differ, their data folders resolve to the same place."""
    t = "fused adaptive[train+val] + template"
    (tmp_path / "s1" / "world").mkdir(parents=True)
    reports = {}
    for name in ("kb-llm", "kb-encyclopedia"):
        root = tmp_path / "s1" / name
        root.mkdir()
        (root / "world").symlink_to("../world")
        reports[name] = _report(tmp_path / f"q-{name}", {t: 0.3}, worlds=(name,))
        data = json.loads((reports[name] / "quality.json").read_text())
        data["worlds"][0]["data"] = str(root / "world")
        (reports[name] / "quality.json").write_text(json.dumps(data))
    assert main(["bench", "kb-sources", "--source", f"llm={reports['kb-llm']}", "--source",
                 f"encyclopedia={reports['kb-encyclopedia']}", "--row", t, "--out", str(tmp_path / "out")]) == 0


def test_quality_world_names_stay_apart_when_root_names_repeat(tmp_path: Path) -> None:
    from evdsearch.benchmarks.quality_cli import _world_names

    roots = [tmp_path / "s1" / "kb-llm", tmp_path / "s2" / "kb-llm"]
    assert _world_names(roots) == ["s1/kb-llm", "s2/kb-llm"]  # each names its own index folder
    assert _world_names([tmp_path / "s1", tmp_path / "s2"]) == ["s1", "s2"]
