"""Best of several samples by agreement: keep the descriptions whose attribute words the entity's other
answers repeat, drop the ones that contradict them.

An LLM that has never seen the images is right more often than it is consistently wrong: asked the same
question several times (greedy plus temperature samples, several prompts), the colour and outline it names
most often is usually the one it knows, while a hallucinated one rarely comes back. Each description votes
once for every attribute value it names; per category the values named by at least `min_votes` answers and
by at least half as many as the most-voted one are agreed (a second colour survives when it recurs: a zebra
is white and black); a description is kept when it names an agreed value and none that is not agreed in a
category that has one. The vocabulary is generic colour / shape / size / pattern words
(training/evd/attributes.py), never the world's ground truth.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass
from typing import Any

from evdsearch.training.evd.attributes import build_lexicon, find_mentions


@dataclass(frozen=True)
class AgreementConfig:
    """How descriptions are chosen."""

    keep: int = 4  # most descriptions kept per entity, best agreement first
    min_votes: int = 3  # a value needs this many answers naming it to be agreed
    fallback: bool = True  # an entity with no agreeing description keeps its single most-voted one


def _mentions(entity: str, text: str, lexicon: dict) -> dict[str, set[str]]:
    """category -> values a description names (the entity's own name words ignored)."""
    found: dict[str, set[str]] = defaultdict(set)
    for mention in find_mentions(text, lexicon, ignore=set(entity.lower().split())):
        for category, value in mention.meanings:
            found[category].add(value)
    return found


def agreed_values(counts: Counter, min_votes: int) -> set[str]:
    """Values named by at least `min_votes` answers and at least half as often as the most-named one."""
    most = max(counts.values(), default=0)
    return {value for value, n in counts.items() if n >= min_votes and 2 * n >= most}


def select_by_agreement(records: list[dict[str, Any]], config: AgreementConfig | None = None,
                        answers: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
    """The kept records, each with "agreement" (votes for the agreed values it names) and "score" set
    from it; order: entity as first seen, then agreement.

    `answers`: entity -> every raw LLM answer, one vote each (`evd generate` writes each distinct
    description once, so repeated answers only show in its progress log); None: the records vote.
    """
    config = config or AgreementConfig()
    lexicon = build_lexicon({})
    by_entity: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        by_entity[str(record["entity"])].append(record)
    kept: list[dict[str, Any]] = []
    for entity, items in by_entity.items():
        unique = list({str(r["description"]).lower(): r for r in items}.values())
        named = [_mentions(entity, str(r["description"]), lexicon) for r in unique]
        voters = named if answers is None else [_mentions(entity, a, lexicon) for a in answers.get(entity, [])]
        votes: dict[str, Counter] = defaultdict(Counter)
        for found in voters:
            for category, values in found.items():
                votes[category].update(values)
        agreed = {category: agreed_values(counts, config.min_votes) for category, counts in votes.items()}
        agreed = {category: values for category, values in agreed.items() if values}
        scored = []
        for record, found in zip(unique, named, strict=True):
            agree = sum(votes[c][v] for c, values in found.items() for v in values if v in agreed.get(c, ()))
            against = any(c in agreed and not values <= agreed[c] for c, values in found.items())
            scored.append((agree, against, record))
        chosen = [(a, r) for a, against, r in scored if a > 0 and not against]
        if not chosen and config.fallback:  # nothing agreed: the description whose words recur most
            raw = [(sum(votes[c][v] for c, values in found.items() for v in values), record)
                   for found, record in zip(named, unique, strict=True)]
            chosen = [max(raw, key=lambda item: (item[0], -len(str(item[1]["description"]))))] if raw else []
            chosen = [(n, record) for n, record in chosen if n > 0]
        chosen.sort(key=lambda item: (-item[0], len(str(item[1]["description"]))))
        chosen = _spread_over_categories(chosen, {id(r): set(f) & set(agreed) for f, r in zip(named, unique,
                                                                                            strict=True)})
        top = max((a for a, _ in chosen), default=1) or 1
        kept += [{**record, "agreement": agree, "score": round(agree / top, 4)}
                 for agree, record in chosen[: config.keep]]
    return kept


def _spread_over_categories(chosen: list[tuple[int, dict]], categories: dict[int, set[str]]
                            ) -> list[tuple[int, dict]]:
    """Best first, but each description that names an agreed category none before it named is moved up:
    a colour and a shape outrank three ways of saying the colour."""
    first, rest, covered = [], [], set()
    for item in chosen:
        named = categories.get(id(item[1]), set())
        (first if named - covered else rest).append(item)
        covered |= named
    return first + rest
