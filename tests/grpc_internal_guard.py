"""A pytest plugin: any INTERNAL status in the suite fails the test that caused it.

INTERNAL is always a bug (a status the server never means to send), so every client channel the tests
open is watched for one, and so is the in-process servicer's log. A test that provokes one on purpose
says so with `@pytest.mark.internal_expected`.
"""

from __future__ import annotations

import logging

import grpc
import pytest

SERVICER_LOGGER = "evdsearch.engine.grpc_server.servicer"
_seen: list[str] = []  # what answered INTERNAL during the running test


class _InternalWatch(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                     grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
    """Notes every call that ends with INTERNAL, without blocking or changing it."""

    def _watch(self, details: grpc.ClientCallDetails, call: object) -> object:
        def done(finished: object) -> None:
            try:
                if finished.code() == grpc.StatusCode.INTERNAL:
                    _seen.append(f"{details.method}: {finished.details()}")
            except Exception:  # noqa: BLE001 - a call that cannot report a code is not ours to judge
                pass

        add = getattr(call, "add_done_callback", None)
        if add is not None:
            add(done)
        return call

    def intercept_unary_unary(self, continuation, details, request):  # noqa: ANN001, ANN201
        return self._watch(details, continuation(details, request))

    def intercept_unary_stream(self, continuation, details, request):  # noqa: ANN001, ANN201
        return self._watch(details, continuation(details, request))

    def intercept_stream_unary(self, continuation, details, requests):  # noqa: ANN001, ANN201
        return self._watch(details, continuation(details, requests))

    def intercept_stream_stream(self, continuation, details, requests):  # noqa: ANN001, ANN201
        return self._watch(details, continuation(details, requests))


class _ServerLogWatch(logging.Handler):
    """The in-process servicer logs every INTERNAL answer it sends."""

    def emit(self, record: logging.LogRecord) -> None:
        if record.levelno >= logging.ERROR:
            _seen.append(f"server: {record.getMessage()} ({record.exc_info[1]!r})" if record.exc_info
                         else f"server: {record.getMessage()}")


def _watched(factory):  # noqa: ANN001, ANN202
    def open_watched(*args, **kwargs):  # noqa: ANN002, ANN003, ANN202
        return grpc.intercept_channel(factory(*args, **kwargs), _InternalWatch())
    return open_watched


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "internal_expected: the test provokes an INTERNAL status on purpose")
    grpc.insecure_channel = _watched(grpc.insecure_channel)
    grpc.secure_channel = _watched(grpc.secure_channel)
    logging.getLogger(SERVICER_LOGGER).addHandler(_ServerLogWatch())


@pytest.fixture(autouse=True)
def _no_internal_status(request: pytest.FixtureRequest):  # noqa: ANN202
    _seen.clear()
    yield
    found, _seen[:] = list(_seen), []
    if found and request.node.get_closest_marker("internal_expected") is None:
        pytest.fail("INTERNAL status during the test (always a bug):\n  " + "\n  ".join(found[:10]),
                    pytrace=False)
