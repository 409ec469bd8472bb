"""`bench classify` on the tiny world and a plain ImageFolder; description sets into the KB and the engine."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from evdsearch.benchmarks.classify import ClassifyConfig, run_classify, set_labels, set_texts
from evdsearch.cli import main
from evdsearch.engine.rewriters.template import TemplateRewriter
from evdsearch.engine.rewriting import QueryRewriter, choose_descriptions
from evdsearch.evaluation.classification import load_templates, open_split
from evdsearch.indexer.kb import Description, KnowledgeBase
from evdsearch.indexer.kb_records import read_import_file


def test_template_files() -> None:
    assert len(load_templates()) == 80 and all("{}" in t for t in load_templates())
    assert len(load_templates("ex2_question_templates")) == 25


def test_set_texts_falls_back_to_the_class_name(tmp_path: Path) -> None:
    path = tmp_path / "ex2.jsonl"
    path.write_text(json.dumps({"entity": "Cherry", "description": "a small red circle", "source": "ex2",
                                "score": 3.0}) + "\n")
    sets = set_texts(str(path), ["cherry", "lime"], top=None)
    assert sets["ex2"] == ([["a small red circle"], ["lime"]], 1)
    assert sets["ex2 +name"][0][0] == ["cherry which is a small red circle"]
    assert set_labels(("classname", "a/ex2.jsonl", "b/ex2.jsonl", "c/ift.jsonl")) == [
        "classname", "a/ex2", "b/ex2", "ift"]


def test_bench_classify_cli_on_tiny_world(tiny_world: Path, tiny_clip_dir: Path, tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    # Two of the 80 templates keep the test in seconds (80 x 95 class prompts through CLIP otherwise).
    monkeypatch.setattr("evdsearch.benchmarks.classify.load_templates", lambda: load_templates()[:2])
    jsonl = tiny_world / "encyclopedia.jsonl"
    code = main(["bench", "classify", "--data", str(tiny_world), "--model", str(tiny_clip_dir),
                 "--descriptions", f"classname,templates,{jsonl}", "--out", str(tmp_path / "out"), "--threads", "1"])
    assert code == 0
    result = json.loads((tmp_path / "out" / "classify.json").read_text())
    assert [r["set"] for r in result["rows"]] == ["classname", "templates (2)", "encyclopedia", "encyclopedia +name"]
    assert all(0.0 <= r["accuracy"] <= 100.0 and "unseen" in r for r in result["rows"])
    assert (tmp_path / "out" / "classify.png").is_file() and "plot:" in capsys.readouterr().out


def test_bench_classify_on_plain_imagefolder(tiny_world: Path, tiny_clip_dir: Path, tmp_path: Path) -> None:
    folder = tmp_path / "imgs"
    src = open_split(tiny_world, "test")
    for name in ("cherry", "lime"):
        shutil.copytree(src.root / name, folder / name.replace(" ", "_"))
    result = run_classify(ClassifyConfig(data=str(folder), model=str(tiny_clip_dir), sets=("classname",),
                                         threads=1))
    assert result["classes"] == 2 and result["images"] == len(list(folder.rglob("*.png")))
    assert "seen" not in result["rows"][0]


def test_sets_import_into_the_kb_and_engine_prefers_sources(tmp_path: Path) -> None:
    path = tmp_path / "sets.jsonl"
    rows = [("encyclopedia", "a small red circle", 1.0), ("ex2", "a red round fruit", 31.5),
            ("ift", "a tiny round bright red fruit", 0.8), ("ex2", "click to enlarge", 12.0)]
    path.write_text("".join(json.dumps({"entity": "cherry", "description": d, "source": s, "score": sc}) + "\n"
                            for s, d, sc in rows))
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records(read_import_file(path))
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        stored = kb.get("cherry")
        assert [d.score for d in stored] == [31.5, 12.0, 1.0, 0.8]
        assert {d.source for d in stored} == {"encyclopedia", "ex2", "ift"}
        plain = QueryRewriter(kb, TemplateRewriter(), max_descriptions=2, cache_size=0)
        assert [d.text for d in plain.rewrite("a cherry").descriptions["cherry"]] == [
            "a red round fruit", "click to enlarge"]
        prefer = QueryRewriter(kb, TemplateRewriter(), max_descriptions=2, cache_size=0,
                               prefer_sources=("ift", "encyclopedia"))
        assert [d.source for d in prefer.rewrite("a cherry").descriptions["cherry"]] == ["ift", "encyclopedia"]


def test_choose_descriptions_orders_by_preference_then_score() -> None:
    ds = [Description("a", "x", 3.0), Description("b", "y", 2.0), Description("c", "x", 1.0),
          Description("d", "z", 5.0)]
    assert [d.text for d in choose_descriptions(ds, 3)] == ["d", "a", "b"]
    assert [d.text for d in choose_descriptions(ds, 4, ("x",))] == ["a", "c", "d", "b"]
