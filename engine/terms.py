"""Weighted queries: each text is a unit rewritten and encoded on its own; the units' vectors are summed with
their weights, so a hit's score is the weighted sum of its scores under each text (one index search)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from evdsearch.engine.validation import Query

Parts = list[list[tuple[int, float]]]  # per query: (unit position, weight)


def expand(queries: list[Query]) -> tuple[list[Query], Parts]:
    """One unit per text of a weighted query, the query itself otherwise; and which units make each query."""
    units: list[Query] = []
    parts: Parts = []
    for query in queries:
        if query.terms:
            parts.append([(len(units) + i, weight) for i, (_, weight) in enumerate(query.terms)])
            units += [replace(query, text=text, terms=None) for text, _ in query.terms]
        else:
            parts.append([(len(units), 1.0)])
            units.append(query)
    return units, parts


def combine(parts: Parts, vectors: np.ndarray) -> np.ndarray:
    """Per query, the weighted sum of its units' rows of `vectors`; a lone unit of weight 1 is taken as it is
    (so a one-text query is bit-for-bit the plain query)."""
    out = []
    for units in parts:
        if len(units) == 1 and units[0][1] == 1.0:
            out.append(vectors[units[0][0]])
        else:
            out.append(sum(np.float32(weight) * vectors[unit] for unit, weight in units))
    return np.stack(out).astype(np.float32)
