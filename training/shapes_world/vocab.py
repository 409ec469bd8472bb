"""The world's attribute vocabulary, read from lexicon.json (data, not code)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

LEXICON_PATH = Path(__file__).with_name("lexicon.json")
TEXTURES = ("plain", "striped", "dotted", "checkered")
SIZES = ("small", "medium", "large")


@dataclass(frozen=True)
class Lexicon:
    """Attribute names, drawing colours and caption synonyms."""

    shapes: dict[str, dict[str, list[str]]]  # shape -> {"nouns": [...], "adjectives": [...]}
    adjective_nouns: list[str]  # generic nouns after a shape adjective ("a round *object*")
    colors: dict[str, dict[str, Any]]  # colour -> {"rgb": [r, g, b], "words": [...]}
    sizes: dict[str, dict[str, Any]]  # size -> {"fraction": of image side, "words": [...]}
    textures: dict[str, dict[str, list[str]]]  # texture -> {"adjectives", "phrases" ({pc} = pattern colour)}
    backgrounds: dict[str, dict[str, Any]]  # background -> {"rgb", "words"}
    relations: dict[str, list[str]]  # left/right/above/below -> phrases "A <phrase> B"

    @property
    def shape_names(self) -> list[str]:
        return sorted(self.shapes)

    @property
    def color_names(self) -> list[str]:
        return sorted(self.colors)


@lru_cache(maxsize=1)
def load_lexicon(path: Path = LEXICON_PATH) -> Lexicon:
    """The lexicon, loaded once per process."""
    data = json.loads(path.read_text(encoding="utf-8"))
    data.pop("_comment", None)
    return Lexicon(**data)
