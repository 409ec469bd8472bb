"""The demo backend that talks to a running `evdsearch serve` over gRPC (BatchSearch and Info)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import grpc

from evdsearch.client.channel import ClientSecurity, open_channel
from evdsearch.client.search_cli import explain_rpc_error
from evdsearch.errors import InvalidInput, UserError
from evdsearch.proto import convert
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc
from evdsearch.search_api import EngineInfo, SearchRequest, SearchResponse


def response_from_proto(msg: pb.SearchResponse, image_root: str | None = None) -> SearchResponse:
    """`image_root`: where this machine sees the server's images (hit URIs are relative to it by default)."""
    resp = convert.response_from_proto(msg)
    for hit in resp.hits:
        hit.uri = _local_uri(hit.uri, image_root)
    return resp


def _local_uri(uri: str, image_root: str | None) -> str:
    if image_root is None or "://" in uri or Path(uri).is_absolute():
        return uri
    return str(Path(image_root) / uri)


class GrpcBackend:
    """Sends the demo's queries to `evdsearch serve` at `address`; RPC errors become UserErrors."""

    def __init__(self, address: str, timeout_s: float = 10.0, security: ClientSecurity | None = None,
                 image_root: str | None = None) -> None:
        if timeout_s <= 0:
            raise InvalidInput(f"the timeout must be positive, got {timeout_s}")
        self.where = address
        self.image_root = image_root  # resolves the server's image-root-relative hit URIs to local files
        self.timeout_s = timeout_s
        self._channel = open_channel(address, security)
        self._stub = search_pb2_grpc.SearchServiceStub(self._channel)

    def _call(self, method: grpc.UnaryUnaryMultiCallable, request: object) -> object:
        try:
            return method(request, timeout=self.timeout_s)
        except grpc.RpcError as err:
            raise explain_rpc_error(err, self.where, self.timeout_s) from None

    def search(self, requests: Sequence[SearchRequest]) -> list[SearchResponse]:
        batch = pb.BatchSearchRequest(requests=[convert.request_to_proto(r) for r in requests])
        try:
            answer = self._call(self._stub.BatchSearch, batch)
        except UserError as err:  # the demo's batch is one query asked twice: "request 0:" would only confuse
            raise type(err)(re.sub(r"request \d+: ", "", str(err), count=1)) from None
        return [response_from_proto(r, self.image_root) for r in answer.responses]

    def info(self) -> EngineInfo:
        answer = self._call(self._stub.Info, pb.InfoRequest())
        return convert.info_from_proto(answer)

    def entities(self) -> list[str] | None:
        return None  # SearchService has no call that lists the knowledge base

    def close(self) -> None:
        self._channel.close()

