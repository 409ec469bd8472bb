"""The demo's backend seam: one interface, answered in-process by a SearchEngine or remotely over gRPC."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from evdsearch.engine.api import EngineConfig, EngineInfo, SearchRequest, SearchResponse

if TYPE_CHECKING:
    from evdsearch.engine.search import SearchEngine


class SearchBackend(Protocol):
    """What the demo needs from an engine; errors a user can cause are raised as UserError."""

    where: str  # shown in the page header: "in-process" or the server address

    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResponse]:
        """Answers in request order (one engine batch / one BatchSearch RPC)."""
        ...

    def info(self) -> EngineInfo:
        """The loaded model, index, knowledge base and rewriter."""
        ...

    def entities(self) -> list[str] | None:
        """Knowledge-base entity names, or None when the backend cannot list them."""
        ...

    def close(self) -> None:
        ...


class LocalBackend:
    """Runs the engine in this process (`evdsearch demo --index ... --kb ...`)."""

    where = "in-process"

    def __init__(self, engine: SearchEngine) -> None:
        self.engine = engine

    @classmethod
    def open(cls, config: EngineConfig) -> LocalBackend:
        from evdsearch.engine.search import SearchEngine

        return cls(SearchEngine.open(config))

    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResponse]:
        return self.engine.search_batch(list(requests))

    def info(self) -> EngineInfo:
        return self.engine.info()

    def entities(self) -> list[str] | None:
        return self.engine.kb.entities() if self.engine.kb is not None else []

    def close(self) -> None:
        self.engine.close()
