"""The demo's backend seam and rendering without a web server: JSON answers, errors, gRPC parity, captions, examples."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_demo_support import QUERY
from test_engine_support import png_bytes

from evdsearch.client.search_cli import ServerUnreachable
from evdsearch.demo import render
from evdsearch.demo.examples import SHAPES_EXAMPLES, example_queries
from evdsearch.demo.grpc_backend import GrpcBackend
from evdsearch.demo.results import run_query
from evdsearch.engine.grpc_server.server import RunningServer, build_server
from evdsearch.errors import InvalidInput


@pytest.fixture(scope="module")
def server(local: Any) -> RunningServer:
    running = build_server(local.engine, port=0, expose_paths=True)  # full paths, as the local backend gives
    running.start()
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def remote(server: RunningServer) -> GrpcBackend:
    backend = GrpcBackend(server.address, timeout_s=10)
    yield backend
    backend.close()


def test_text_query_answers_both_rankings_and_the_explanation(local: Any) -> None:
    result = run_query(local, QUERY, mode="fused", alpha=0.5, k=4.0)
    assert result["query"] == {"text": QUERY, "image": False, "mode": "fused", "alpha": 0.5, "k": 4, "page": 1,
                               "like_id": None, "filter": "", "terms": ""}
    hits, original = result["hits"], result["original_hits"]
    assert [h["rank"] for h in hits] == [1, 2, 3, 4] and len(original) == 4
    for hit in hits:
        assert hit["score"] == pytest.approx(0.5 * hit["original_score"] + 0.5 * hit["rewritten_score"], abs=1e-5)
        assert hit["uri"].endswith(".png") and hit["captions"]
    assert [h["score"] for h in original] == pytest.approx([h["original_score"] for h in original], abs=1e-6)
    ex = result["explanation"]
    assert [(m["entity"], m["text"]) for m in ex["entities"]] == [("tomato", "tomatoes"), ("school bus", "school bus")]
    assert ex["descriptions"]["tomato"][0] == {"text": "a red round fruit", "source": "encyclopedia",
                                               "score": pytest.approx(0.9)}
    assert ex["rewritten_query"].startswith(QUERY + ", tomato which is")
    assert set(ex["timings_ms"]) == {"rewrite", "encode", "search", "hydrate"}


def test_image_query_has_nothing_to_rewrite(local: Any) -> None:
    result = run_query(local, "  ", png_bytes("green"), k=3)
    assert result["query"]["image"] and result["query"]["text"] is None
    assert len(result["hits"]) == 3 and result["explanation"]["entities"] == []
    assert [h["id"] for h in result["hits"]] == [h["id"] for h in result["original_hits"]]


@pytest.mark.parametrize(("text", "image", "kwargs", "message"), [
    ("", None, {}, "type a query or upload an image"),
    ("a tomato", b"png", {}, "not both"),
    ("a tomato", None, {"k": 0}, "k must be"),
    ("a tomato", None, {"alpha": 1.5}, "alpha must be"),
    ("a tomato", None, {"mode": "best"}, "unknown mode"),
    ("x" * 1001, None, {}, "limit is 1000"),
    (None, b"not an image", {}, "could not be decoded"),
])
def test_bad_queries_are_invalid_input(local: Any, remote: GrpcBackend, text: str | None, image: bytes | None,
                                       kwargs: dict[str, Any], message: str) -> None:
    for backend in (local, remote):
        with pytest.raises(InvalidInput, match=message):
            run_query(backend, text, image, **kwargs)


def test_grpc_backend_answers_like_the_local_one(local: Any, remote: GrpcBackend) -> None:
    for args in ((QUERY, None), (None, png_bytes("blue"))):
        here, there = (run_query(b, *args, mode="rewritten", alpha=0.3, k=5) for b in (local, remote))
        for result in (here, there):
            result["explanation"].pop("timings_ms")
        assert _rounded(here) == _rounded(there)
    assert remote.info().index_size == local.info().index_size == 12
    assert remote.entities() is None and local.entities() is None  # SearchService lists no KB entities


def _rounded(result: dict[str, Any]) -> dict[str, Any]:
    """Scores cross the wire as float32: compare them to 5 places."""
    def hits(rows: list[dict[str, Any]]) -> list[tuple]:
        return [(h["id"], h["uri"], round(h["score"], 5), round(h["original_score"], 5),
                 round(h["rewritten_score"], 5), h["captions"]) for h in rows]

    ex = result["explanation"]
    descriptions = {e: [(d["text"], d["source"], round(d["score"], 5)) for d in found]
                    for e, found in ex["descriptions"].items()}
    return {"hits": hits(result["hits"]), "original": hits(result["original_hits"]), "entities": ex["entities"],
            "descriptions": descriptions, "rewritten": ex["rewritten_query"], "query": result["query"]}


def test_unreachable_server_is_a_clear_error() -> None:
    from test_demo_support import free_port

    backend = GrpcBackend(f"127.0.0.1:{free_port()}", timeout_s=2)
    with pytest.raises(ServerUnreachable, match="cannot reach a server"):
        backend.info()
    backend.close()


def test_captions_entity_spans_and_tables(local: Any, tmp_path: Path) -> None:
    result = run_query(local, QUERY, k=3)
    items = render.gallery_items(result["hits"], "fused", result["original_hits"])
    first = result["hits"][0]
    assert items[0][1].splitlines()[0].startswith(f"#1 fused {first['score']:.3f}")
    assert items[0][1].splitlines()[2] == first["captions"][0]
    assert items[0][0].size[0] <= render.THUMBNAIL_PX
    assert render.entity_spans(QUERY, result["explanation"]["entities"]) == [
        ("two ", None), ("tomatoes", "tomato"), (" next to a ", None), ("school bus", "school bus")]
    assert render.entity_spans(None, []) == [("image query: nothing to rewrite", None)]
    assert ["tomato", "a red round fruit", "encyclopedia", 0.9] in render.description_rows(result["explanation"])
    summary = render.summary_markdown(result)
    assert "**Entities found:** tomato, school bus." in summary and "**Page 1:** hits 1–3" in summary
    assert "**Fusion weight used (alpha):** 0.50 (calibrated for its entities, else the default)" in summary
    missing = render.thumbnail(str(tmp_path / "gone.png"))
    assert missing.size == (render.THUMBNAIL_PX, render.THUMBNAIL_PX) and not render.image_available("/no/such")


def test_example_queries_follow_the_knowledge_base() -> None:
    shapes = [query for query, _ in SHAPES_EXAMPLES]
    assert example_queries(None) == shapes  # a server cannot list its entities: the shapes-world examples
    assert example_queries(["tomato", "school bus", "panda", "red panda"]) == [
        "a tomato next to a school bus", "a panda next to a red panda", shapes[-1]]
    assert example_queries([]) == [shapes[-1]]  # no KB: only attribute queries make sense
