"""The demo's backend seam: what the page needs from a search server (answered over gRPC by GrpcBackend)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from evdsearch.search_api import EngineInfo, SearchRequest, SearchResponse


class SearchBackend(Protocol):
    """What the demo needs from an engine; errors a user can cause are raised as UserError."""

    where: str  # shown in the page header: "local serve" or the server address

    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResponse]:
        """Answers in request order (one BatchSearch RPC)."""
        ...

    def info(self) -> EngineInfo:
        """The loaded model, index, knowledge base and rewriter."""
        ...

    def entities(self) -> list[str] | None:
        """Knowledge-base entity names, or None when the backend cannot list them."""
        ...

    def close(self) -> None:
        ...
