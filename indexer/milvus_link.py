"""A Milvus connection that fails fast while the server is unreachable and reconnects with backoff.

Every call carries a timeout (a stopped server refuses at once, a hung one would otherwise hang the
request). When a call finds the server gone, the link is marked down: further calls answer `Unavailable`
at once (gRPC UNAVAILABLE, with the address, since when, and why) until the next reconnect attempt, which
waits 0.25 s, then twice as long each time, at most 2 s; one call at a time makes that attempt, with a
cheap check and a one-second timeout first (a hung server holds one worker for a second, not all of them
for the full timeout). The first call that gets through marks it up
again; a collection the restarted server has released is loaded again before the call is repeated.
`probe()` is the same attempt for the server's health watch, so health turns NOT_SERVING while Milvus is
away and SERVING when it is back, with or without searches.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from evdsearch.errors import NotFound, Unavailable

_log = logging.getLogger(__name__)
T = TypeVar("T")
CALL_TIMEOUT_S = 5.0  # longest one Milvus call may take
TRIAL_TIMEOUT_S = 1.0  # the check that tries a server marked down (get_load_state): short, so a hung one costs little
FIRST_BACKOFF_S, MAX_BACKOFF_S = 0.25, 2.0  # waits between reconnect attempts while the server is away
CONNECT_FAILED = 2  # pymilvus Status.CONNECT_FAILED


def rpc_status(err: BaseException) -> str | None:
    """The gRPC status name of a grpc.RpcError (pymilvus lets some through), without importing grpc: the search
    core stays free of the transport (an import-linter contract)."""
    code = getattr(err, "code", None)
    if not callable(code):  # MilvusException.code is an int
        return None
    try:
        return getattr(code(), "name", None)
    except Exception:  # noqa: BLE001 - not an RpcError after all
        return None


def is_connection_loss(err: BaseException) -> bool:
    """The server is unreachable (refused, reset, timed out), as opposed to a bad request."""
    status = rpc_status(err)
    if status is not None:
        return status in ("UNAVAILABLE", "DEADLINE_EXCEEDED")
    if isinstance(err, NotFound) and "cannot open Milvus" in str(err):
        return True  # milvus_backend.client() could not connect
    try:
        from pymilvus.exceptions import MilvusException, MilvusUnavailableException
    except ImportError:
        return False
    if isinstance(err, MilvusUnavailableException):
        return True
    return isinstance(err, MilvusException) and (getattr(err, "code", None) == CONNECT_FAILED
                                                 or "server unavailable" in str(err).lower())


def is_released(err: BaseException) -> bool:
    """The collection exists but is not loaded (e.g. the Milvus server restarted)."""
    text = str(err).lower()
    return "released" in text or "not loaded" in text or "load()" in text


class MilvusLink:
    """Calls to one Milvus collection with timeouts, fail-fast while down, and reconnects with backoff."""

    def __init__(self, uri: str, collection: str, connect: Callable[[str], Any],
                 timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.uri, self.collection, self.timeout_s = uri, collection, timeout_s
        self._connect = connect  # uri -> MilvusClient (cached by the caller)
        self._lock = threading.Lock()
        self.down_since: float | None = None  # time.time() when it went away; None while up
        self.reason = ""  # why the last attempt failed
        self._next_try = 0.0  # monotonic time of the next reconnect attempt
        self._backoff = FIRST_BACKOFF_S
        self._trying = False  # a call (or probe) is trying the server while it is marked down

    def call(self, fn: Callable[[Any, float], T]) -> T:
        """`fn(client, timeout_s)`; Unavailable when the server is (or just went) away.

        While the link is down, calls fail fast; once the backoff has passed, one call at a time first tries a
        cheap check with a short timeout (TRIAL_TIMEOUT_S), so a hung server costs that call about a second,
        not the full timeout, and never holds more than one worker.
        """
        with self._lock:
            down = self.down_since is not None
            if down and (time.monotonic() < self._next_try or self._trying):
                raise self._unavailable()
            self._trying = self._trying or down
        if down:
            try:
                self._attempt(self._check, TRIAL_TIMEOUT_S, trial=True)
            finally:
                with self._lock:
                    self._trying = False
        return self._attempt(fn, self.timeout_s, trial=False)

    def probe(self) -> str | None:
        """None when Milvus answers and the collection is loaded (loading it when released), else why not."""
        try:
            self.call(self._check)
        except Unavailable as err:
            return str(err)
        return None

    def _check(self, mc: Any, timeout_s: float) -> None:
        """Is the server there and the collection loaded? Load it when a restarted server released it."""
        state = str(mc.get_load_state(self.collection, timeout=timeout_s).get("state"))
        if "Loaded" not in state or "NotLoad" in state:
            mc.load_collection(self.collection, timeout=timeout_s)

    def _attempt(self, fn: Callable[[Any, float], T], timeout_s: float, trial: bool) -> T:
        try:
            try:
                mc = self._connect(self.uri)
                result = fn(mc, timeout_s)
            except Exception as err:  # noqa: BLE001 - sorted below: released, gone, or the caller's problem
                if not is_released(err) or is_connection_loss(err):
                    raise
                mc.load_collection(self.collection, timeout=timeout_s)  # a restarted server released it
                result = fn(mc, timeout_s)
        except Exception as err:  # noqa: BLE001 - connection loss becomes Unavailable, the rest passes
            if not is_connection_loss(err):
                raise
            self._mark_down(err, trial)
            raise self._unavailable() from err
        self._mark_up()
        return result

    def _mark_down(self, err: BaseException, trial: bool) -> None:
        """Calls that were in flight when the server went away each land here; only a failed reconnect
        attempt (`trial`) lengthens the wait before the next one."""
        with self._lock:
            first = self.down_since is None
            if first:
                self.down_since, self._backoff = time.time(), FIRST_BACKOFF_S
            elif trial:
                self._backoff = min(MAX_BACKOFF_S, self._backoff * 2)
            self._next_try = time.monotonic() + self._backoff
            self.reason = _one_line(err)
        if first:
            _log.warning("Milvus at %s is unreachable (%s); searches answer UNAVAILABLE, reconnecting every "
                         "%.2g-%.2g s", self.uri, self.reason, FIRST_BACKOFF_S, MAX_BACKOFF_S)

    def _mark_up(self) -> None:
        if self.down_since is None:
            return
        with self._lock:
            since, self.down_since, self._backoff = self.down_since, None, FIRST_BACKOFF_S
        if since is not None:
            _log.warning("Milvus at %s is back after %.1f s; serving again", self.uri, time.time() - since)

    def _unavailable(self) -> Unavailable:
        away = time.time() - (self.down_since or time.time())
        return Unavailable(f"Milvus at {self.uri} is unreachable (for {away:.1f} s: {self.reason}); "
                           f"retrying the connection every {MAX_BACKOFF_S:g} s at most, try again shortly")


def _one_line(err: BaseException) -> str:
    status = rpc_status(err)
    if status is not None:
        details = getattr(err, "details", None)
        return f"{status}: {details() if callable(details) else ''}"
    text = getattr(err, "message", None) or str(err)
    return " ".join(str(text).split())[:200]
