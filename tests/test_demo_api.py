"""The demo's `search` API endpoint through gradio_client, against the app served in-process on loopback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from test_demo_support import QUERY, launch_app

gradio_client = pytest.importorskip("gradio_client")
from gradio_client.exceptions import AppError  # noqa: E402

from evdsearch.demo.grpc_backend import GrpcBackend  # noqa: E402
from evdsearch.engine.grpc_server.server import build_server  # noqa: E402

# gradio's queue uses pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = [pytest.mark.filterwarnings("ignore:'future.no_silent_downcasting' is deprecated"),
              pytest.mark.filterwarnings("ignore:The copy keyword is deprecated")]


@pytest.fixture(scope="module")
def client(local: Any) -> gradio_client.Client:
    app, url = launch_app(local)
    yield gradio_client.Client(url, verbose=False)
    app.close()


def search(client: gradio_client.Client, query: str | None = "", image: Any = None, mode: str = "fused",
           alpha: float | None = 0.5, k: int = 8, **options: Any) -> dict[str, Any]:
    """`alpha` None: the page's default, the server's calibrated weight; a number overrides it."""
    source = "calibrated" if alpha is None else "override"
    return client.predict(query=query, image=image, mode=mode, alpha=0.5 if alpha is None else alpha, k=k,
                          alpha_source=source, api_name="/search", **options)


def test_the_search_endpoint_is_the_one_named_api(client: gradio_client.Client) -> None:
    api = client.view_api(print_info=False, return_format="dict")
    assert list(api["named_endpoints"]) == ["/search"]
    names = [p["parameter_name"] for p in api["named_endpoints"]["/search"]["parameters"]]
    assert names == ["query", "image", "mode", "alpha", "k", "alpha_source", "terms", "filter", "min_score",
                     "min_relative", "page", "diversity", "like_id"]


def test_text_search_returns_json_hits_and_explanation(client: gradio_client.Client) -> None:
    result = search(client, QUERY, k=5)
    assert result["query"]["text"] == QUERY and len(result["hits"]) == len(result["original_hits"]) == 5
    hit = result["hits"][0]
    assert set(hit) == {"rank", "id", "uri", "score", "original_score", "rewritten_score", "captions", "metadata"}
    assert hit["score"] == pytest.approx(0.5 * hit["original_score"] + 0.5 * hit["rewritten_score"], abs=1e-5)
    assert [m["entity"] for m in result["explanation"]["entities"]] == ["tomato", "school bus"]
    assert result["explanation"]["rewritten_query"].startswith(QUERY + ",")


def test_modes_and_alpha_reach_the_engine(client: gradio_client.Client) -> None:
    rewritten = search(client, QUERY, mode="rewritten", alpha=0.0, k=3)["hits"]
    assert [h["score"] for h in rewritten] == pytest.approx([h["rewritten_score"] for h in rewritten], abs=1e-6)
    fused = search(client, QUERY, alpha=0.25, k=3)["hits"]
    assert fused[0]["score"] == pytest.approx(0.75 * fused[0]["original_score"] + 0.25 * fused[0]["rewritten_score"],
                                              abs=1e-5)


def test_the_page_uses_the_servers_weight_until_overridden(client: gradio_client.Client, local: Any) -> None:
    served = search(client, QUERY, alpha=None, k=3)
    expected = local.engine.alpha_policy.resolve(None, ["tomato", "school bus"])
    assert served["query"]["alpha"] is None and served["explanation"]["alpha"] == pytest.approx(expected)
    assert search(client, QUERY, alpha=0.2, k=3)["explanation"]["alpha"] == pytest.approx(0.2)


def test_options_reach_the_engine(client: gradio_client.Client) -> None:
    top = [h["id"] for h in search(client, QUERY, alpha=None, k=6)["hits"]]
    second = search(client, QUERY, alpha=None, k=3, page=2)
    assert [h["id"] for h in second["hits"]] == top[3:] and second["query"]["page"] == 2
    weighted = search(client, QUERY, alpha=None, k=3, terms="red: -0.5", min_relative=0.0, diversity=0.0)
    assert [t["weight"] for t in weighted["explanation"]["terms"]] == [1.0, -0.5]
    liked = search(client, "", alpha=None, k=3, like_id=2)
    assert 2 not in [h["id"] for h in liked["hits"]] and len(liked["hits"]) == 3
    with pytest.raises(AppError, match="unknown field 'colour'"):
        search(client, QUERY, filter="colour == 1")


def test_image_upload_query(client: gradio_client.Client, parts: tuple[Path, Path]) -> None:
    image = parts[0].parent / "data" / "images" / "003.png"
    result = search(client, "", gradio_client.handle_file(str(image)), k=3)
    assert result["query"]["image"] and len(result["hits"]) == 3
    assert result["explanation"]["rewritten_query"] == ""


@pytest.mark.parametrize(("query", "k", "message"), [
    ("", 8, "type a query or upload an image"),
    ("x" * 1001, 8, "limit is 1000"),
    ("a tomato", 0, "less than minimum value 1"),  # gradio's own slider check, also a message
])
def test_bad_input_is_answered_with_an_error_message(client: gradio_client.Client, query: str, k: int,
                                                     message: str) -> None:
    with pytest.raises(AppError, match=message) as info:
        search(client, query, k=k)
    assert "Traceback" not in str(info.value)


def test_app_over_grpc_reports_server_errors(local: Any) -> None:
    running = build_server(local.engine, port=0)
    running.start()
    backend = GrpcBackend(running.address, timeout_s=5)
    app, url = launch_app(backend)
    try:
        client = gradio_client.Client(url, verbose=False)
        assert len(search(client, QUERY, k=2)["hits"]) == 2
        with pytest.raises(AppError, match="the server refused the request: query text is 1001 characters"):
            search(client, "x" * 1001)
        running.stop(0)
        with pytest.raises(AppError, match=f"cannot reach a server at {running.address}"):
            search(client, QUERY)
    finally:
        app.close()
        backend.close()
        running.stop(0)


def test_hits_whose_images_live_elsewhere_show_placeholders_and_a_warning() -> None:
    from evdsearch.demo.handlers import show

    hit = {"rank": 1, "id": 0, "uri": "/on/the/server/0.png", "score": 0.5, "original_score": 0.4,
           "rewritten_score": 0.6, "captions": ["a red disc"]}
    result = {"query": {"text": "a tomato", "image": False, "mode": "fused", "alpha": 0.5, "k": 1},
              "hits": [hit], "original_hits": [dict(hit, score=0.4)],
              "explanation": {"entities": [], "descriptions": {}, "rewritten_query": "a tomato", "timings_ms": {}}}
    with pytest.warns(UserWarning, match="1 of 1 hit images are not readable on this machine"):
        original, ranked, spans, rewritten, table, summary = show(result)
    assert ranked.value[0]["caption"].startswith("#1 fused 0.500 (orig #1)")
    assert spans == [("a tomato", None)] and rewritten == "a tomato" and table["data"] == []
    assert "No knowledge-base entity found" in summary


class _BrokenBackend:
    """Answers info like the real one; search fails like a bug would."""

    where = "broken"

    def __init__(self, real: Any) -> None:
        self.real = real

    def info(self) -> Any:
        return self.real.info()

    def entities(self) -> list[str] | None:
        return None

    def search(self, requests: Any) -> Any:
        raise RuntimeError("boom: secret internal detail")

    def close(self) -> None:
        pass


def test_a_bug_shows_a_short_message_without_internals(local: Any) -> None:
    app, url = launch_app(_BrokenBackend(local))
    try:
        with pytest.raises(AppError, match=r"internal error \(RuntimeError\); see the demo's log") as info:
            search(gradio_client.Client(url, verbose=False), QUERY)
        assert "secret" not in str(info.value)
    finally:
        app.close()
