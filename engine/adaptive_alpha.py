"""Adaptive fusion: a query's weight of the rewritten query, from the KB's calibrated per-entity weights."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from evdsearch.engine.api import RewriteResult, SearchRequest
    from evdsearch.engine.validation import Query
    from evdsearch.indexer.kb import KnowledgeBase

COMBINE = ("mean", "max", "min")  # how the weights of several entities in one query become one


@dataclass
class AlphaPolicy:
    """Per-query weight: request alpha > fixed engine alpha > the largest weight of the named entities."""

    weights: dict[str, float]  # normalised entity -> calibrated weight (empty: no calibration, or fixed alpha)
    fallback: float  # weight for an entity without one, and for every query when `weights` is empty
    combine: str = "max"  # one of COMBINE: the largest weight, so one unknown entity is enough to rewrite

    @classmethod
    def from_kb(cls, kb: KnowledgeBase | None, alpha: float, adaptive: bool, combine: str = "max") -> AlphaPolicy:
        """The KB's weights when `adaptive` and it has any; else every query gets `alpha` (EvdCLIP's fixed weight)."""
        if combine not in COMBINE:
            raise ValueError(f"unknown combine {combine!r}; use one of {', '.join(COMBINE)}")
        weights = {e: w.alpha for e, w in kb.weights().items()} if (adaptive and kb is not None) else {}
        return cls(weights=weights, fallback=alpha, combine=combine)

    @property
    def adaptive(self) -> bool:
        return bool(self.weights)

    def for_entities(self, entities: Sequence[str]) -> float:
        """The weight of a query naming these entities (the fallback when it names none)."""
        if not self.weights or not entities:
            return self.fallback
        values = [self.weights.get(e, self.fallback) for e in entities]
        if self.combine == "max":
            return max(values)
        if self.combine == "min":
            return min(values)
        return sum(values) / len(values)

    def apply(self, reqs: Sequence[SearchRequest], queries: list[Query],
              rewrites: Sequence[RewriteResult | None]) -> None:
        """Set each text query's alpha in place, unless its request gave one (a request's alpha always wins)."""
        if not self.weights:
            return
        for req, query, rewrite in zip(reqs, queries, rewrites, strict=True):
            if req.alpha is None and rewrite is not None:
                query.alpha = self.for_entities([e for e in rewrite.descriptions])


def describe(policy: Any) -> str:
    """One line for logs: adaptive (n entities) or fixed alpha."""
    if policy.adaptive:
        return f"adaptive fusion ({len(policy.weights)} calibrated entities, {policy.combine})"
    return f"fixed alpha {policy.fallback:g}"
