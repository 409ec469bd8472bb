"""The server called the way other people's clients call it: generated stubs with no deadline on every RPC,
a reflection-only dynamic client (grpc-requests), health checks without a deadline, plaintext and TLS +
token, with and without the cross-request batcher. Each test checks the answer, not only that one came."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool
from grpc_health.v1 import health_pb2, health_pb2_grpc

from evdsearch.client.channel import ClientSecurity, _interceptor_class, bearer_metadata, open_channel
from evdsearch.engine.batcher import BatchConfig, MicroBatcher
from evdsearch.engine.grpc_server.security import TlsFiles, TokenStore
from evdsearch.engine.grpc_server.server import SERVICE_NAME, RunningServer, build_server
from evdsearch.engine.grpc_server.servicer import request_deadline
from evdsearch.engine.search import SearchEngine
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

TOKEN = "compat-token-0123456789"
VALID_QUERIES = ["a red circle", "two tomatoes next to a school bus", "a panda", "A Red Panda!", "é" * 40,
                 "x" * 1000]
INVALID_QUERIES = ["", "   \t\n", "x" * 1001]
SLOW = bool(os.environ.get("EVDSEARCH_SLOW_TESTS"))


@dataclass
class Target:
    """One running server and how a stranger's client reaches it."""

    running: RunningServer
    tls_ca: Path | None  # None: plaintext
    token: str | None

    @property
    def address(self) -> str:
        return f"localhost:{self.running.port}"  # the name the test certificate carries

    def channel(self) -> grpc.Channel:
        return open_channel(self.address, ClientSecurity(tls_ca=self.tls_ca, token=self.token))


@pytest.fixture(scope="module", params=["plaintext", "plaintext+batcher", "tls+token", "tls+token+batcher"])
def target(request: pytest.FixtureRequest, engine: SearchEngine, pki: Path,
           tmp_path_factory: pytest.TempPathFactory) -> Target:
    secure = request.param.startswith("tls")
    batcher = MicroBatcher(engine, BatchConfig(window_ms=2.0)) if request.param.endswith("batcher") else None
    tokens = None
    if secure:
        token_file = tmp_path_factory.mktemp("tokens") / "tokens.txt"
        token_file.write_text(TOKEN + "\n", encoding="utf-8")
        tokens = TokenStore(token_file)
    # no server bound either (max_request_s=None): a call without a deadline has none anywhere
    running = build_server(engine, port=0, max_workers=4, batcher=batcher, tokens=tokens, max_request_s=None,
                           tls=TlsFiles(pki / "server.pem", pki / "server.key") if secure else None)
    running.start()
    yield Target(running, pki / "ca.pem" if secure else None, TOKEN if secure else None)
    running.stop(0)
    if batcher is not None:
        batcher.close()


def _status(call: object, request: object) -> tuple[grpc.StatusCode, str]:
    try:
        call(request)  # no timeout: no deadline reaches the server
    except grpc.RpcError as err:
        return err.code(), err.details() or ""
    return grpc.StatusCode.OK, ""


def test_generated_stubs_without_a_deadline_answer_every_rpc(target: Target) -> None:
    with target.channel() as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        for query in VALID_QUERIES:
            answer = stub.Search(pb.SearchRequest(text=query, k=3))
            assert len(answer.hits) == 3 and len({hit.id for hit in answer.hits}) == 3, query
            assert all(hit.score >= answer.hits[-1].score for hit in answer.hits)
        batch = stub.BatchSearch(pb.BatchSearchRequest(requests=[pb.SearchRequest(text=q, k=2)
                                                                 for q in VALID_QUERIES]))
        assert [len(r.hits) for r in batch.responses] == [2] * len(VALID_QUERIES)
        rewrite = stub.Rewrite(pb.RewriteRequest(text="two tomatoes next to a school bus"))
        assert {e.name for e in rewrite.entities} >= {"tomato", "school bus"}
        assert rewrite.rewritten != rewrite.query
        info = stub.Info(pb.InfoRequest())
        assert info.index_size == 12 and info.dim == 128
        reloaded = search_pb2_grpc.AdminServiceStub(channel).Reload(pb.ReloadRequest())
        assert reloaded.generation >= 2 and reloaded.index_size == 12
        assert len(stub.Search(pb.SearchRequest(text="a red circle", k=5)).hits) == 5  # the new generation


def test_invalid_queries_without_a_deadline_are_invalid_argument(target: Target) -> None:
    with target.channel() as channel:
        stub = search_pb2_grpc.SearchServiceStub(channel)
        for query in INVALID_QUERIES:
            code, details = _status(stub.Search, pb.SearchRequest(text=query, k=3))
            assert code == grpc.StatusCode.INVALID_ARGUMENT and details, (query[:20], code, details)
        code, _ = _status(stub.Rewrite, pb.RewriteRequest(text=""))
        assert code == grpc.StatusCode.INVALID_ARGUMENT


def test_health_check_without_a_deadline(target: Target) -> None:
    with target.channel() as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", SERVICE_NAME):
            assert health.Check(health_pb2.HealthCheckRequest(service=service)).status == \
                health_pb2.HealthCheckResponse.SERVING


def _reflection_client(target: Target):  # noqa: ANN202
    """grpc-requests as its README shows it, with a fresh descriptor pool: it knows the API only from
    server reflection, never from our generated modules."""
    from grpc_requests import Client

    kwargs: dict[str, object] = {"descriptor_pool": descriptor_pool.DescriptorPool()}
    if target.tls_ca is not None:
        kwargs.update(ssl=True, credentials={"root_certificates": target.tls_ca.read_bytes()},
                      interceptors=[_interceptor_class()(bearer_metadata(target.token))])
    return Client(target.address, **kwargs)


def test_reflection_only_client_searches_and_gets_invalid_argument(target: Target) -> None:
    client = _reflection_client(target)
    assert "evdsearch.v1.SearchService" in client.service_names
    for query in VALID_QUERIES:
        answer = client.request("evdsearch.v1.SearchService", "Search", {"text": query, "k": 3})
        assert len(answer["hits"]) == 3, query
        assert all({"score", "uri"} <= set(hit) for hit in answer["hits"])
    info = client.request("evdsearch.v1.SearchService", "Info", {})
    assert int(info["index_size"]) == 12  # grpc-requests keeps the proto field names
    rewrite = client.request("evdsearch.v1.SearchService", "Rewrite", {"text": "a tomato"})
    assert rewrite["entities"][0]["name"] == "tomato"
    for query in INVALID_QUERIES:
        with pytest.raises(grpc.RpcError) as err:
            client.request("evdsearch.v1.SearchService", "Search", {"text": query, "k": 3})
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT


def test_no_deadline_fuzz_answers_no_internal(target: Target) -> None:
    """Hypothesis-made requests to every RPC with no deadline at all (10,000 with EVDSEARCH_SLOW_TESTS=1)."""
    from test_fuzz_grpc import run_fuzz

    with target.channel() as channel:
        result = run_fuzz(channel, target.running, examples=2000 if SLOW else 25, timeout=None)
    print(f"\nno-deadline fuzz ({target.running.transport}): {result}")
    assert "OK" in result["codes"] and "INVALID_ARGUMENT" in result["codes"]
    assert "INTERNAL" not in result["codes"] and "UNKNOWN" not in result["codes"]


def test_request_deadline_reads_no_deadline_as_none() -> None:
    grpc_infinite = 2**63 / 1e9  # what time_remaining() reports for a call without a deadline
    assert request_deadline(None, None) is None
    assert request_deadline(grpc_infinite, None) is None
    now = time.monotonic()
    assert now + 119 < request_deadline(grpc_infinite, 120.0) <= time.monotonic() + 120
    assert request_deadline(5.0, 120.0) <= time.monotonic() + 5
    assert request_deadline(-1.0, None) < time.monotonic()


class _SlowEngine:
    """Answers after `seconds`: longer than the server lets one call run."""

    def __init__(self, engine: SearchEngine, seconds: float) -> None:
        self.engine, self.seconds = engine, seconds

    def __getattr__(self, name: str) -> object:
        return getattr(self.engine, name)

    def search(self, req, deadline=None):  # noqa: ANN001, ANN201
        time.sleep(self.seconds)
        return self.engine.search(req, deadline=deadline)

    def search_batch(self, reqs, deadline=None):  # noqa: ANN001, ANN201
        time.sleep(self.seconds)
        return self.engine.search_batch(reqs, deadline=deadline)


@pytest.mark.parametrize("batched", [False, True])
def test_server_bound_answers_deadline_exceeded_without_a_client_deadline(engine: SearchEngine,
                                                                           batched: bool) -> None:
    slow = _SlowEngine(engine, 0.5)
    batcher = MicroBatcher(slow, BatchConfig(window_ms=1.0)) if batched else None
    running = build_server(slow, port=0, batcher=batcher, max_request_s=0.2)
    running.start()
    try:
        with grpc.insecure_channel(running.address) as channel:
            code, details = _status(search_pb2_grpc.SearchServiceStub(channel).Search,
                                    pb.SearchRequest(text="a red circle", k=2))
        assert code == grpc.StatusCode.DEADLINE_EXCEEDED and "deadline" in details
    finally:
        running.stop(0)
        if batcher is not None:
            batcher.close()
