"""Candidate rewrites of one caption: subsets of its entities' descriptions, in several phrasings.

The empty rewrite (the caption as written) is always candidate 0, so the retriever can say that
adding descriptions does not help.
"""

from __future__ import annotations

import itertools
import random
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from evdsearch.engine.rewriters.base import description_text
from evdsearch.engine.rewriters.template import connect, template_rewrite

EMPTY = "empty"  # phrasing name of the caption unchanged
_ARTICLE_BEFORE = re.compile(r"\b(a|an|the|one)\s+$", re.IGNORECASE)
_ARTICLES = ("a", "an", "the", "one")


@dataclass(frozen=True)
class Mention:
    """Where an entity is named in the caption (engine.api.EntityMention without the import)."""

    entity: str  # normalised entity name (the evidence key)
    start: int  # character span in the caption
    end: int


@dataclass
class Candidate:
    """One candidate rewrite and what it was built from."""

    text: str  # the rewritten caption
    phrasing: str  # empty | template | append | inline | replace
    used: dict[str, list[int]] = field(default_factory=dict)  # entity -> indices of descriptions used


Subset = dict[str, list[int]]  # entity -> description indices (KB order)


def _clean(caption: str) -> str:
    return " ".join(caption.split()).rstrip(" .")


def _texts(evidence: Mapping[str, Sequence[object]], subset: Subset) -> dict[str, list[str]]:
    return {e: [description_text(evidence[e][i]) for i in idx] for e, idx in subset.items() if idx}


def _template(caption: str, texts: dict[str, list[str]], mentions: Sequence[Mention]) -> str | None:
    return template_rewrite(caption, texts)


def _append(caption: str, texts: dict[str, list[str]], mentions: Sequence[Mention]) -> str | None:
    return ", ".join([_clean(caption)] + [t for ts in texts.values() for t in ts])


def _splice(caption: str, mentions: Sequence[Mention], make: Callable[[str, str, str], str | None]) -> str | None:
    """Rewrite each mention's span with `make(entity, mention_text, text_before)`, right to left."""
    out = caption
    changed = False
    for m in sorted(mentions, key=lambda m: m.start, reverse=True):
        new = make(m.entity, out[m.start : m.end], out[: m.start])
        if new is None:
            continue
        before = out[: m.start]
        if new.startswith("\0"):  # drop the article before the mention ("a tomato" -> "a red fruit")
            new = new[1:]
            before = _ARTICLE_BEFORE.sub("", before)
        out, changed = before + new + out[m.end :], True
    return _clean(out) if changed else None


def _inline(caption: str, texts: dict[str, list[str]], mentions: Sequence[Mention]) -> str | None:
    def make(entity: str, mention: str, before: str) -> str | None:
        return f"{mention}, {' and '.join(texts[entity])}," if entity in texts else None

    return _splice(caption, mentions, make)


def _replace(caption: str, texts: dict[str, list[str]], mentions: Sequence[Mention]) -> str | None:
    """The entity name replaced by its first description when that is a noun phrase ("a red fruit")."""

    def make(entity: str, mention: str, before: str) -> str | None:
        descs = texts.get(entity)
        if not descs or descs[0].split(maxsplit=1)[0].lower() not in _ARTICLES:
            return None
        rest = [connect(d) for d in descs[1:]]
        phrase = descs[0] + (f" which {' and '.join(rest)}" if rest else "")
        return ("\0" if _ARTICLE_BEFORE.search(before) else "") + phrase

    return _splice(caption, mentions, make)


PHRASINGS: dict[str, Callable[[str, dict[str, list[str]], Sequence[Mention]], str | None]] = {
    "template": _template, "append": _append, "inline": _inline, "replace": _replace,
}


def description_subsets(evidence: Mapping[str, Sequence[object]], max_size: int) -> list[Subset]:
    """Every non-empty subset of the (entity, description) pairs with at most `max_size` pairs."""
    pairs = [(e, i) for e, descs in evidence.items() for i in range(len(descs))]
    subsets = []
    for size in range(1, min(max_size, len(pairs)) + 1):
        for combo in itertools.combinations(pairs, size):
            subset: Subset = {}
            for entity, index in combo:
                subset.setdefault(entity, []).append(index)
            subsets.append(subset)
    return subsets


def build_candidates(caption: str, evidence: Mapping[str, Sequence[object]], mentions: Sequence[Mention],
                     rng: random.Random, max_candidates: int = 16, max_subset: int = 3,
                     phrasings: Sequence[str] = tuple(PHRASINGS)) -> list[Candidate]:
    """The empty rewrite, then up to `max_candidates - 1` distinct rewrites drawn at random (seeded)."""
    empty = Candidate(_clean(caption), EMPTY)
    pool: dict[str, Candidate] = {}
    for subset in description_subsets(evidence, max_subset):
        texts = _texts(evidence, subset)
        for name in phrasings:
            text = PHRASINGS[name](caption, texts, mentions)
            if text and text != empty.text and text not in pool:
                pool[text] = Candidate(text, name, {e: list(i) for e, i in subset.items()})
    chosen = list(pool.values())
    if len(chosen) > max_candidates - 1:
        chosen = rng.sample(chosen, max_candidates - 1)
    return [empty] + chosen
