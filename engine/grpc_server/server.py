"""The gRPC server: SearchService plus the standard health and reflection services, message limits, drain on stop."""

from __future__ import annotations

from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from evdsearch.engine.grpc_server.admin import AdminServicer
from evdsearch.engine.grpc_server.limits import (
    DEFAULT_GRACE_S,
    DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_MESSAGE_BYTES,
    DEFAULT_MAX_REQUEST_S,
)
from evdsearch.engine.grpc_server.request_guard import DecodeGuardInterceptor
from evdsearch.engine.grpc_server.security import TlsFiles, TokenAuthInterceptor, TokenStore
from evdsearch.engine.grpc_server.servicer import SearchServicer
from evdsearch.engine.grpc_server.store_health import StoreHealthWatch
from evdsearch.engine.reload import EngineHolder, Reloader
from evdsearch.errors import UserError
from evdsearch.proto.evdsearch.v1 import search_pb2, search_pb2_grpc

SERVICE_NAME = search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name  # evdsearch.v1.SearchService
ADMIN_SERVICE_NAME = search_pb2.DESCRIPTOR.services_by_name["AdminService"].full_name  # evdsearch.v1.AdminService


@dataclass
class RunningServer:
    """A built server: `start()`, then `stop()` to drain; `port` is the bound port (useful with port 0)."""

    server: grpc.Server
    port: int
    host: str
    health: health.HealthServicer
    reloader: Reloader | None = None  # hot reload (SIGHUP, AdminService.Reload); add hooks to .callbacks
    transport: str = "plaintext"  # plaintext | TLS | mutual TLS, plus "+ token auth": for the ready line
    tokens: TokenStore | None = None  # the accepted tokens; `tokens.reload()` re-reads their file
    watch: StoreHealthWatch | None = None  # health NOT_SERVING while the store (a Milvus server) is away

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.server.start()
        for service in ("", SERVICE_NAME):  # "" is the whole server, by gRPC health convention
            self.health.set(service, health_pb2.HealthCheckResponse.SERVING)
        if self.watch is not None:
            self.watch.start()

    def stop(self, grace_s: float = DEFAULT_GRACE_S) -> None:
        """Report NOT_SERVING (so balancers stop sending), refuse new RPCs, let running ones finish."""
        if self.watch is not None:
            self.watch.stop()
        self.health.enter_graceful_shutdown()
        self.server.stop(grace_s).wait()


def build_server(engine: Any, port: int = 50051, max_workers: int = 4,
                 max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES, host: str = "127.0.0.1",
                 tls: TlsFiles | None = None, tokens: TokenStore | None = None,
                 max_concurrent: int | None = DEFAULT_MAX_CONCURRENT, expose_paths: bool = False,
                 batcher: Any = None, max_request_s: float | None = DEFAULT_MAX_REQUEST_S) -> RunningServer:
    """A server for `engine` bound to host:port (port 0 picks a free one); not started yet.

    `tls`: serve TLS (mutual with a client CA); `tokens`: every service but health needs a bearer token;
    `max_concurrent`: RPCs beyond it answer RESOURCE_EXHAUSTED at once (gRPC's own bound, checked before
    the worker queue); `expose_paths`: hits carry absolute server paths instead of image-root-relative ones.
    `batcher` (an engine.batcher.MicroBatcher) answers Search calls in cross-request batches.
    `max_request_s`: the longest a SearchService call may run, with or without a client deadline
    (DEADLINE_EXCEEDED past it; None: only the client's deadline bounds it).
    """
    options = [
        ("grpc.max_receive_message_length", max_message_bytes),
        ("grpc.max_send_message_length", max_message_bytes),
        ("grpc.so_reuseport", 0),  # a second server on a busy port must fail, not share it silently
    ]
    interceptors = [*([TokenAuthInterceptor(tokens)] if tokens is not None else []), DecodeGuardInterceptor()]
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=max_workers, thread_name_prefix="evdsearch-rpc"),
                         options=options, interceptors=interceptors, maximum_concurrent_rpcs=max_concurrent)
    holder = engine if isinstance(engine, EngineHolder) else EngineHolder(engine)
    reloader = Reloader(holder)
    if tokens is not None:
        reloader.callbacks.append(tokens.reload)  # SIGHUP / Reload re-read the token file too
    search_pb2_grpc.add_SearchServiceServicer_to_server(SearchServicer(
        holder, expose_paths=expose_paths, batcher=batcher, max_request_s=max_request_s), server)
    search_pb2_grpc.add_AdminServiceServicer_to_server(AdminServicer(reloader), server)
    health_servicer = health.HealthServicer()
    for service in ("", SERVICE_NAME):
        health_servicer.set(service, health_pb2.HealthCheckResponse.NOT_SERVING)  # until start()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    reflection.enable_server_reflection(
        (SERVICE_NAME, ADMIN_SERVICE_NAME, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name,
         reflection.SERVICE_NAME), server)
    try:
        bound = server.add_secure_port(f"{host}:{port}", tls.credentials()) if tls is not None \
            else server.add_insecure_port(f"{host}:{port}")
    except RuntimeError as err:
        bound = 0
        reason = str(err)
    else:
        reason = "the port is in use or the address is not local"
    if not bound:
        raise UserError(f"cannot listen on {host}:{port} ({reason}); pick another --port or --host")
    transport = (tls.describe() if tls is not None else "plaintext") + (" + token auth" if tokens is not None else "")
    return RunningServer(server=server, port=bound, host=host, health=health_servicer, reloader=reloader,
                         transport=transport, tokens=tokens,
                         watch=StoreHealthWatch(holder, health_servicer, ("", SERVICE_NAME)))
