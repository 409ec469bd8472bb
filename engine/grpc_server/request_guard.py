"""Undecodable request bytes answer INVALID_ARGUMENT with a message (gRPC's own answer would be INTERNAL)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import grpc


class _Undecodable:
    """What the guarded deserializer returns for bytes that are not the expected message."""

    def __init__(self, reason: str) -> None:
        self.reason = reason


def _safe(deserialize: Callable[[bytes], Any], method: str) -> Callable[[bytes], Any]:
    def decode(data: bytes) -> Any:
        try:
            return deserialize(data)
        except Exception as err:  # noqa: BLE001 - protobuf raises DecodeError, but any parse failure is the client's
            return _Undecodable(f"the request to {method} is not a valid protobuf message ({type(err).__name__})")

    return decode


def _checked(behavior: Callable[[Any, grpc.ServicerContext], Any]) -> Callable[[Any, grpc.ServicerContext], Any]:
    def run(request: Any, context: grpc.ServicerContext) -> Any:
        if isinstance(request, _Undecodable):
            context.abort(grpc.StatusCode.INVALID_ARGUMENT, request.reason)
        return behavior(request, context)

    return run


class DecodeGuardInterceptor(grpc.ServerInterceptor):
    """Wraps unary-request handlers (every SearchService RPC) so a parse failure is the caller's error."""

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or handler.request_streaming or handler.request_deserializer is None:
            return handler
        make = grpc.unary_unary_rpc_method_handler if not handler.response_streaming \
            else grpc.unary_stream_rpc_method_handler
        behavior = handler.unary_unary if not handler.response_streaming else handler.unary_stream
        return make(_checked(behavior), request_deserializer=_safe(handler.request_deserializer, details.method),
                    response_serializer=handler.response_serializer)
