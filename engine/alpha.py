"""The fusion weight of a query (alpha: the weight of the rewritten query), decided once, in one order.

1. the request's own alpha, when it gives one;
2. the engine's fixed alpha, when it has one (`serve --fixed-alpha A`: EngineConfig.adaptive_alpha False);
3. the calibrated weights of the entities the query names (`kb calibrate` writes them into the KB); of several
   entities the largest, an entity without a weight counting as the default;
4. the default: EngineConfig.alpha (`serve --alpha A`), DEFAULT_ALPHA unless set.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from evdsearch.search_api import DEFAULT_ALPHA

if TYPE_CHECKING:
    from evdsearch.indexer.kb import KnowledgeBase

COMBINE = ("mean", "max", "min")  # how the weights of several entities in one query become one


@dataclass(frozen=True)
class AlphaPolicy:
    """Per-query weight: request alpha > fixed alpha > calibrated entity weights > default (see the module)."""

    default: float = DEFAULT_ALPHA  # weight when nothing else decides (and of entities without a weight)
    fixed: float | None = None  # one weight for every query that gives none (calibration ignored)
    weights: dict[str, float] = field(default_factory=dict)  # normalised entity -> calibrated weight
    combine: str = "max"  # one of COMBINE: the largest weight, so one unknown entity is enough to rewrite

    def __post_init__(self) -> None:
        if self.combine not in COMBINE:
            raise ValueError(f"unknown combine {self.combine!r}; use one of {', '.join(COMBINE)}")

    @classmethod
    def from_kb(cls, kb: KnowledgeBase | None, alpha: float = DEFAULT_ALPHA, adaptive: bool = True,
                combine: str = "max") -> AlphaPolicy:
        """`adaptive`: the KB's calibrated weights (when it has any) with `alpha` as the default; else `alpha`
        is fixed for every query (EvdCLIP's fixed weight)."""
        if not adaptive:
            return cls(default=alpha, fixed=alpha, combine=combine)
        weights = {e: w.alpha for e, w in kb.weights().items()} if kb is not None else {}
        return cls(default=alpha, weights=weights, combine=combine)

    @property
    def adaptive(self) -> bool:
        """Whether calibrated weights decide (step 3 can apply)."""
        return self.fixed is None and bool(self.weights)

    def resolve(self, requested: float | None = None, entities: Sequence[str] = ()) -> float:
        """The weight of one query: its request's `requested` alpha, else the policy's for the `entities` it
        names (those the rewriter had descriptions for)."""
        if requested is not None:
            return requested
        if self.fixed is not None:
            return self.fixed
        if not self.weights or not entities:
            return self.default
        values = [self.weights.get(e, self.default) for e in entities]
        if self.combine == "max":
            return max(values)
        if self.combine == "min":
            return min(values)
        return sum(values) / len(values)


def describe(policy: Any) -> str:
    """One line for logs: adaptive (n entities) or fixed alpha."""
    if policy.adaptive:
        return f"adaptive fusion ({len(policy.weights)} calibrated entities, {policy.combine})"
    return f"fixed alpha {policy.resolve():g}"
