"""The gRPC SearchService servicer: thin translation between protobuf and the engine, errors to status codes."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from evdsearch.engine import convert
from evdsearch.engine.api import DeadlineExceeded
from evdsearch.engine.batcher import MicroBatcher
from evdsearch.engine.search import SearchEngine
from evdsearch.errors import InvalidInput, NotFound, UserError
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

_log = logging.getLogger(__name__)
T = TypeVar("T")

# Checked in order: the first matching class names the status.
STATUS_BY_ERROR: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (UserError, grpc.StatusCode.FAILED_PRECONDITION),
    (DeadlineExceeded, grpc.StatusCode.DEADLINE_EXCEEDED),
)


def status_for(err: BaseException) -> tuple[grpc.StatusCode, str]:
    """The status code and message a client sees for an engine error."""
    for cls, code in STATUS_BY_ERROR:
        if isinstance(err, cls):
            return code, str(err)
    return grpc.StatusCode.INTERNAL, f"internal error ({type(err).__name__}); see the server log"


class SearchServicer(search_pb2_grpc.SearchServiceServicer):
    """Each RPC: convert the request, call the engine before the deadline, convert the answer."""

    def __init__(self, engine: SearchEngine, batcher: MicroBatcher | None = None) -> None:
        self.engine = engine
        self.batcher = batcher  # gathers concurrent Search calls into one engine batch; None: one call each

    def Search(self, request: pb.SearchRequest, context: grpc.ServicerContext) -> pb.SearchResponse:
        searcher = self.batcher or self.engine
        return _call(context, lambda deadline: convert.response_to_proto(
            searcher.search(convert.request_from_proto(request), deadline=deadline)))

    def BatchSearch(self, request: pb.BatchSearchRequest, context: grpc.ServicerContext) -> pb.BatchSearchResponse:
        return _call(context, lambda deadline: pb.BatchSearchResponse(responses=[
            convert.response_to_proto(r) for r in self.engine.search_batch(
                [convert.request_from_proto(q) for q in request.requests], deadline=deadline)]))

    def Rewrite(self, request: pb.RewriteRequest, context: grpc.ServicerContext) -> pb.RewriteResponse:
        return _call(context, lambda _deadline: convert.rewrite_to_proto(
            self.engine.rewrite(request.text), self.engine.rewriter_name))

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        return _call(context, lambda _deadline: convert.info_to_proto(self.engine.info()))


def _call(context: grpc.ServicerContext, work: Callable[[float | None], T]) -> T:
    """Run `work(deadline)` unless the deadline already passed; map errors to a status and a message."""
    remaining = context.time_remaining()
    deadline = time.monotonic() + remaining if remaining is not None else None
    if remaining is not None and remaining <= 0:
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the request started")
    try:
        return work(deadline)
    except Exception as err:  # noqa: BLE001 - every error becomes a status, never a crashed worker
        code, message = status_for(err)
        if code == grpc.StatusCode.INTERNAL:
            _log.exception("unexpected error while answering an RPC")
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # abort always raises

