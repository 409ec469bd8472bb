"""The demo backend that talks to a running `evdsearch serve` over gRPC (BatchSearch and Info)."""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import fields
from pathlib import Path

import grpc

from evdsearch.client.channel import ClientSecurity, open_channel
from evdsearch.client.search_cli import explain_rpc_error
from evdsearch.engine.api import EngineInfo, EntityMention, Explanation, Hit, SearchRequest, SearchResponse
from evdsearch.engine.convert import MODE_TO_PROTO
from evdsearch.engine.validation import check_mode
from evdsearch.errors import InvalidInput, UserError
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc


def request_to_proto(req: SearchRequest) -> pb.SearchRequest:
    """The protobuf form of an engine request; the server validates the values."""
    msg = pb.SearchRequest(k=req.k, mode=MODE_TO_PROTO[check_mode(req.mode)], explain=req.explain)
    if req.text is not None:
        msg.text = req.text
    if req.image_bytes is not None:
        msg.image = bytes(req.image_bytes)
    if req.embedding is not None:
        msg.embedding.extend(float(x) for x in req.embedding)
    if req.alpha is not None:
        msg.alpha = req.alpha
    return msg


def explanation_from_proto(msg: pb.Explanation) -> Explanation:
    from evdsearch.indexer.kb import Description

    return Explanation(
        entities=[EntityMention(entity=e.name, text=e.text, start=e.start, end=e.end) for e in msg.entities],
        descriptions={group.entity: [Description(text=d.text, source=d.source, score=d.score)
                                     for d in group.descriptions] for group in msg.descriptions},
        rewritten_query=msg.rewritten_query, timings_ms=dict(msg.timings_ms),
        alpha=msg.alpha if msg.HasField("alpha") else None, rewrite_variants=list(msg.rewrite_variants))


def response_from_proto(msg: pb.SearchResponse, image_root: str | None = None) -> SearchResponse:
    """`image_root`: where this machine sees the server's images (hit URIs are relative to it by default)."""
    hits = [Hit(id=h.id, uri=_local_uri(h.uri, image_root), score=h.score, original_score=h.original_score,
                rewritten_score=h.rewritten_score, captions=list(h.captions)) for h in msg.hits]
    explanation = explanation_from_proto(msg.explanation) if msg.HasField("explanation") else None
    return SearchResponse(hits=hits, explanation=explanation)


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
        batch = pb.BatchSearchRequest(requests=[request_to_proto(r) for r in requests])
        try:
            answer = self._call(self._stub.BatchSearch, batch)
        except UserError as err:  # the demo's batch is one query asked twice: "request 0:" would only confuse
            raise type(err)(re.sub(r"request \d+: ", "", str(err), count=1)) from None
        return [response_from_proto(r, self.image_root) for r in answer.responses]

    def info(self) -> EngineInfo:
        answer = self._call(self._stub.Info, pb.InfoRequest())
        return EngineInfo(**{f.name: getattr(answer, f.name) for f in fields(EngineInfo)})

    def entities(self) -> list[str] | None:
        return None  # SearchService has no call that lists the knowledge base

    def close(self) -> None:
        self._channel.close()

