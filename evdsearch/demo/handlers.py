"""The page's two steps: `search` (the API endpoint: query -> JSON, errors as gr.Error) and `show` (JSON -> widgets)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gradio as gr

from evdsearch.demo import render
from evdsearch.demo.backend import SearchBackend
from evdsearch.demo.results import PageOptions, run_query
from evdsearch.errors import UserError

_log = logging.getLogger(__name__)
DESCRIPTION_HEADERS = ["entity", "description", "source", "score"]


def make_search(backend: SearchBackend) -> Callable[..., dict[str, Any]]:
    """The `search` endpoint: the original and the chosen ranking, entities, descriptions, rewrite, timings."""

    def search(query: str | None, image: str | None, mode: str, alpha: float, k: float,
               alpha_source: str = "calibrated", terms: str = "", filter: str = "", min_score: float | None = None,
               min_relative: float | None = None, page: float = 1, diversity: float = 0.0,
               like_id: float | None = None) -> dict[str, Any]:
        """Search the index with a text query, an image (a file path) or an image id; answers JSON-friendly hits.

        Args:
            query: text query, e.g. "a tomato next to a school bus" (leave empty for an image query)
            image: an image to search with instead of text
            mode: how the right-hand ranking is scored: fused, rewritten or original
            alpha: weight of the rewritten query in [0, 1] (fused mode), used when alpha_source is "override"
            k: number of hits per page, 1..1000
            alpha_source: "calibrated" (the server's per-entity weight) or "override" (use alpha)
            terms: more weighted texts added to the query, one `text: weight` a line (negative pushes away)
            filter: metadata filter, e.g. `split == "test" and mtime >= "2024-01-01"`
            min_score: keep hits scoring at least this (empty: no threshold)
            min_relative: keep hits scoring at least this fraction of the best hit (empty: none)
            page: page number, 1 first
            diversity: MMR re-ranking, 0 (plain) to 1
            like_id: search with this indexed image instead of a query (more like this)
        """
        try:
            image_bytes = Path(image).read_bytes() if image else None
            options = PageOptions(terms=terms or "", filter=filter or "", min_score=min_score,
                                  min_relative=min_relative, page=page, diversity=diversity, like_id=like_id)
            chosen = alpha if alpha_source == "override" else None
            return run_query(backend, query, image_bytes, mode=mode, alpha=chosen, k=k, options=options)
        except UserError as err:  # the user can fix it: say what is wrong, without a traceback
            raise gr.Error(str(err), title="Search refused", print_exception=False) from None
        except Exception as err:  # noqa: BLE001 - a bug must not show a traceback on the page either
            _log.exception("demo search failed")
            raise gr.Error(f"internal error ({type(err).__name__}); see the demo's log",
                           print_exception=False) from None

    return search


def show(result: dict[str, Any]) -> tuple[Any, ...]:
    """Galleries (original, chosen), entity spans, rewritten query, descriptions table, summary."""
    query, ex = result["query"], result["explanation"]
    uris = {hit["uri"] for hit in result["hits"] + result["original_hits"]}
    missing = sum(not render.image_available(uri) for uri in uris)
    if missing:
        gr.Warning(f"{missing} of {len(uris)} hit images are not readable on this machine (the server has "
                   f"them: start the demo with --image-root DIR, or the server with --expose-paths); "
                   f"showing placeholders")
    return (
        gr.Gallery(value=render.gallery_items(result["original_hits"], "original")),
        gr.Gallery(value=render.gallery_items(result["hits"], query["mode"], result["original_hits"]),
                   label=render.ranking_label(query["mode"], ex.get("alpha"), served=True)),
        render.entity_spans(query["text"], ex["entities"]),
        ex["rewritten_query"] or "(image query: not rewritten)",
        {"headers": DESCRIPTION_HEADERS, "data": render.description_rows(ex)},
        render.summary_markdown(result),
    )
