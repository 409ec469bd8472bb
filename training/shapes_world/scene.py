"""Scene sampling: which objects an image holds, their attributes and where they sit."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from evdsearch.training.shapes_world.entities import Entity, signature_key
from evdsearch.training.shapes_world.vocab import SIZES, Lexicon

ASPECT = {"rectangle": 0.6, "oval": 0.68}  # height / width; other shapes fill a square box
TEXTURE_WEIGHTS = {"plain": 0.4, "striped": 0.2, "dotted": 0.2, "checkered": 0.2}
N_OBJECTS_WEIGHTS = {1: 0.3, 2: 0.4, 3: 0.3}


@dataclass
class Scene:
    """One image's content, enough to draw and caption it."""

    background: str  # a key of lexicon.backgrounds
    objects: list[dict[str, Any]]  # attribute dicts with "entity" (name or None) and "bbox" [x0, y0, x1, y1]


def _cells(n: int, rng: random.Random) -> list[tuple[float, float, float, float]]:
    """Disjoint unit-square cells, one per object, so left/right/above/below relations are clear-cut."""
    if n == 1:
        return [(0.0, 0.0, 1.0, 1.0)]
    vertical = rng.random() < 0.5  # True: a left and a right half
    halves = [(0.0, 0.0, 0.5, 1.0), (0.5, 0.0, 1.0, 1.0)] if vertical else [(0.0, 0.0, 1.0, 0.5), (0.0, 0.5, 1.0, 1.0)]
    rng.shuffle(halves)
    if n == 2:
        return halves
    whole, split = halves
    x0, y0, x1, y1 = split
    if vertical:  # split the other half into top and bottom quarters
        quarters = [(x0, y0, x1, 0.5), (x0, 0.5, x1, y1)]
    else:
        quarters = [(x0, y0, 0.5, y1), (0.5, y0, x1, y1)]
    cells = [whole, *quarters]
    rng.shuffle(cells)
    return cells


def _random_attrs(rng: random.Random, lex: Lexicon) -> dict[str, Any]:
    texture = rng.choices(list(TEXTURE_WEIGHTS), weights=list(TEXTURE_WEIGHTS.values()))[0]
    color = rng.choice(lex.color_names)
    pattern = None if texture == "plain" else rng.choice([c for c in lex.color_names if c != color])
    return {"shape": rng.choice(lex.shape_names), "color": color, "size": rng.choice(SIZES),
            "texture": texture, "pattern_color": pattern, "entity": None}


def sample_object(rng: random.Random, entities: list[Entity], lex: Lexicon, entity_rate: float,
                  taken: set[tuple], entity_keys: set[tuple]) -> dict[str, Any]:
    """An entity's look (with probability `entity_rate`) or random attributes that match no entity.

    `taken` holds the (shape, color) pairs already in the image: each pair appears once, so
    "the red circle" always points at one object.
    """
    while True:
        if rng.random() < entity_rate:
            ent = rng.choice(entities)
            attrs = {**ent.signature, "entity": ent.name}
        else:
            attrs = _random_attrs(rng, lex)
            if signature_key(attrs) in entity_keys:
                continue  # a random object that looks exactly like an entity would be an unnamed entity
        if (attrs["shape"], attrs["color"]) not in taken:
            return attrs


def place(attrs: dict[str, Any], cell: tuple[float, ...], rng: random.Random, lex: Lexicon,
          image_size: int) -> list[int]:
    """A pixel bounding box of the object's size, at a random spot inside its cell."""
    width = lex.sizes[attrs["size"]]["fraction"] * image_size
    height = width * ASPECT.get(attrs["shape"], 1.0)
    cx0, cy0, cx1, cy1 = (v * image_size for v in cell)
    margin = image_size / 64
    x0 = rng.uniform(cx0 + margin, max(cx0 + margin, cx1 - margin - width))
    y0 = rng.uniform(cy0 + margin, max(cy0 + margin, cy1 - margin - height))
    return [round(x0), round(y0), round(x0 + width), round(y0 + height)]


def sample_scene(rng: random.Random, entities: list[Entity], lex: Lexicon, image_size: int,
                 entity_rate: float = 0.5) -> Scene:
    """A background and 1-3 objects in disjoint cells."""
    n = rng.choices(list(N_OBJECTS_WEIGHTS), weights=list(N_OBJECTS_WEIGHTS.values()))[0]
    entity_keys = {e.key for e in entities}
    taken: set[tuple] = set()
    objects = []
    for cell in _cells(n, rng):
        attrs = sample_object(rng, entities, lex, entity_rate, taken, entity_keys)
        taken.add((attrs["shape"], attrs["color"]))
        attrs["bbox"] = place(attrs, cell, rng, lex, image_size)
        objects.append(attrs)
    return Scene(background=rng.choice(sorted(lex.backgrounds)), objects=objects)
