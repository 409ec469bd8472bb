"""Label LLM descriptions against the shapes world's ground truth: visual-correct / visual-wrong / non-visual."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.training.evd.attributes import (
    CATEGORIES,
    build_lexicon,
    canonical_signature,
    find_mentions,
    has_visual_words,
)

# visual_correct: names the entity's true attribute(s) and no contradicting one.
# visual_wrong: names an attribute value the entity does not have (even next to a true one).
# visual_vague: visual words ("its colour", "the shape") but no attribute value: no usable fact.
# non_visual: nothing about appearance (habitat, use, history, ...).
LABELS = ("visual_correct", "visual_wrong", "visual_vague", "non_visual")
KIND_OF_LABEL = {"visual_correct": "visual", "visual_wrong": "wrong", "visual_vague": "non_visual",
                 "non_visual": "non_visual"}  # the encyclopedia's three kinds


@dataclass(frozen=True)
class WorldEntity:
    """What the labeller needs of one entity of the world."""

    name: str
    signature: dict[str, frozenset[str]]  # allowed canonical values of shape, color, size, texture
    seen: bool


def load_world_entities(path: str | Path) -> dict[str, WorldEntity]:
    """entities.json of a shapes world (a world folder or the file itself), by lower-cased name."""
    path = Path(path)
    if path.is_dir():
        path = path / "entities.json"
    if not path.is_file():
        raise NotFound(f"world entities not found: {path} (make a world with `evdsearch world make`)")
    try:
        items = json.loads(path.read_text(encoding="utf-8"))
        return {item["name"].lower(): WorldEntity(item["name"], canonical_signature(item["signature"]),
                                                  bool(item.get("seen", True))) for item in items}
    except (json.JSONDecodeError, KeyError, TypeError, AttributeError) as err:
        raise InvalidInput(f"{path} is not a shapes-world entities.json ({err})") from err


class Labeller:
    """Labels one description of one entity by the attribute words it contains."""

    def __init__(self, entities: dict[str, WorldEntity]) -> None:
        self.entities = entities
        values: dict[str, set[str]] = defaultdict(set)
        for entity in entities.values():
            for category, allowed in entity.signature.items():
                values[category].update(allowed)
        self.lexicon = build_lexicon(values)

    def label(self, entity: WorldEntity, description: str) -> tuple[str, dict[str, list[str]]]:
        """(label, {"supports": words, "contradicts": words}); the entity's own name words are ignored."""
        found: dict[str, list[str]] = {"supports": [], "contradicts": []}
        name_words = set(entity.name.lower().split())
        for mention in find_mentions(description, self.lexicon, ignore=name_words):
            verdict = mention.verdict(entity.signature)
            if verdict in found and mention.word not in found[verdict]:
                found[verdict].append(mention.word)
        if found["contradicts"]:
            return "visual_wrong", found
        if found["supports"]:
            return "visual_correct", found
        return ("visual_vague" if has_visual_words(description) else "non_visual"), found


def label_records(records: list[dict[str, Any]], entities: dict[str, WorldEntity],
                  n_examples: int = 5) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(report, records with "label", "kind", "supports", "contradicts" added)."""
    labeller = Labeller(entities)
    labelled, unknown = [], Counter()
    totals: Counter[str] = Counter()
    groups: dict[str, dict[str, Counter]] = {"prompt": defaultdict(Counter), "sample": defaultdict(Counter),
                                             "seen": defaultdict(Counter)}
    per_entity: dict[str, Counter] = defaultdict(Counter)
    examples: dict[str, list[dict[str, Any]]] = {label: [] for label in LABELS}
    for record in records:
        entity = entities.get(str(record.get("entity", "")).lower())
        if entity is None:
            unknown[str(record.get("entity"))] += 1
            continue
        label, found = labeller.label(entity, record["description"])
        out = {**record, "label": label, "kind": KIND_OF_LABEL[label], **found}
        labelled.append(out)
        totals[label] += 1
        groups["prompt"][str(record.get("prompt", ""))][label] += 1
        groups["sample"][str(record.get("sample", ""))][label] += 1
        groups["seen"]["seen" if entity.seen else "unseen"][label] += 1
        per_entity[entity.name][label] += 1
        if len(examples[label]) < n_examples:
            examples[label].append({k: out[k] for k in ("entity", "description", "supports", "contradicts")}
                                   | {"signature": {c: sorted(v) for c, v in entity.signature.items()}})
    n = sum(totals.values())
    report = {
        "n_descriptions": n,
        "labels": {label: totals[label] for label in LABELS},
        "fractions": {label: round(totals[label] / n, 4) if n else 0.0 for label in LABELS},
        "kinds": {kind: sum(totals[lb] for lb in LABELS if KIND_OF_LABEL[lb] == kind)
                  for kind in ("visual", "non_visual", "wrong")},
        "entities": {"described": len(per_entity), "in_world": len(entities),
                     "with_a_correct_visual": sum(1 for c in per_entity.values() if c["visual_correct"]),
                     "with_a_wrong_visual": sum(1 for c in per_entity.values() if c["visual_wrong"])},
        "by_prompt": _plain(groups["prompt"]), "by_sample": _plain(groups["sample"]),
        "by_seen": _plain(groups["seen"]), "by_entity": _plain(per_entity),
        "unknown_entities": dict(unknown), "categories": list(CATEGORIES), "examples": examples,
    }
    return report, labelled


def _plain(groups: dict[str, Counter]) -> dict[str, dict[str, int]]:
    return {key: {label: counts[label] for label in LABELS} for key, counts in sorted(groups.items())}
