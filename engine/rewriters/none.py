"""The `none` rewriter: the query stays as it is (the CLIP baseline)."""

from __future__ import annotations

from collections.abc import Sequence

from evdsearch.engine.rewriters.base import Evidence


class NoRewriter:
    """Returns the query unchanged, so fused = original."""

    name = "none"

    def rewrite(self, query: str, evidence: Evidence) -> str:
        return query

    def rewrite_batch(self, items: Sequence[tuple[str, Evidence]]) -> list[str]:
        return [query for query, _ in items]
