"""A client built from the previous proto's generated modules: sends fixed requests, prints what it received.

Run as `python old_client.py HOST:PORT IMAGE_PNG`: prints one JSON object per line, {"case", "request" (base64 of
the request bytes), "status", "answer" (MessageToDict through the OLD classes)}.
"""

from __future__ import annotations

import base64
import importlib.util
import json
import sys
from pathlib import Path

import grpc
from google.protobuf.json_format import MessageToDict

HERE = Path(__file__).parent


def _load(name: str, path: Path) -> object:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


pb = _load("evdsearch.proto.evdsearch.v1.search_pb2", HERE / "search_pb2.py")  # the name its stubs import
stubs = _load("old_search_pb2_grpc", HERE / "search_pb2_grpc.py")


def cases(image: bytes) -> list[tuple[str, str, object]]:
    text = "two tomatoes next to a school bus"
    return [
        ("fused", "Search", pb.SearchRequest(text=text, k=5)),
        ("original", "Search", pb.SearchRequest(text=text, k=7, mode=pb.MODE_ORIGINAL)),
        ("rewritten+alpha+explain", "Search", pb.SearchRequest(text=text, k=4, mode=pb.MODE_REWRITTEN, alpha=0.3,
                                                               explain=True)),
        ("defaults", "Search", pb.SearchRequest(text="a red circle")),
        ("image", "Search", pb.SearchRequest(image=image, k=3, explain=True)),
        ("embedding", "Search", pb.SearchRequest(embedding=[0.1] * 32, k=3)),
        ("batch", "BatchSearch", pb.BatchSearchRequest(requests=[pb.SearchRequest(text="a panda", k=2),
                                                                 pb.SearchRequest(text=text, k=3)])),
        ("rewrite", "Rewrite", pb.RewriteRequest(text=text)),
        ("info", "Info", pb.InfoRequest()),
        ("empty text", "Search", pb.SearchRequest(text="")),
        ("two kinds", "Search", pb.SearchRequest(text="x", embedding=[1.0] * 32)),
    ]


def main() -> None:
    address, image = sys.argv[1], Path(sys.argv[2]).read_bytes()
    with grpc.insecure_channel(address) as channel:
        stub = stubs.SearchServiceStub(channel)
        for name, method, request in cases(image):
            try:
                answer = getattr(stub, method)(request, timeout=60)
                status, shown = "OK", MessageToDict(answer, preserving_proto_field_name=True)
            except grpc.RpcError as err:
                status, shown = err.code().name, err.details()
            print(json.dumps({"case": name, "method": method, "status": status, "answer": shown,
                              "request": base64.b64encode(request.SerializeToString()).decode()}))


if __name__ == "__main__":
    main()
