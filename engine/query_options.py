"""Checks of a request's search options: filter, thresholds, page, diversity, weighted terms, "more like this"."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput
from evdsearch.filter_expr import Node, parse_filter
from evdsearch.search_api import MAX_DEPTH, MAX_TERM_WEIGHT, MAX_TERMS, MMR_POOL, SearchRequest, WeightedText


@dataclass(frozen=True)
class SearchOptions:
    """A request's checked options (defaults: none of them)."""

    filter: Node | None = None  # parsed filter; bound to the index's schema at search time
    min_score: float | None = None  # keep hits scoring at least this
    min_relative: float | None = None  # keep hits within this fraction of the best hit's score
    offset: int = 0  # hits skipped
    diversity: float = 0.0  # MMR trade-off
    with_metadata: bool = False  # fill Hit.metadata

    def depth(self, k: int, excluded: int = 0) -> int:
        """Candidates to fetch: the page's end (or the MMR pool), plus ids excluded afterwards."""
        return (MMR_POOL if self.diversity > 0 else self.offset + k) + excluded


def _finite(value: Any, name: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)) \
            or not math.isfinite(value):
        raise InvalidInput(f"{name} must be a finite number, got {value!r}")
    return float(value)


def _integer(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise InvalidInput(f"{name} must be an integer, got {value!r}")
    return int(value)


def check_options(req: SearchRequest, k: int) -> SearchOptions:
    """The options of one request; InvalidInput naming the field for a bad one."""
    min_score = None if req.min_score is None else _finite(req.min_score, "min_score")
    min_relative = None if req.min_relative is None else _finite(req.min_relative, "min_relative")
    if min_relative is not None and not 0.0 <= min_relative <= 1.0:
        raise InvalidInput(f"min_relative must be in [0, 1] (a fraction of the best hit's score), got {min_relative}")
    diversity = _finite(req.diversity if req.diversity is not None else 0.0, "diversity")
    if not 0.0 <= diversity <= 1.0:
        raise InvalidInput(f"diversity must be in [0, 1] (0: plain top-k), got {diversity}")
    offset = _integer(req.offset if req.offset is not None else 0, "offset")
    if offset < 0:
        raise InvalidInput(f"offset must be 0 or more, got {offset}")
    limit = MMR_POOL if diversity > 0 else MAX_DEPTH
    if offset + k > limit:
        why = f" with diversity (the re-ranked pool holds {MMR_POOL})" if diversity > 0 else ""
        raise InvalidInput(f"offset + k is {offset + k}; the deepest page reaches hit {limit}{why}")
    tree = None if req.filter is None or req.filter == "" else parse_filter(req.filter)
    return SearchOptions(tree, min_score, min_relative, offset, diversity, bool(req.with_metadata))


def check_terms(terms: Any, check_text: Any) -> list[tuple[str, float]]:
    """(text, weight) pairs of a weighted query, zero weights dropped; `check_text` checks each text."""
    if not isinstance(terms, (list, tuple)) or not terms:
        raise InvalidInput("terms must be a non-empty list of (text, weight)")
    if len(terms) > MAX_TERMS:
        raise InvalidInput(f"a weighted query holds at most {MAX_TERMS} terms, got {len(terms)}")
    out = []
    for position, term in enumerate(terms):
        text, weight = (term.text, term.weight) if isinstance(term, WeightedText) else (None, None)
        if text is None:
            raise InvalidInput(f"term {position} is not a (text, weight) pair")
        weight = _finite(weight, f"term {position} weight")
        if abs(weight) > MAX_TERM_WEIGHT:
            raise InvalidInput(f"term {position} weight is {weight}; weights lie in "
                               f"[-{MAX_TERM_WEIGHT:g}, {MAX_TERM_WEIGHT:g}]")
        try:
            text = check_text(text)
        except InvalidInput as err:
            raise InvalidInput(f"term {position}: {err}") from None
        if weight != 0.0:
            out.append((text, weight))
    if not out:
        raise InvalidInput("every term has weight 0: give at least one term a non-zero weight")
    return out


def check_like_id(like_id: Any) -> int:
    value = _integer(like_id, "like_id")
    if value < 0:
        raise InvalidInput(f"like_id must be an index id (0 or more), got {value}")
    return value
