"""A search's explanation: entities, descriptions, rewrites and weights per text, filter and search plan."""

from __future__ import annotations

from typing import Any

from evdsearch.search_api import Explanation, RewriteResult, TermExplanation


def explain(units: list[tuple[Any, RewriteResult | None, float, float]], query: Any, timings_ms: dict[str, float],
            selection: Any = None, plan: str = "") -> Explanation:
    """`units`: (unit query, its rewrite, its alpha, its weight) for each text of the query (one for a plain
    text query, none rewritten for image / embedding / "more like this" queries)."""
    found = {"filter": selection.text if selection is not None else "",
             "filter_matches": selection.count if selection is not None else None, "search_plan": plan}
    rewrites = [rewrite for _, rewrite, _, _ in units if rewrite is not None]
    if not rewrites:  # image / embedding / more-like-this query: nothing to rewrite
        return Explanation(entities=[], descriptions={}, rewritten_query="", timings_ms=dict(timings_ms), **found)
    if query.terms is None:  # a plain text query
        (_, rewrite, alpha, _), = units
        return Explanation(entities=list(rewrite.mentions), descriptions=dict(rewrite.descriptions),
                           rewritten_query=rewrite.rewritten, timings_ms=dict(timings_ms), alpha=alpha,
                           rewrite_variants=list(rewrite.variants), **found)
    terms = [TermExplanation(text=unit.text, weight=weight, rewritten_query=rewrite.rewritten, alpha=alpha,
                             entities=list(rewrite.entities)) for unit, rewrite, alpha, weight in units]
    descriptions: dict = {}
    for rewrite in rewrites:
        descriptions.update(rewrite.descriptions)
    return Explanation(entities=[m for r in rewrites for m in r.mentions], descriptions=descriptions,
                       rewritten_query=" | ".join(r.rewritten for r in rewrites), timings_ms=dict(timings_ms),
                       rewrite_variants=[v for r in rewrites for v in r.variants], terms=terms, **found)
