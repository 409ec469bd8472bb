"""The suite's INTERNAL guard (tests/grpc_internal_guard.py) sees an INTERNAL answer on a watched channel."""

from __future__ import annotations

from concurrent import futures

import grpc
import grpc_internal_guard
import pytest

pytestmark = pytest.mark.internal_expected  # this module provokes INTERNAL on purpose, to see it noticed


def _broken_server() -> tuple[grpc.Server, int]:
    def fail(_request: bytes, context: grpc.ServicerContext) -> bytes:
        context.abort(grpc.StatusCode.INTERNAL, "boom")

    handler = grpc.method_handlers_generic_handler(
        "t.Broken", {"Call": grpc.unary_unary_rpc_method_handler(fail)})
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=1), handlers=[handler])
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    return server, port


def test_guard_records_an_internal_answer() -> None:
    server, port = _broken_server()
    try:
        with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:  # watched: the plugin wraps every channel
            with pytest.raises(grpc.RpcError) as err:
                channel.unary_unary("/t.Broken/Call")(b"", timeout=5)
        assert err.value.code() == grpc.StatusCode.INTERNAL
        assert any("/t.Broken/Call: boom" in seen for seen in grpc_internal_guard._seen)
    finally:
        server.stop(0)
