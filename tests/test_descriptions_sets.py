"""Description sets: WaffleCLIP random words, set specs, paired statistics, the multi-world classify table, and
EX2's per-concept generation."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from evdsearch.benchmarks.classify import parse_set, set_labels, set_texts, world_names
from evdsearch.cli import build_parser, main
from evdsearch.errors import InvalidInput
from evdsearch.evaluation.classification import load_templates
from evdsearch.evaluation.paired_stats import mcnemar, mean_ci
from evdsearch.evaluation.waffle import vocabulary, waffle_descriptors, waffle_texts


def test_waffle_descriptors_alternate_words_and_characters_of_the_same_shape() -> None:
    vocab = vocabulary()
    assert len(vocab) > 10_000 and all(w.isalpha() and w.islower() for w in vocab[:100])
    d = waffle_descriptors(5, seed=3)
    assert len(d) == 5 and d == waffle_descriptors(5, seed=3) and d != waffle_descriptors(5, seed=4)
    words, chars = d[0].split(), d[1].split()
    assert len(words) == 3 and all(w in set(vocab) for w in words)
    assert [len(w) for w in chars] == [len(w) for w in words]  # characters shaped like the words they pair
    texts = waffle_texts(["cherry", "lime"], 4, seed=3)
    assert [len(t) for t in texts] == [4, 4]
    # The same random descriptors for every class: only the name differs (WaffleCLIP).
    assert [t.removeprefix("cherry") for t in texts[0]] == [t.removeprefix("lime") for t in texts[1]]
    assert texts[0][0].startswith("cherry which ")
    with pytest.raises(ValueError):
        waffle_descriptors(0)


def test_set_specs_counts_and_labels(tmp_path: Path) -> None:
    assert parse_set("waffle").count == 25 and parse_set("waffle:3").count == 3
    assert parse_set("a/ex2.jsonl:1").path == "a/ex2.jsonl" and parse_set("a/ex2.jsonl:1").count == 1
    for bad in ("waffle:0", "ex2.jsonl:x", "templates:3", "nonsense"):
        with pytest.raises(InvalidInput):
            parse_set(bad)
    assert set_labels(("a/ex2.jsonl", "a/ex2.jsonl:1", "b/ift.jsonl", "waffle:4", "encyclopedia")) == [
        "a/ex2", "a/ex2:1", "ift", "waffle", "encyclopedia"]
    path = tmp_path / "ex2.jsonl"
    path.write_text("".join(json.dumps({"entity": "cherry", "description": d, "source": "ex2", "score": s}) + "\n"
                            for d, s in (("a red fruit", 1.0), ("a small red circle", 9.0), ("sweet", 5.0))))
    best = set_texts(f"{path}:2", ["cherry"], top=None)
    assert best["ex2"] == ([["a small red circle", "sweet"]], 1)
    assert best["ex2 +name"][0][0][0] == "cherry which is a small red circle"
    rnd = set_texts("waffle:6", ["cherry", "lime"], top=None, waffle_seed=1)
    assert list(rnd) == ["random words (6)"] and rnd["random words (6)"][0] == waffle_texts(["cherry", "lime"], 6, 1)
    with pytest.raises(Exception, match="encyclopedia.jsonl not found"):
        set_texts("encyclopedia", ["cherry"], top=None, data=str(tmp_path))
    assert world_names(["/x/s1/world", "/x/s2/world"]) == ["s1/world", "s2/world"]


def test_paired_stats_hand_made() -> None:
    mean, ci = mean_ci([1.0, 2.0, 3.0])  # sd 1, n 3: t(2) = 4.303
    assert mean == 2.0 and math.isclose(ci, 4.303 / math.sqrt(3), rel_tol=1e-6)
    assert math.isnan(mean_ci([5.0])[1])
    a = np.array([1, 1, 1, 1, 1, 0, 1], dtype=bool)
    b = np.array([0, 0, 0, 0, 0, 0, 1], dtype=bool)
    test = mcnemar(a, b)  # 5 discordant pairs all one way: p = 2 / 2**5
    assert (test["a_only"], test["b_only"]) == (5, 0) and math.isclose(test["p"], 2 / 32)
    assert mcnemar(b, b)["p"] == 1.0
    many = np.zeros(3000, dtype=bool)
    assert mcnemar(~many, many)["p"] < 1e-300  # 3,000 discordant pairs: exact integers, no float overflow


def test_multi_world_table_on_tiny_world(tiny_world: Path, tiny_clip_dir: Path, tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("evdsearch.benchmarks.classify.load_templates", lambda: load_templates()[:2])
    out = tmp_path / "out"
    code = main(["bench", "classify", "--data", str(tiny_world), "--data", str(tiny_world), "--model",
                 str(tiny_clip_dir), "--descriptions", "classname,waffle:2,encyclopedia", "--out", str(out),
                 "--threads", "1"])
    assert code == 0
    result = json.loads((out / "classify.json").read_text())
    assert len(result["worlds"]) == 2 and result["images"] == 2 * result["worlds"][0]["images"]
    rows = {r["set"]: r for r in result["rows"]}
    # templates are added as the reference; every set but the random-words one gets a baseline of its size
    assert list(rows) == ["classname", "random words (2)", "encyclopedia", "encyclopedia +name", "templates (2)"]
    assert rows["classname"]["random_words"]["texts_per_class"] == 1
    assert rows["encyclopedia"]["random_words"]["texts_per_class"] == 5  # the world has 5 texts per entity
    assert "random_words" not in rows["random words (2)"]
    # the same world twice: identical accuracies, so a zero-width interval and a zero difference
    for r in rows.values():
        assert r["per_world"][0] == r["per_world"][1] and r["ci95"] == 0.0
    assert rows["templates (2)"].get("vs_templates") is None
    cmp = rows["classname"]["vs_templates"]
    assert cmp["verdict"] in ("better", "worse", "tie") and 0.0 <= cmp["p"] <= 1.0
    assert "Accuracy % per world" in (out / "classify.md").read_text()
    assert main(["bench", "classify", "--data", f"{tiny_world},{tiny_world}", "--model",
                 f"{tiny_clip_dir},{tiny_clip_dir},{tiny_clip_dir}", "--out", str(out)]) == 2


def test_ex2_per_concept_defaults_to_25_and_cycles_the_questions() -> None:
    from evdsearch.training.descriptions.ex2 import ClipRewarder, EX2Config
    from evdsearch.training.descriptions.ex2_run import describe_concepts
    from evdsearch.training.llm.base import ChatResult

    args = build_parser().parse_args(["train", "ex2", "--data", "d", "--model", "m", "--out", "o"])
    assert args.per_concept == 25 and EX2Config(data="", model="", out="").per_concept == 25

    class EchoLLM:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def chat_batch(self, requests):  # noqa: ANN001, ANN202
            self.batches.append(len(requests))
            return [ChatResult(f"it is {r.messages[0]['content']}" if "lime" in r.messages[0]["content"] else " ",
                               0, 0) for r in requests]

    rewarder = ClipRewarder(lambda texts: np.ones((len(texts), 2)) / math.sqrt(2),
                            {"cherry": np.array([[1.0, 0.0]]), "lime": np.array([[0.0, 1.0]])})
    llm = EchoLLM()
    cfg = EX2Config(data="", model="", out="", per_concept=3, batch_size=4)
    records = describe_concepts(llm, rewarder, ["cherry", "lime"], ["a {}?", "b {}?"], {"lime"}, cfg)
    assert llm.batches == [4, 2]  # 2 concepts x 3 answers, 4 at a time
    # cherry's answers were blank (dropped); lime's cycle through the two questions
    assert [r["prompt"] for r in records] == ["a lime?", "b lime?", "a lime?"]
    assert all(r["entity"] == "lime" and r["split"] == "train" and r["source"] == "ex2" for r in records)
    assert math.isclose(records[0]["score"], 100 * math.sqrt(0.5), rel_tol=1e-3)
