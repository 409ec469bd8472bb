"""Robust parsing of LLM answers: entity lists from captions, description sentences, entity files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from evdsearch.errors import InvalidInput
from evdsearch.training.evd.clean import split_descriptions
from evdsearch.training.evd.entities import load_entity_file, parse_entity_list
from evdsearch.training.evd.prompts import resolve_prompts

CAPTION = "A zebra and two dogs play with a red ball near the old lighthouse."


@pytest.mark.parametrize("answer", [
    "1. Zebra\n2. Dogs\n3. Red ball\n4. Lighthouse",
    "Here are the visual entities in the caption:\n- **zebra**\n- dogs\n* a red ball\n• the lighthouse",
    "Entities: zebra, dogs, red ball and lighthouse.",
    '["zebra", "dogs", "red ball", "lighthouse"]',
    "Sure! The entities are:\n1) zebra (an animal)\n2) dogs - pets\n3) red ball: a toy\n4) lighthouse",
])
def test_entity_lists_in_many_layouts(answer: str) -> None:
    assert parse_entity_list(answer, caption=CAPTION) == ["zebra", "dogs", "red ball", "lighthouse"]


def test_entity_parsing_drops_hallucinations_sentences_and_duplicates() -> None:
    answer = ("1. zebra\n2. unicorn\n3. The caption describes a happy scene with animals playing\n"
              "4. Zebra\n5. none\n6. lighthouse.")
    assert parse_entity_list(answer, caption=CAPTION) == ["zebra", "lighthouse"]
    assert parse_entity_list(answer)[:2] == ["zebra", "unicorn"]  # no caption: no grounding filter


def test_descriptions_are_split_cleaned_and_filtered() -> None:
    answer = ("Here are some useful features for distinguishing a zebra:\n\n"
              "1. **Stripes**: A zebra has bold black and white stripes. They run across the body.\n"
              "2. **Size:**\n"
              "3. Mane - a short upright mane\n"
              "Overall, these features make it easy to spot.\n"
              "A zebra has bold black and white stripes.\n"
              "Its legs are long and its ears")
    assert split_descriptions(answer, truncated=True) == [
        "Stripes: A zebra has bold black and white stripes.",
        "They run across the body.",
        "Mane - a short upright mane.",
    ]


def test_untruncated_answer_keeps_its_last_sentence() -> None:
    assert split_descriptions("It is a small striped fish", truncated=False) == ["It is a small striped fish."]
    assert split_descriptions("It is a small striped fish", truncated=True) == []


def test_entity_files(tmp_path: Path) -> None:
    world = tmp_path / "entities.json"
    world.write_text(json.dumps([{"name": "glimmerfin", "signature": {}, "seen": True}, {"name": "boxlet"}]))
    names = tmp_path / "names.json"
    names.write_text(json.dumps(["zebra", "zebra", "red  cube"]))
    text = tmp_path / "names.txt"
    text.write_text("# entities\nzebra\n\nred cube  # a comment\n")
    assert load_entity_file(world) == ["glimmerfin", "boxlet"]
    assert load_entity_file(names) == ["zebra", "red cube"]
    assert load_entity_file(text) == ["zebra", "red cube"]
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(InvalidInput, match="lists no entities"):
        load_entity_file(tmp_path / "empty.txt")


def test_prompt_names_and_templates() -> None:
    prompts = resolve_prompts(["features", "Draw a {entity}."])
    assert prompts["features"].question == "What are useful features for distinguishing a {entity} in a photo?"
    assert [k for k in prompts][1].startswith("custom-")
    assert list(resolve_prompts(None)) == ["features", "appearance", "attributes"]
    with pytest.raises(InvalidInput, match="unknown prompt"):
        resolve_prompts(["no-such-prompt"])
