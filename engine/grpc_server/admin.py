"""The gRPC AdminService servicer: Reload swaps in a freshly opened engine; a failed reload keeps the old one."""

from __future__ import annotations

import logging

import grpc

from evdsearch.engine.grpc_server.servicer import _call
from evdsearch.engine.reload import Reloader, ReloadFailed
from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

_log = logging.getLogger(__name__)


class AdminServicer(search_pb2_grpc.AdminServiceServicer):
    """Reload: reopen index, KB, rewriter (and the reload callbacks, e.g. a token file) from their paths."""

    def __init__(self, reloader: Reloader) -> None:
        self.reloader = reloader

    def Reload(self, request: pb.ReloadRequest, context: grpc.ServicerContext) -> pb.ReloadResponse:
        return _call(context, lambda _deadline: self._reload())

    def _reload(self) -> pb.ReloadResponse:
        try:
            outcome = self.reloader.reload()
        except ReloadFailed as err:
            _log.warning("AdminService.Reload: %s", err)
            raise
        gen = outcome.generation
        _log.warning("AdminService.Reload: now serving generation %d (%d images, KB %s) after %.1f s", gen.number,
                     gen.engine.store.count, gen.engine.kb.path if gen.engine.kb is not None else "none",
                     outcome.seconds)
        stats = gen.engine.kb.stats() if gen.engine.kb is not None else None
        return pb.ReloadResponse(generation=gen.number, loaded_at=gen.loaded_at, index_size=gen.engine.store.count,
                                 kb_entities=stats.entities if stats else 0, seconds=outcome.seconds)
