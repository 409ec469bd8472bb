"""The demo's one query: the original and the chosen ranking in one batch, answered as JSON-friendly dicts."""

from __future__ import annotations

from typing import Any

from evdsearch.demo.backend import SearchBackend
from evdsearch.errors import InvalidInput
from evdsearch.search_api import Explanation, Hit, SearchRequest, SearchResponse


def hit_json(hit: Hit, rank: int) -> dict[str, Any]:
    return {"rank": rank, "id": hit.id, "uri": hit.uri, "score": hit.score, "original_score": hit.original_score,
            "rewritten_score": hit.rewritten_score, "captions": list(hit.captions)}


def explanation_json(ex: Explanation | None) -> dict[str, Any]:
    """Entities with spans, descriptions per entity, rewritten query, stage timings (empty when absent)."""
    if ex is None:
        return {"entities": [], "descriptions": {}, "rewritten_query": "", "rewrite_variants": [], "timings_ms": {}}
    return {
        "entities": [{"entity": m.entity, "text": m.text, "start": m.start, "end": m.end} for m in ex.entities],
        "descriptions": {entity: [{"text": d.text, "source": d.source, "score": float(d.score)} for d in found]
                         for entity, found in ex.descriptions.items()},
        "rewritten_query": ex.rewritten_query,
        "rewrite_variants": list(ex.rewrite_variants),
        "timings_ms": {stage: float(ms) for stage, ms in ex.timings_ms.items()},
    }


def _hits_json(resp: SearchResponse) -> list[dict[str, Any]]:
    return [hit_json(hit, rank) for rank, hit in enumerate(resp.hits, 1)]


def _as_int(value: Any) -> Any:
    """Sliders and JSON clients send 8.0 for 8; anything else is left for the engine to refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def build_requests(text: str | None, image_bytes: bytes | None, mode: str, alpha: float | None,
                   k: Any) -> list[SearchRequest]:
    """[original ranking, chosen ranking with explanation] for a text or an image query."""
    text = text.strip() if isinstance(text, str) and text.strip() else None
    if text is None and not image_bytes:
        raise InvalidInput("type a query or upload an image to search with")
    if text is not None and image_bytes:
        raise InvalidInput("give a text query or an image, not both (clear the image to search by text)")
    query = {"text": text} if text is not None else {"image_bytes": bytes(image_bytes)}
    k = _as_int(k)
    return [SearchRequest(**query, k=k, mode="original", alpha=alpha),
            SearchRequest(**query, k=k, mode=mode, alpha=alpha, explain=True)]


def run_query(backend: SearchBackend, text: str | None, image_bytes: bytes | None = None, mode: str = "fused",
              alpha: float | None = None, k: Any = 8) -> dict[str, Any]:
    """What the `search` API endpoint answers; raises UserError for a query the engine refuses."""
    original, chosen = backend.search(build_requests(text, image_bytes, mode, alpha, k))
    return {
        "query": {"text": text.strip() if text and not image_bytes else None, "image": bool(image_bytes),
                  "mode": mode, "alpha": alpha, "k": _as_int(k)},
        "hits": _hits_json(chosen),
        "original_hits": _hits_json(original),
        "explanation": explanation_json(chosen.explanation),
    }
