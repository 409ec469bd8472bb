"""The gRPC SearchService servicer: thin translation between protobuf and the engine, errors to status codes."""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from typing import TypeVar

import grpc

from evdsearch.engine.api import DeadlineExceeded
from evdsearch.engine.batcher import MicroBatcher
from evdsearch.engine.grpc_server.limits import DEFAULT_MAX_REQUEST_S
from evdsearch.engine.grpc_server.uris import hide_info_paths, hide_paths, image_root
from evdsearch.engine.reload import EngineHolder
from evdsearch.engine.search import SearchEngine
from evdsearch.errors import InvalidInput, NotFound, ResourceExhausted, Unavailable, UserError
from evdsearch.proto import convert
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

_log = logging.getLogger(__name__)
T = TypeVar("T")
NO_DEADLINE_S = 10 * 365 * 24 * 3600.0  # a remaining time beyond ten years means the client set no deadline

# Checked in order: the first matching class names the status.
STATUS_BY_ERROR: tuple[tuple[type[BaseException], grpc.StatusCode], ...] = (
    (ResourceExhausted, grpc.StatusCode.RESOURCE_EXHAUSTED),
    (InvalidInput, grpc.StatusCode.INVALID_ARGUMENT),
    (NotFound, grpc.StatusCode.NOT_FOUND),
    (Unavailable, grpc.StatusCode.UNAVAILABLE),  # e.g. the Milvus server is away: clients retry
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
    """Each RPC: convert the request, call the engine before the deadline, convert the answer.

    The engine comes from an EngineHolder, read once per RPC: a hot reload swaps it between RPCs, never in one.
    """

    def __init__(self, engine: SearchEngine | EngineHolder, expose_paths: bool = False,
                 batcher: MicroBatcher | None = None, max_request_s: float | None = DEFAULT_MAX_REQUEST_S) -> None:
        self.holder = engine if isinstance(engine, EngineHolder) else EngineHolder(engine)
        self.expose_paths = expose_paths  # False: hit URIs relative to the index's image root
        self.batcher = batcher  # gathers concurrent Search calls into one engine batch; None: one call each
        self.max_request_s = max_request_s  # the server's own bound on one RPC (None: the client's deadline only)

    @property
    def engine(self) -> SearchEngine:
        """The engine serving now."""
        return self.holder.current.engine

    def _public(self, response: pb.SearchResponse, engine: SearchEngine) -> pb.SearchResponse:
        if self.expose_paths:
            return response
        store = getattr(engine, "store", None)
        return hide_paths(response, image_root(store.manifest) if store is not None else None)

    def _names(self, response: T) -> T:
        """Model / rewriter folders by name only, unless paths are exposed."""
        return response if self.expose_paths else hide_info_paths(response)

    def Search(self, request: pb.SearchRequest, context: grpc.ServicerContext) -> pb.SearchResponse:
        with self.holder.acquire() as gen:
            def search(deadline: float | None) -> pb.SearchResponse:
                req = convert.request_from_proto(request)
                answer = (self.batcher.search(req, deadline=deadline, engine=gen.engine) if self.batcher
                          else gen.engine.search(req, deadline=deadline))
                return self._public(convert.response_to_proto(answer), gen.engine)
            return _call(context, search, self.max_request_s)

    def BatchSearch(self, request: pb.BatchSearchRequest, context: grpc.ServicerContext) -> pb.BatchSearchResponse:
        with self.holder.acquire() as gen:
            return _call(context, lambda deadline: pb.BatchSearchResponse(responses=[
                self._public(convert.response_to_proto(r), gen.engine) for r in gen.engine.search_batch(
                    [convert.request_from_proto(q) for q in request.requests], deadline=deadline)]),
                         self.max_request_s)

    def Rewrite(self, request: pb.RewriteRequest, context: grpc.ServicerContext) -> pb.RewriteResponse:
        with self.holder.acquire() as gen:
            return _call(context, lambda _deadline: self._names(convert.rewrite_to_proto(
                gen.engine.rewrite(request.text), gen.engine.rewriter_name)), self.max_request_s)

    def Info(self, request: pb.InfoRequest, context: grpc.ServicerContext) -> pb.InfoResponse:
        with self.holder.acquire() as gen:
            return _call(context, lambda _deadline: self._names(convert.info_to_proto(dataclasses.replace(
                gen.engine.info(), generation=gen.number, loaded_at=gen.loaded_at))), self.max_request_s)


def request_deadline(remaining: float | None, max_request_s: float | None) -> float | None:
    """A time.monotonic() deadline from grpc's `time_remaining()` and the server's own bound.

    A call without a deadline reports None or an enormous remaining time (grpc's infinite future, about
    2**63 ns): that is no deadline, not a number to add to the clock (it overflows every timed wait).
    """
    limits = [r for r in (remaining, max_request_s) if r is not None and r < NO_DEADLINE_S]
    return time.monotonic() + min(limits) if limits else None


def _call(context: grpc.ServicerContext, work: Callable[[float | None], T],
          max_request_s: float | None = None) -> T:
    """Run `work(deadline)` unless the deadline already passed; map errors to a status and a message."""
    deadline = request_deadline(context.time_remaining(), max_request_s)
    if deadline is not None and deadline <= time.monotonic():
        context.abort(grpc.StatusCode.DEADLINE_EXCEEDED, "deadline exceeded before the request started")
    try:
        return work(deadline)
    except Exception as err:  # noqa: BLE001 - every error becomes a status, never a crashed worker
        code, message = status_for(err)
        if code == grpc.StatusCode.INTERNAL:
            _log.exception("unexpected error while answering an RPC")
    context.abort(code, message)
    raise AssertionError("context.abort returned")  # abort always raises
