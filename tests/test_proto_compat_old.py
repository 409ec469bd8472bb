"""Clients built from the proto before issue 25 (tests/old_proto) still work against the current server: every
request they can send gets the answer a current client gets (the fields they do not know aside)."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import grpc
import pytest
from google.protobuf.json_format import MessageToDict
from test_engine_support import build_index, build_kb, open_engine, png_bytes

from evdsearch.engine.grpc_server.server import build_server
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

OLD = Path(__file__).parent / "old_proto"
NEW_FIELDS = {"metadata", "terms", "filter", "filter_matches", "search_plan", "metadata_fields", "max_depth"}
REQUESTS = {"Search": pb.SearchRequest, "BatchSearch": pb.BatchSearchRequest, "Rewrite": pb.RewriteRequest,
            "Info": pb.InfoRequest}


def _known(value: object) -> object:
    """The answer as an old client sees it: fields added since dropped, timings (they vary per call) too."""
    if isinstance(value, dict):
        return {k: _known(v) for k, v in value.items() if k not in NEW_FIELDS | {"timings_ms", "loaded_at",
                                                                                "text_cache_hits", "text_cache_misses",
                                                                                "text_cache_size"}}
    if isinstance(value, list):
        return [_known(v) for v in value]
    return value


@pytest.fixture(scope="module")
def old_answers(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> list[dict]:
    root = tmp_path_factory.mktemp("oldproto")
    image = root / "query.png"
    image.write_bytes(png_bytes("red"))
    with open_engine(build_index(root, tiny_clip_dir), build_kb(root / "kb")) as engine:
        running = build_server(engine, port=0, max_workers=2)
        running.start()
        try:
            run = subprocess.run([sys.executable, str(OLD / "old_client.py"), running.address, str(image)],
                                 capture_output=True, text=True, timeout=600)
            assert run.returncode == 0, run.stderr[-3000:]
            answers = [json.loads(line) for line in run.stdout.splitlines()]
            with grpc.insecure_channel(running.address) as channel:
                stub = search_pb2_grpc.SearchServiceStub(channel)
                for answer in answers:
                    request = REQUESTS[answer["method"]].FromString(base64.b64decode(answer["request"]))
                    try:
                        fresh = getattr(stub, answer["method"])(request, timeout=60)
                        answer["new"] = ("OK", MessageToDict(fresh, preserving_proto_field_name=True))
                    except grpc.RpcError as err:
                        answer["new"] = (err.code().name, err.details())
            yield answers
        finally:
            running.stop(0)


def test_old_client_gets_the_answers_a_new_client_gets(old_answers: list[dict]) -> None:
    answers = old_answers
    assert len(answers) == 11
    for answer in answers:
        status, fresh = answer["new"]
        assert answer["status"] == status, answer["case"]
        if status == "OK":
            assert _known(answer["answer"]) == _known(fresh), answer["case"]
        else:
            assert status == "INVALID_ARGUMENT" and answer["answer"] == fresh


def test_old_client_answers_are_real(old_answers: list[dict]) -> None:
    by_case = {a["case"]: a for a in old_answers}
    assert len(by_case["fused"]["answer"]["hits"]) == 5 and len(by_case["defaults"]["answer"]["hits"]) == 10
    scores = [h["score"] for h in by_case["original"]["answer"]["hits"]]
    assert scores == sorted(scores, reverse=True) and len(scores) == 7
    explained = by_case["rewritten+alpha+explain"]["answer"]["explanation"]
    assert explained["alpha"] == pytest.approx(0.3) and explained["rewritten_query"].startswith("two tomatoes")
    assert [len(r.get("hits", [])) for r in by_case["batch"]["answer"]["responses"]] == [2, 3]
    assert by_case["info"]["answer"]["index_size"] == "12"
    assert "exactly one of" in by_case["two kinds"]["answer"]
