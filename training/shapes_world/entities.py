"""Entities of the world: real things whose real look is one attribute signature (entities.json)."""

from __future__ import annotations

import json
import random
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput
from evdsearch.training.shapes_world.vocab import SIZES, TEXTURES, Lexicon, load_lexicon

ENTITIES_PATH = Path(__file__).with_name("entities.json")
SIGNATURE_KEYS = ("shape", "color", "size", "texture", "pattern_color")


@dataclass(frozen=True)
class Entity:
    """One named thing; `signature` is exactly how it is drawn."""

    name: str  # lower-case name used in captions and as the KB key
    signature: dict[str, Any]  # shape, color, size, texture, pattern_color (None when plain)
    confusable_with: tuple[str, ...]  # entities whose signature differs by one attribute
    descriptions: tuple[dict[str, str], ...]  # {"text", "kind": visual|non_visual|wrong}

    @property
    def key(self) -> tuple:
        return signature_key(self.signature)

    @property
    def folder(self) -> str:
        """Folder name in the classification view."""
        return self.name.replace(" ", "_")


def signature_key(attrs: dict[str, Any]) -> tuple:
    """Hashable signature of an object or entity."""
    return tuple(attrs.get(k) for k in SIGNATURE_KEYS)


def _check(entities: list[Entity], lex: Lexicon) -> None:
    """Fail early on a data file that would make a world with ambiguous names or looks."""
    words = set()
    for group in (lex.shapes.values(), lex.textures.values()):
        for entry in group:
            for phrases in entry.values():
                words.update(w for p in phrases for w in re.findall(r"[a-z]+", p))
    for entry in list(lex.colors.values()) + list(lex.sizes.values()):
        words.update(w for p in entry["words"] for w in p.split())
    seen_keys: dict[tuple, str] = {}
    for ent in entities:
        sig = ent.signature
        if (sig["shape"] not in lex.shapes or sig["color"] not in lex.colors or sig["size"] not in SIZES
                or sig["texture"] not in TEXTURES or (sig["texture"] == "plain") != (sig["pattern_color"] is None)):
            raise InvalidInput(f"entity {ent.name!r} has a bad signature {sig}")
        if ent.key in seen_keys:
            raise InvalidInput(f"entities {ent.name!r} and {seen_keys[ent.key]!r} share a signature")
        seen_keys[ent.key] = ent.name
        clash = words & set(ent.name.split())
        if clash:  # an attribute word in a name would leak the look into attribute captions
            raise InvalidInput(f"entity {ent.name!r} uses attribute words {sorted(clash)}")


def load_entities(path: Path = ENTITIES_PATH) -> list[Entity]:
    """All entities, validated, in file order."""
    raw = json.loads(Path(path).read_text(encoding="utf-8"))
    entities = [
        Entity(name=e["name"], signature=dict(e["signature"]), confusable_with=tuple(e["confusable_with"]),
               descriptions=tuple(e["descriptions"]))
        for e in raw
    ]
    _check(entities, load_lexicon())
    return entities


def choose_seen(entities: list[Entity], seed: int, fraction: float) -> set[str]:
    """Names of the entities that train captions may name; the rest stay unseen by name."""
    names = sorted(e.name for e in entities)
    random.Random(f"seen:{seed}").shuffle(names)
    return set(names[: round(fraction * len(names))])
