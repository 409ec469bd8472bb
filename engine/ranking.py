"""From an index's candidates to one page: the query's own image excluded, score thresholds, MMR diversity, the
page's slice. Every step is a function of the query alone, so every page is a slice of one ranking."""

from __future__ import annotations

from typing import Any

import numpy as np

from evdsearch.engine.query_options import SearchOptions


def relative_floor(best: float, fraction: float) -> float:
    """The lowest score within `fraction` of the best: fraction * best for a positive best (and, for a negative
    one, as far below it as (1 - fraction) * |best|)."""
    return best - (1.0 - fraction) * abs(best)


def mmr_order(scores: np.ndarray, vectors: np.ndarray, diversity: float, count: int) -> list[int]:
    """Maximal marginal relevance: `count` positions picked greedily by
    (1 - diversity) * score - diversity * max cosine similarity to the hits already picked.

    Ties go to the earlier (better ranked) candidate, so diversity 0 returns the input order exactly.
    """
    n = len(scores)
    count = min(count, n)
    if n == 0:
        return []
    vectors = np.asarray(vectors, dtype=np.float32)
    nearest = np.full(n, -np.inf, dtype=np.float64)  # max similarity to a picked hit
    free = np.ones(n, dtype=bool)
    picked: list[int] = []
    relevance = (1.0 - diversity) * np.asarray(scores, dtype=np.float64)
    for _ in range(count):
        penalty = np.where(np.isfinite(nearest), nearest, 0.0) * diversity
        value = np.where(free, relevance - penalty, -np.inf)
        best = int(np.argmax(value))  # first maximum: the better ranked candidate
        picked.append(best)
        free[best] = False
        nearest = np.maximum(nearest, vectors @ vectors[best])
    return picked


def page_of(scores: np.ndarray, ids: np.ndarray, options: SearchOptions, k: int, store: Any,
            exclude: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """The (scores, ids) of one page from a row of ranked candidates (id -1 marks the end)."""
    keep = (ids >= 0) & (ids != (-1 if exclude is None else exclude))
    scores, ids = scores[keep], ids[keep]
    if len(scores) and options.min_relative is not None:
        floor = relative_floor(float(scores[0]), options.min_relative)
        scores, ids = scores[scores >= floor], ids[scores >= floor]
    if options.min_score is not None:
        scores, ids = scores[scores >= options.min_score], ids[scores >= options.min_score]
    if options.diversity > 0 and len(ids):
        vectors = np.asarray(store.embeddings[ids], dtype=np.float32)  # the pool's stored embeddings
        order = mmr_order(scores, vectors, options.diversity, options.offset + k)
        scores, ids = scores[order], ids[order]
    stop = options.offset + k
    return scores[options.offset:stop], ids[options.offset:stop]


def search_pages(store: Any, vectors: np.ndarray, queries: list[Any], selections: list[Any]
                 ) -> list[tuple[np.ndarray, np.ndarray, str]]:
    """(scores, ids, plan) of ranked candidates per query: one index search per distinct filter, as deep as its
    deepest query needs (rankings are stable across depths, so a shallower query reads a prefix)."""
    groups: dict[str | None, list[int]] = {}
    for i, selection in enumerate(selections):
        groups.setdefault(None if selection is None else selection.text, []).append(i)
    out: list[Any] = [None] * len(queries)
    for members in groups.values():
        depth = max(queries[i].options.depth(queries[i].k, int(queries[i].like_id is not None)) for i in members)
        page = store.search_page(vectors[members], depth, selections[members[0]])
        for row, i in enumerate(members):
            out[i] = (page.scores[row], page.ids[row], page.plan)
    return out
