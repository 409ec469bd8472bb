"""The world's encyclopedia: labelled descriptions per entity, in the KB import format."""

from __future__ import annotations

import random
from typing import Any

from evdsearch.training.shapes_world.entities import Entity


def encyclopedia_records(entities: list[Entity], seed: int) -> list[dict[str, Any]]:
    """Lines for encyclopedia.jsonl: each entity's descriptions in a seed-shuffled order.

    Shuffled so that position does not give away which description is the visual one; `kind`
    (visual / non_visual / wrong) says it for the experiments that need it.
    """
    records = []
    for ent in entities:
        descriptions = list(ent.descriptions)
        random.Random(f"encyclopedia:{seed}:{ent.name}").shuffle(descriptions)
        records += [{"entity": ent.name, "description": d["text"], "source": "encyclopedia", "score": 1.0,
                     "kind": d["kind"]} for d in descriptions]
    return records
