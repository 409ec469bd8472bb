"""The Gradio Blocks page: query or image, mode/alpha/k, original vs chosen ranking side by side, the explanation."""

from __future__ import annotations

import os

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no telemetry or version check: the demo runs offline

from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import gradio as gr  # noqa: E402

from evdsearch.demo import render  # noqa: E402
from evdsearch.demo.backend import SearchBackend  # noqa: E402
from evdsearch.demo.examples import example_queries  # noqa: E402
from evdsearch.demo.handlers import DESCRIPTION_HEADERS, make_search, show  # noqa: E402
from evdsearch.search_api import MODES, EngineInfo  # noqa: E402

TITLE = "evdsearch: text-to-image search with entity visual descriptions"
# Hit captions (rank, three scores, stored caption) go below each thumbnail instead of over it, and the
# galleries take the height their rows need instead of a fixed 450 px.
CSS = """
.evd-gallery .grid-wrap { min-height: 160px; max-height: 75vh; }
.evd-gallery .thumbnail-item { aspect-ratio: auto; display: flex; flex-direction: column; }
.evd-gallery .thumbnail-item > img { aspect-ratio: 1; height: auto; }
.evd-gallery .caption-label { position: static; max-width: 100%; white-space: pre-line; opacity: 1;
  border: none; border-radius: 0; font-size: 11px; line-height: 1.3; }
"""


def header_markdown(info: EngineInfo, where: str) -> str:
    model = Path(info.model).name if "/" in info.model else info.model
    kb = f"{info.kb_entities} entities / {info.kb_descriptions} descriptions" if info.kb_entities else "no KB"
    return (f"## {TITLE}\n"
            f"Engine: **{where}** · CLIP `{model}` (dim {info.dim}) · **{info.index_size} images** · "
            f"knowledge base: {kb} · rewriter `{info.rewriter}` · {info.device}. "
            f"The left column ranks by the query as typed; the right one by the chosen mode "
            f"(fused = (1-alpha)·original + alpha·rewritten).")


def _controls(info: EngineInfo, k: int) -> tuple[Any, ...]:
    with gr.Row(equal_height=True):
        query = gr.Textbox(label="Query", placeholder="a tomato next to a school bus", scale=6,
                           autofocus=True, elem_id="query")
        button = gr.Button("Search", variant="primary", scale=1, elem_id="search-button")
    with gr.Row():
        image = gr.Image(label="...or search with an image", type="filepath", format="png",
                         sources=["upload", "clipboard"], height=160, scale=1, elem_id="query-image")
        with gr.Column(scale=3):
            mode = gr.Radio(list(MODES), value="fused", label="Ranking on the right")
            alpha = gr.Slider(0.0, 1.0, value=info.default_alpha, step=0.05,
                              label="alpha: weight of the rewritten query (fused mode)")
            hits = gr.Slider(1, 48, value=k, step=1, label="hits (k)")
    return query, button, image, mode, alpha, hits


def _results() -> tuple[Any, ...]:
    with gr.Row(equal_height=False):
        original = gr.Gallery(label="Original query (no rewriting)", columns=4, height="auto",
                              object_fit="contain", elem_id="original-gallery",
                              elem_classes=["evd-gallery"])
        ranked = gr.Gallery(label=render.ranking_label("fused", None), columns=4, height="auto",
                            object_fit="contain", elem_id="ranked-gallery",
                            elem_classes=["evd-gallery"])
    with gr.Row():
        with gr.Column():
            entities = gr.HighlightedText(label="Entities found in the query", show_legend=False,
                                          elem_id="entities")
            rewritten = gr.Textbox(label="Rewritten query", interactive=False, lines=3, elem_id="rewritten")
            summary = gr.Markdown(elem_id="summary")
        descriptions = gr.Dataframe(headers=DESCRIPTION_HEADERS, label="Descriptions used by the rewriter",
                                    interactive=False, wrap=True, elem_id="descriptions")
    return original, ranked, entities, rewritten, descriptions, summary


def build_app(backend: SearchBackend, k: int = 8) -> gr.Blocks:
    """The page over `backend`; `search` (api_name) answers JSON for gradio_client."""
    info = backend.info()
    with gr.Blocks(title="evdsearch demo", analytics_enabled=False) as app:
        gr.Markdown(header_markdown(info, backend.where))
        query, button, image, mode, alpha, hits = _controls(info, k)
        gr.Examples(example_queries(backend.entities()), inputs=query, label="Example queries")
        shown = _results()
        with gr.Accordion("Raw answer of the `search` API endpoint", open=False):
            raw = gr.JSON(label="answer", elem_id="raw")
        gr.on([button.click, query.submit], make_search(backend), inputs=[query, image, mode, alpha, hits],
              outputs=raw, api_name="search").success(show, inputs=raw, outputs=list(shown),
                                                      api_visibility="private")
    return app


def launch(app: gr.Blocks, host: str = "127.0.0.1", port: int = 7860, block: bool = True,
           auth: tuple[str, str] | None = None) -> str:
    """Serve on host:port (no share link, no SSR node server, no MCP); `auth`: Gradio's login (user, password).
    Returns the local URL."""
    app.queue(default_concurrency_limit=4)
    _, url, _ = app.launch(server_name=host, server_port=port, share=False, prevent_thread_lock=True, auth=auth,
                           quiet=True, ssr_mode=False, mcp_server=False, pwa=False, show_error=False,
                           css=CSS)
    if block:
        app.block_thread()
    return url
