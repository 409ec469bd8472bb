"""The new search options through a real gRPC channel: typed metadata on hits, weighted terms, pages, thresholds;
hostile filters answered INVALID_ARGUMENT while the server stays SERVING (and never INTERNAL)."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_engine_support import COLORS, build_kb, build_metadata_index, open_engine, serving

from evdsearch.engine.grpc_server.server import RunningServer
from evdsearch.proto import convert
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc
from evdsearch.search_api import SearchRequest, WeightedText

QUERY = "two tomatoes next to a school bus"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> RunningServer:
    root = tmp_path_factory.mktemp("grpcfeatures")
    with open_engine(build_metadata_index(root, tiny_clip_dir), build_kb(root / "kb")) as engine, \
            serving(engine, max_workers=4) as running:
        yield running


@pytest.fixture(scope="module")
def stub(server: RunningServer) -> search_pb2_grpc.SearchServiceStub:
    with grpc.insecure_channel(server.address) as channel:
        yield search_pb2_grpc.SearchServiceStub(channel)


def _search(stub: search_pb2_grpc.SearchServiceStub, **fields: object) -> object:
    return convert.response_from_proto(stub.Search(convert.request_to_proto(SearchRequest(**fields)), timeout=60))


def test_options_round_trip(stub: search_pb2_grpc.SearchServiceStub) -> None:
    resp = _search(stub, text=QUERY, k=3, filter='color in ["red", "blue", "green"]', with_metadata=True,
                   explain=True)
    assert {h.id for h in resp.hits} == {0, 1, 2}
    for hit in resp.hits:
        assert hit.metadata["color"] == COLORS[hit.id] and hit.metadata["rank"] == hit.id
        assert hit.metadata["split"] == "test" and isinstance(hit.metadata["mtime"], datetime)
    assert resp.explanation.filter == 'color in ["red", "blue", "green"]' and resp.explanation.filter_matches == 3
    top = [h.id for h in _search(stub, text=QUERY, k=9).hits]
    assert sum(([h.id for h in _search(stub, text=QUERY, k=3, offset=o).hits] for o in (0, 3, 6)), []) == top
    cut = _search(stub, text=QUERY, k=9).hits[2].score
    assert all(h.score >= cut for h in _search(stub, text=QUERY, k=9, min_score=cut).hits)
    weighted = _search(stub, terms=[WeightedText("a red circle", 1.0), WeightedText("tomato", -1.0)], k=3,
                       explain=True)
    assert [t.weight for t in weighted.explanation.terms] == [1.0, -1.0]
    assert 5 not in {h.id for h in _search(stub, like_id=5, k=11).hits}
    info = convert.info_from_proto(stub.Info(pb.InfoRequest(), timeout=30))
    assert "color:str" in info.metadata_fields and info.max_depth == 5000


HOSTILE = ["(" * 100 + "rank == 1" + ")" * 100, "rank == 1 or " * 90_000 + "rank == 2", "colour == 'red'",
           'rank == "one"', "rank in [" + ", ".join(["1"] * 5000) + "]", "not " * 1000 + "rank == 1", "rank ==",
           "\x00", "rank == 1; DROP TABLE images"]


@pytest.mark.parametrize("expression", HOSTILE, ids=range(len(HOSTILE)))
def test_hostile_filters_are_refused_and_the_server_stays_serving(
        stub: search_pb2_grpc.SearchServiceStub, server: RunningServer, expression: str) -> None:
    with pytest.raises(grpc.RpcError) as err:
        stub.Search(pb.SearchRequest(text=QUERY, filter=expression), timeout=60)
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT and err.value.details().startswith("filter")
    with grpc.insecure_channel(server.address) as channel:
        health = health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=10)
    assert health.status == health_pb2.HealthCheckResponse.SERVING
    assert len(stub.Search(pb.SearchRequest(text=QUERY, k=2), timeout=60).hits) == 2


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.text(alphabet=st.sampled_from(list("rankcolo =!<>()[],'\"0123456789.-andotin")), max_size=40))
def test_random_filters_never_fail_inside(stub: search_pb2_grpc.SearchServiceStub, expression: str) -> None:
    try:
        stub.Search(pb.SearchRequest(text=QUERY, k=2, filter=expression), timeout=60)
    except grpc.RpcError as err:
        assert err.code() == grpc.StatusCode.INVALID_ARGUMENT, err.details()
