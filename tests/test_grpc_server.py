"""The gRPC server through a real loopback channel: health, reflection, every RPC, errors, deadlines, drain."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc
from test_engine_support import png_bytes

from evdsearch.engine.grpc_server.server import SERVICE_NAME, RunningServer, build_server
from evdsearch.engine.rewriters.template import TemplateRewriter
from evdsearch.engine.rewriting import QueryRewriter
from evdsearch.engine.search import SearchEngine
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

QUERY = "two tomatoes next to a school bus"


def _serve(engine: object) -> RunningServer:
    running = build_server(engine, port=0, max_workers=4, max_message_bytes=1 << 20)
    running.start()
    return running


@pytest.fixture(scope="module")
def server(engine: SearchEngine) -> RunningServer:
    running = _serve(engine)
    yield running
    running.stop(0)


@pytest.fixture(scope="module")
def channel(server: RunningServer) -> grpc.Channel:
    with grpc.insecure_channel(server.address) as ch:
        yield ch


@pytest.fixture(scope="module")
def stub(channel: grpc.Channel) -> search_pb2_grpc.SearchServiceStub:
    return search_pb2_grpc.SearchServiceStub(channel)


def test_health_reports_serving(channel: grpc.Channel) -> None:
    health = health_pb2_grpc.HealthStub(channel)
    for service in ("", SERVICE_NAME):
        answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
        assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_reflection_lists_services(channel: grpc.Channel) -> None:
    stub = reflection_pb2_grpc.ServerReflectionStub(channel)
    answers = list(stub.ServerReflectionInfo(iter([reflection_pb2.ServerReflectionRequest(list_services="")]),
                                             timeout=5))
    names = {s.name for s in answers[0].list_services_response.service}
    assert {"evdsearch.v1.SearchService", "grpc.health.v1.Health",
            "grpc.reflection.v1alpha.ServerReflection"} <= names


def test_search_with_explain(stub: search_pb2_grpc.SearchServiceStub) -> None:
    resp = stub.Search(pb.SearchRequest(text=QUERY, k=3, explain=True), timeout=10)
    assert len(resp.hits) == 3
    scores = [h.score for h in resp.hits]
    assert scores == sorted(scores, reverse=True)
    hit = resp.hits[0]
    assert hit.uri.endswith(".png") and hit.captions
    assert hit.score == pytest.approx(0.5 * hit.original_score + 0.5 * hit.rewritten_score, abs=1e-5)
    ex = resp.explanation
    assert [(e.name, e.text, e.start, e.end) for e in ex.entities] == [("tomato", "tomatoes", 4, 12),
                                                                        ("school bus", "school bus", 23, 33)]
    assert ex.descriptions[0].entity == "tomato"
    assert [(d.text, d.source) for d in ex.descriptions[0].descriptions][0] == ("a red round fruit", "encyclopedia")
    assert ex.rewritten_query.startswith(QUERY + ", tomato which is")
    assert set(ex.timings_ms) == {"rewrite", "encode", "search", "hydrate"}


def test_search_defaults_and_modes(stub: search_pb2_grpc.SearchServiceStub) -> None:
    resp = stub.Search(pb.SearchRequest(text=QUERY), timeout=10)
    assert len(resp.hits) == 10 and not resp.HasField("explanation")
    original = stub.Search(pb.SearchRequest(text=QUERY, k=4, mode=pb.MODE_ORIGINAL), timeout=10)
    assert [h.score for h in original.hits] == pytest.approx([h.original_score for h in original.hits], abs=1e-6)
    rewritten = stub.Search(pb.SearchRequest(text=QUERY, k=4, mode=pb.MODE_REWRITTEN, alpha=0.0), timeout=10)
    assert [h.score for h in rewritten.hits] == pytest.approx([h.rewritten_score for h in rewritten.hits], abs=1e-6)


def test_batch_search(stub: search_pb2_grpc.SearchServiceStub, engine: SearchEngine) -> None:
    row = [float(x) for x in engine.store.embeddings[7]]
    resp = stub.BatchSearch(pb.BatchSearchRequest(requests=[
        pb.SearchRequest(text=QUERY, k=2), pb.SearchRequest(image=png_bytes("green"), k=3),
        pb.SearchRequest(embedding=row, k=1)]), timeout=10)
    assert [len(r.hits) for r in resp.responses] == [2, 3, 1]
    assert resp.responses[2].hits[0].id == 7


def test_rewrite(stub: search_pb2_grpc.SearchServiceStub) -> None:
    resp = stub.Rewrite(pb.RewriteRequest(text="a red panda"), timeout=10)
    assert resp.query == "a red panda" and resp.rewriter == "template"
    assert resp.rewritten == "a red panda, red panda which is a small red-brown mammal"
    assert [e.name for e in resp.entities] == ["red panda"]


def test_info(stub: search_pb2_grpc.SearchServiceStub, tiny_clip_dir: Path) -> None:
    info = stub.Info(pb.InfoRequest(), timeout=10)
    assert info.model == tiny_clip_dir.resolve().name and info.dim == 128 and info.index_size == 12  # no paths
    assert (info.kb_entities, info.kb_descriptions, info.rewriter) == (4, 8, "template")
    assert info.default_alpha == 0.5 and info.version


BAD = {
    "empty text": (pb.SearchRequest(text=""), "empty"),
    "whitespace text": (pb.SearchRequest(text="   "), "empty"),
    "text too long": (pb.SearchRequest(text="x" * 1001), "limit is 1000"),
    "k zero": (pb.SearchRequest(text="a", k=0), "k must be"),
    "k negative": (pb.SearchRequest(text="a", k=-5), "k must be"),
    "k too big": (pb.SearchRequest(text="a", k=1001), "k must be"),
    "alpha negative": (pb.SearchRequest(text="a", alpha=-0.5), "alpha must be"),
    "alpha above one": (pb.SearchRequest(text="a", alpha=2.0), "alpha must be"),
    "alpha nan": (pb.SearchRequest(text="a", alpha=float("nan")), "alpha must be"),
    "unknown mode": (pb.SearchRequest(text="a", mode=7), "unknown mode"),
    "undecodable image": (pb.SearchRequest(image=b"\x89PNG garbage"), "could not be decoded"),
    "wrong embedding dimension": (pb.SearchRequest(embedding=[0.5] * 3), "dimension 128"),
    "non-finite embedding": (pb.SearchRequest(embedding=[float("inf")] * 128), "NaN or infinite"),
    "text and image": (pb.SearchRequest(text="a", image=png_bytes()), "exactly one"),
    "image and embedding": (pb.SearchRequest(image=png_bytes(), embedding=[0.1] * 128), "exactly one"),
    "none of them": (pb.SearchRequest(k=3), "exactly one"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_input_is_invalid_argument(stub: search_pb2_grpc.SearchServiceStub, name: str) -> None:
    req, message = BAD[name]
    with pytest.raises(grpc.RpcError) as info:
        stub.Search(req, timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in info.value.details()


def test_bad_input_in_batch_and_rewrite(stub: search_pb2_grpc.SearchServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchSearch(pb.BatchSearchRequest(requests=[pb.SearchRequest(text="a"), pb.SearchRequest(text="")]),
                         timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "request 1" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.BatchSearch(pb.BatchSearchRequest(requests=[pb.SearchRequest(text="a")] * 257), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT and "at most 256" in info.value.details()
    with pytest.raises(grpc.RpcError) as info:
        stub.Rewrite(pb.RewriteRequest(text=""), timeout=10)
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_oversized_message_is_refused(stub: search_pb2_grpc.SearchServiceStub) -> None:
    with pytest.raises(grpc.RpcError) as info:
        stub.Search(pb.SearchRequest(image=b"\0" * (2 << 20)), timeout=10)  # limit is 1 MiB here
    assert info.value.code() == grpc.StatusCode.RESOURCE_EXHAUSTED


class _SlowRewriter(TemplateRewriter):
    def rewrite_batch(self, items):  # noqa: ANN001, ANN201
        time.sleep(0.6)
        return super().rewrite_batch(items)


class _CountingClip:
    """Delegates to the real CLIP, counting text encodes."""

    def __init__(self, clip: object) -> None:
        self._clip, self.text_calls = clip, 0

    def encode_texts(self, texts: list[str]):  # noqa: ANN201
        self.text_calls += 1
        return self._clip.encode_texts(texts)

    def __getattr__(self, name: str) -> object:
        return getattr(self._clip, name)


@pytest.fixture()
def slow_server(engine: SearchEngine) -> tuple[RunningServer, _CountingClip]:
    clip = _CountingClip(engine.clip)
    slow = SearchEngine(engine.store, clip, QueryRewriter(engine.kb, _SlowRewriter(), cache_size=0),
                        engine.config, kb=engine.kb)
    running = _serve(slow)
    yield running, clip
    running.stop(0)


def test_deadline_exceeded_stops_the_work(slow_server: tuple[RunningServer, _CountingClip]) -> None:
    running, clip = slow_server
    with grpc.insecure_channel(running.address) as ch:
        stub = search_pb2_grpc.SearchServiceStub(ch)
        with pytest.raises(grpc.RpcError) as info:
            stub.Search(pb.SearchRequest(text=QUERY), timeout=0.2)
        assert info.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        time.sleep(0.8)  # the server finishes rewriting, sees the deadline has passed, and stops
        assert clip.text_calls == 0
        assert len(stub.Search(pb.SearchRequest(text=QUERY, k=2), timeout=10).hits) == 2  # still serving


def test_graceful_stop_drains_in_flight_calls(slow_server: tuple[RunningServer, _CountingClip]) -> None:
    running, _ = slow_server
    results: list[object] = []
    with grpc.insecure_channel(running.address) as ch:
        stub = search_pb2_grpc.SearchServiceStub(ch)
        worker = threading.Thread(target=lambda: results.append(stub.Search(pb.SearchRequest(text=QUERY, k=1),
                                                                            timeout=10)))
        worker.start()
        time.sleep(0.2)  # the call is in the slow rewriter now
        running.stop(grace_s=5)
        worker.join(10)
    assert len(results) == 1 and len(results[0].hits) == 1


class _BrokenEngine:
    """Raises what a bug would raise."""

    rewriter_name = "broken"

    def search(self, req, deadline=None):  # noqa: ANN001, ANN201
        raise RuntimeError("boom: secret internal detail")

    def info(self):  # noqa: ANN201
        from evdsearch.errors import NotFound

        raise NotFound("no such thing")

    def rewrite(self, text):  # noqa: ANN001, ANN201
        from evdsearch.errors import IncompatibleArtifact

        raise IncompatibleArtifact("the KB format is too new")


@pytest.mark.internal_expected  # an unexpected engine error must read INTERNAL without its details
def test_errors_map_to_status_codes_without_crashing() -> None:
    running = _serve(_BrokenEngine())
    try:
        with grpc.insecure_channel(running.address) as ch:
            stub = search_pb2_grpc.SearchServiceStub(ch)
            for call, request, code, text in (
                (stub.Search, pb.SearchRequest(text="a"), grpc.StatusCode.INTERNAL, "internal error (RuntimeError)"),
                (stub.Info, pb.InfoRequest(), grpc.StatusCode.NOT_FOUND, "no such thing"),
                (stub.Rewrite, pb.RewriteRequest(text="a"), grpc.StatusCode.FAILED_PRECONDITION, "too new"),
                (stub.Search, pb.SearchRequest(text="a"), grpc.StatusCode.INTERNAL, "see the server log"),
            ):
                with pytest.raises(grpc.RpcError) as info:
                    call(request, timeout=5)
                assert info.value.code() == code and text in info.value.details()
                assert "secret" not in info.value.details()
    finally:
        running.stop(0)


def test_busy_port_is_a_clear_error(server: RunningServer, engine: SearchEngine) -> None:
    from evdsearch.errors import UserError

    with pytest.raises(UserError, match=f"cannot listen on 127.0.0.1:{server.port}"):
        build_server(engine, port=server.port)
