"""The demo's one query: the original and the chosen ranking in one batch, answered as JSON-friendly dicts."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from evdsearch.demo.backend import SearchBackend
from evdsearch.errors import InvalidInput
from evdsearch.search_api import Explanation, Hit, SearchRequest, SearchResponse, WeightedText


@dataclass
class PageOptions:
    """The page's search options beyond query, mode, alpha and k (the defaults change nothing)."""

    terms: str = ""  # more weighted texts, one `text: weight` a line, added to the query (weight 1)
    filter: str = ""  # metadata filter expression ("" none)
    min_score: float | None = None  # keep hits scoring at least this
    min_relative: float | None = None  # keep hits within this fraction of the best one
    page: int = 1  # 1-based page of k hits
    diversity: float = 0.0  # MMR trade-off
    like_id: int | None = None  # "more like this" image id instead of a query


def _metadata_json(value: Any) -> Any:
    return value.isoformat().replace("+00:00", "Z") if isinstance(value, datetime) else value


def hit_json(hit: Hit, rank: int) -> dict[str, Any]:
    return {"rank": rank, "id": hit.id, "uri": hit.uri, "score": hit.score, "original_score": hit.original_score,
            "rewritten_score": hit.rewritten_score, "captions": list(hit.captions),
            "metadata": {k: _metadata_json(v) for k, v in hit.metadata.items()}}


def parse_terms(text: str | None) -> list[WeightedText]:
    """`text: weight` lines (or `;`-separated) -> WeightedText list; a line without a weight counts 1."""
    out = []
    for line in (text or "").replace(";", "\n").splitlines():
        if not line.strip():
            continue
        words, sep, weight = line.rpartition(":")
        if not sep:
            words, weight = line, "1"
        try:
            out.append(WeightedText(words.strip(), float(weight)))
        except ValueError:
            raise InvalidInput(f"weighted term {line.strip()!r}: write `text: weight`, e.g. `red: -0.5`") from None
    return out


def explanation_json(ex: Explanation | None) -> dict[str, Any]:
    """Entities with spans, descriptions per entity, rewritten query, stage timings (empty when absent)."""
    if ex is None:
        return {"entities": [], "descriptions": {}, "rewritten_query": "", "rewrite_variants": [], "timings_ms": {},
                "alpha": None, "terms": [], "filter": "", "filter_matches": None, "search_plan": ""}
    return {
        "entities": [{"entity": m.entity, "text": m.text, "start": m.start, "end": m.end} for m in ex.entities],
        "descriptions": {entity: [{"text": d.text, "source": d.source, "score": float(d.score)} for d in found]
                         for entity, found in ex.descriptions.items()},
        "rewritten_query": ex.rewritten_query,
        "rewrite_variants": list(ex.rewrite_variants),
        "timings_ms": {stage: float(ms) for stage, ms in ex.timings_ms.items()},
        "alpha": ex.alpha,  # the weight the server used (the request's, else calibrated, else its default)
        "terms": [{"text": t.text, "weight": t.weight, "alpha": t.alpha, "rewritten_query": t.rewritten_query}
                  for t in ex.terms],
        "filter": ex.filter, "filter_matches": ex.filter_matches, "search_plan": ex.search_plan,
    }


def _hits_json(resp: SearchResponse) -> list[dict[str, Any]]:
    return [hit_json(hit, rank) for rank, hit in enumerate(resp.hits, 1)]


def _as_int(value: Any) -> Any:
    """Sliders and JSON clients send 8.0 for 8; anything else is left for the engine to refuse."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


def _optional_number(value: Any) -> Any:
    """Empty number boxes arrive as None (or "" from JSON clients): no value."""
    return None if value is None or value == "" else value


def build_requests(text: str | None, image_bytes: bytes | None, mode: str, alpha: float | None,
                   k: Any, options: PageOptions | None = None) -> list[SearchRequest]:
    """[original ranking, chosen ranking with explanation] for a text, weighted, image or more-like-this query."""
    options = options or PageOptions()
    text = text.strip() if isinstance(text, str) and text.strip() else None
    like = _as_int(_optional_number(options.like_id))
    given = [name for name, value in (("a query", text), ("an image", image_bytes), ("an image id", like))
             if value is not None and value != b""]
    if not given:
        raise InvalidInput("type a query or upload an image to search with")
    if len(given) > 1:
        raise InvalidInput(f"give {' or '.join(given)}, not both (clear one to search by the other)")
    extra = parse_terms(options.terms)
    if extra and text is None:
        raise InvalidInput("weighted terms are added to a text query: type one too")
    query: dict[str, Any] = ({"terms": [WeightedText(text, 1.0), *extra]} if extra else {"text": text}) \
        if text is not None else {"image_bytes": bytes(image_bytes)} if image_bytes else {"like_id": like}
    k = _as_int(k)
    page = _as_int(options.page) if options.page not in (None, "") else 1
    if not isinstance(page, int) or page < 1:
        raise InvalidInput(f"page must be 1 or more, got {options.page!r}")
    common = {"k": k, "alpha": alpha, "filter": options.filter.strip() or None if options.filter else None,
              "min_score": _optional_number(options.min_score), "min_relative": _optional_number(options.min_relative),
              "offset": (page - 1) * k if isinstance(k, int) else 0, "diversity": options.diversity or 0.0,
              "with_metadata": True}
    return [SearchRequest(**query, mode="original", **common),
            SearchRequest(**query, mode=mode, explain=True, **common)]


def run_query(backend: SearchBackend, text: str | None, image_bytes: bytes | None = None, mode: str = "fused",
              alpha: float | None = None, k: Any = 8, options: PageOptions | None = None) -> dict[str, Any]:
    """What the `search` API endpoint answers; raises UserError for a query the engine refuses.
    `alpha` None: the server decides (the calibrated per-entity weight, else its default)."""
    options = options or PageOptions()
    original, chosen = backend.search(build_requests(text, image_bytes, mode, alpha, k, options))
    return {
        "query": {"text": text.strip() if text and not image_bytes else None, "image": bool(image_bytes),
                  "mode": mode, "alpha": alpha, "k": _as_int(k), "page": _as_int(options.page or 1),
                  "like_id": _as_int(_optional_number(options.like_id)), "filter": options.filter or "",
                  "terms": options.terms or ""},
        "hits": _hits_json(chosen),
        "original_hits": _hits_json(original),
        "explanation": explanation_json(chosen.explanation),
    }
