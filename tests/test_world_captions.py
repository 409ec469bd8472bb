"""Shapes world captions agree with the drawn objects, and unseen entity names stay out of training."""

from __future__ import annotations

import json
import re
from pathlib import Path

from evdsearch.karpathy import load_karpathy
from evdsearch.training.shapes_world.vocab import load_lexicon


def _has(text: str, phrase: str) -> bool:
    return re.search(rf"(?<![\w-]){re.escape(phrase)}(?![\w-])", text) is not None


def _strip_background(text: str) -> str:
    words = "|".join(re.escape(w) for bg in load_lexicon().backgrounds.values() for w in bg["words"])
    return re.sub(rf"\b(?:{words}) background\b", "", text)


def _vocab() -> dict[str, dict[str, list[str]]]:
    """attribute -> value -> caption phrases for it."""
    lex = load_lexicon()
    return {
        "shape": {k: v["nouns"] + v["adjectives"] for k, v in lex.shapes.items()},
        "color": {k: v["words"] for k, v in lex.colors.items()},
        "size": {k: v["words"] for k, v in lex.sizes.items()},
    }


def _world(tiny_world: Path) -> tuple[list, dict[str, dict]]:
    entities = {e["name"]: e for e in json.loads((tiny_world / "entities.json").read_text())}
    return load_karpathy(tiny_world / "dataset_shapes.json").images, entities


def test_named_entities_are_drawn_with_their_signature(tiny_world: Path) -> None:
    images, entities = _world(tiny_world)
    for image in images:
        by_name = {o["entity"]: o for o in image.extra["objects"] if o["entity"]}
        for sentence in image.sentences:
            for name in sentence.extra["entities"]:
                obj = by_name[name]
                assert {k: obj[k] for k in entities[name]["signature"]} == entities[name]["signature"]
                assert _has(sentence.raw.lower(), name)
            unseen = [n for n in sentence.extra["entities"] if not entities[n]["seen"]]
            expected = "attribute" if not sentence.extra["entities"] else (
                "unseen_entity" if unseen else "seen_entity")
            assert sentence.kind == expected


def test_entity_names_only_where_allowed(tiny_world: Path) -> None:
    images, entities = _world(tiny_world)
    for image in images:
        for sentence in image.sentences:
            raw, mentioned = sentence.raw.lower(), set()
            for name in sorted(entities, key=len, reverse=True):  # "easter egg" before "egg"
                if _has(raw, name):
                    mentioned.add(name)
                    raw = re.sub(rf"(?<![\w-]){re.escape(name)}(?![\w-])", " ", raw)
            assert mentioned == set(sentence.extra["entities"]), sentence.raw
            if image.split == "train":
                assert all(entities[n]["seen"] for n in mentioned), sentence.raw


def test_attribute_words_match_objects(tiny_world: Path) -> None:
    images, _ = _world(tiny_world)
    vocab = _vocab()
    for image in images:
        objects = image.extra["objects"]
        colors = {o["color"] for o in objects} | {o["pattern_color"] for o in objects if o["pattern_color"]}
        allowed = {"shape": {o["shape"] for o in objects}, "color": colors, "size": {o["size"] for o in objects}}
        for sentence in image.sentences:
            text = _strip_background(sentence.raw.lower())
            for attr, values in vocab.items():
                said = {v for v, phrases in values.items() if any(_has(text, p) for p in phrases)}
                assert said <= allowed[attr], (attr, sentence.raw, objects)
            if sentence.kind == "attribute":  # every object is named by at least its colour and shape
                for obj in objects:
                    assert any(_has(text, p) for p in vocab["shape"][obj["shape"]]), sentence.raw
                    assert any(_has(text, p) for p in vocab["color"][obj["color"]]), sentence.raw


def test_unseen_entities_appear_in_evaluation_captions(tiny_world: Path) -> None:
    images, _ = _world(tiny_world)
    kinds = {s.kind for img in images if img.split != "train" for s in img.sentences}
    assert kinds == {"attribute", "seen_entity", "unseen_entity"}
