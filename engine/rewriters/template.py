"""The `template` rewriter: EvdCLIP's naive baseline, "{query}, {entity} which is/has {description}"."""

from __future__ import annotations

from collections.abc import Sequence

from evdsearch.engine.rewriters.base import Evidence, description_text

_ARTICLES = ("a", "an", "the", "one")  # "a red round fruit" reads as "which is a red round fruit"
_VERBS = ("is", "are", "has", "have", "looks", "look", "contains", "shows", "appears", "comes", "can", "may",
          "carries", "lives", "grows", "flies", "swims", "runs", "holds", "tastes", "smells", "feels", "sits",
          "stands", "hangs", "makes", "uses", "keeps", "goes", "moves", "points", "protects", "helps", "gives",
          "tells", "says", "means", "marks", "signals", "warns", "lights", "flows", "shines", "glows")
# "grown in gardens" reads as "which is grown in gardens"
_PARTICIPLES = ("grown", "found", "made", "used", "worn", "seen", "known", "kept", "built", "eaten", "sold",
                "given", "held", "driven", "ridden", "played", "served", "shaped", "colored", "coloured")


def connect(description: str) -> str:
    """`is DESCRIPTION` for a noun phrase or participle, `has DESCRIPTION` for parts, as-is after a verb."""
    first = description.split(maxsplit=1)[0].lower() if description else ""
    if first in _VERBS:
        return description
    if first in _ARTICLES or first in _PARTICIPLES:
        return f"is {description}"
    return f"has {description}"


def template_rewrite(query: str, evidence: Evidence) -> str:
    """Append one clause per entity, its descriptions joined by "and", in the order given (KB rank)."""
    clauses = []
    for entity, descriptions in evidence.items():
        texts = [t for t in (description_text(d) for d in descriptions) if t]
        if texts:
            clauses.append(f"{entity} which " + " and ".join(connect(t) for t in texts))
    if not clauses:
        return query
    return ", ".join([query.rstrip(" .")] + clauses)


class TemplateRewriter:
    """No model: the baseline that shows what descriptions alone add."""

    name = "template"

    def rewrite(self, query: str, evidence: Evidence) -> str:
        return template_rewrite(query, evidence)

    def rewrite_batch(self, items: Sequence[tuple[str, Evidence]]) -> list[str]:
        return [template_rewrite(query, evidence) for query, evidence in items]
