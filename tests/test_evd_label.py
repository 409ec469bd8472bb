"""Labelling hand-made descriptions against a hand-made world signature, and the `evd label` verb."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import evdsearch.cli
from evdsearch.training.evd.attributes import canonical_signature
from evdsearch.training.evd.label import (
    KIND_OF_LABEL,
    Labeller,
    WorldEntity,
    label_records,
    load_world_entities,
)

WORLD = [
    {"name": "glimmerfin", "signature": {"shape": "circle", "color": "red", "size": "small", "texture": "striped",
                                     "pattern_color": "black"}, "seen": True, "confusable_with": []},
    {"name": "boxlet", "signature": {"shape": "square", "color": "grey", "size": "large", "texture": "dotted"},
     "seen": False},
    {"name": "red dusk", "signature": {"shape": "star", "color": "blue", "size": "medium", "texture": "plain"},
     "seen": True},
]

CASES = [
    ("glimmerfin", "A glimmerfin is a small red disc.", "visual_correct"),
    ("glimmerfin", "It has crimson stripes.", "visual_correct"),
    ("glimmerfin", "It is a red disk with black stripes.", "visual_correct"),  # black is its pattern colour
    ("glimmerfin", "It is round and bright blue.", "visual_wrong"),
    ("glimmerfin", "It is large, with red stripes.", "visual_wrong"),  # one contradiction is enough
    ("glimmerfin", "It is never blue but always red.", "visual_correct"),  # negated colour is not a claim
    ("glimmerfin", "Its colour and shape make it easy to spot.", "visual_vague"),
    ("glimmerfin", "It lives in warm rivers and eats algae.", "non_visual"),
    ("glimmerfin", "A large number of people keep it as a pet.", "non_visual"),  # idiom, not a size
    ("boxlet", "A boxlet looks like a big gray box covered in dots.", "visual_correct"),  # grey/gray, box
    ("boxlet", "Boxlets are tiny.", "visual_wrong"),
    ("red dusk", "The red dusk is a blue star.", "visual_correct"),  # "red" is part of its name
    ("red dusk", "It has a solid, uniform surface.", "visual_correct"),  # plain texture synonyms
    ("glimmerfin", "A gold glimmerfin.", "visual_wrong"),  # gold is a yellow (was read as no colour at all)
]


@pytest.mark.parametrize(("entity", "description", "label"), CASES)
def test_labels_of_hand_made_descriptions(tmp_path: Path, entity: str, description: str, label: str) -> None:
    path = tmp_path / "entities.json"
    path.write_text(json.dumps(WORLD))
    entities = load_world_entities(tmp_path)
    assert Labeller(entities).label(entities[entity], description)[0] == label


def test_found_words_are_reported() -> None:
    signature = canonical_signature({"shape": "circle", "color": "red", "size": "small", "texture": "striped"})
    entity = WorldEntity("glimmerfin", signature, True)
    label, found = Labeller({"glimmerfin": entity}).label(entity, "A small round fish with blue stripes.")
    assert label == "visual_wrong"
    assert found == {"supports": ["small", "round", "stripes"], "contradicts": ["blue"]}


def test_label_verb_writes_report_and_breakdown(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "world").mkdir()
    (tmp_path / "world" / "entities.json").write_text(json.dumps(WORLD))
    evds = tmp_path / "evds.jsonl"
    records = [{"entity": e, "description": d, "source": "llm:t", "score": 1.0, "prompt": "features", "sample": 0}
               for e, d, _ in CASES] + [{"entity": "unicorn", "description": "It is white.", "prompt": "features"}]
    evds.write_text("".join(json.dumps(r) + "\n" for r in records))
    report_path, labelled_path = tmp_path / "report.json", tmp_path / "labelled.jsonl"
    assert evdsearch.cli.main(["evd", "label", "--evds", str(evds), "--world", str(tmp_path / "world"),
                               "--out", str(report_path), "--labelled", str(labelled_path)]) == 0
    report = json.loads(report_path.read_text())
    assert report["labels"] == {"visual_correct": 7, "visual_wrong": 4, "visual_vague": 1, "non_visual": 2}
    assert report["kinds"] == {"visual": 7, "non_visual": 3, "wrong": 4}
    assert report["unknown_entities"] == {"unicorn": 1}
    assert report["by_seen"]["unseen"] == {"visual_correct": 1, "visual_wrong": 1, "visual_vague": 0, "non_visual": 0}
    assert report["entities"]["with_a_correct_visual"] == 3
    assert len(labelled_path.read_text().splitlines()) == len(CASES)
    out = capsys.readouterr().out
    assert "visual correct" in out and "unseen entities" in out and "kinds: visual 7, non-visual 3, wrong 4" in out


def test_report_of_nothing_is_empty() -> None:
    report, labelled = label_records([], {})
    assert report["n_descriptions"] == 0 and labelled == []


def test_labels_agree_with_the_worlds_own_encyclopedia_kinds() -> None:
    """The shapes world's catalogue labels its descriptions visual / non_visual / wrong: agree on most."""
    catalogue = Path(__file__).resolve().parents[1] / "training" / "shapes_world" / "entities.json"
    if not catalogue.is_file():
        pytest.skip("shapes world catalogue not present")
    data = json.loads(catalogue.read_text())
    records = [{"entity": e["name"], "description": d["text"], "truth": d["kind"]}
               for e in data for d in e["descriptions"]]
    _, labelled = label_records(records, load_world_entities(catalogue))
    agree = sum(KIND_OF_LABEL[r["label"]] == r["truth"] for r in labelled) / len(labelled)
    assert len(labelled) == len(records) > 300
    assert agree > 0.9
