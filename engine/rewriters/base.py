"""The Rewriter protocol: turn a query plus entity visual descriptions into a rewritten query."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

# entity name -> its descriptions, best first (indexer.kb.Description, or plain strings in training)
Evidence = Mapping[str, Sequence[Any]]


@runtime_checkable
class Rewriter(Protocol):
    """A query rewriter; `name` is what `Info` reports (none, template, or a model folder)."""

    name: str

    def rewrite(self, query: str, evidence: Evidence) -> str:
        """The rewritten query; `evidence` is never empty when the engine calls it."""
        ...

    def rewrite_batch(self, items: Sequence[tuple[str, Evidence]]) -> list[str]:
        """`rewrite` for many (query, evidence) pairs; models batch them."""
        ...


def description_text(description: Any) -> str:
    """The text of a Description (or of a plain string), on one line, without a trailing full stop."""
    text = description if isinstance(description, str) else description.text
    return " ".join(str(text).split()).rstrip(" .")
