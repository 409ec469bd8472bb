"""Cross-request batching: concurrent searches gathered for a few ms into one `search_batch` call.

One rewrite batch, one encoder call and one index search serve many RPCs: on a GPU that is what fills
the device, on a CPU it removes per-call overhead and keeps one encoder call (with the whole thread
budget) running at a time. Each request keeps its own deadline and its own error.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass, field
from typing import Any

from evdsearch.engine.api import DeadlineExceeded
from evdsearch.search_api import MAX_BATCH, SearchRequest, SearchResponse

_log = logging.getLogger(__name__)
DEFAULT_WINDOW_MS = 2.0  # how long the first request of a batch waits for company
DEFAULT_MAX_BATCH = 64  # most requests in one engine call


@dataclass
class BatchConfig:
    """How requests are gathered."""

    window_ms: float = DEFAULT_WINDOW_MS  # wait at most this long after a batch's first request (0: no batching)
    max_batch: int = DEFAULT_MAX_BATCH  # a batch runs as soon as it holds this many requests


@dataclass
class _Pending:
    request: SearchRequest
    deadline: float | None  # time.monotonic() value, None: no deadline
    engine: Any = None  # the engine generation the RPC holds (hot reload): its batch runs on that one
    future: Future = field(default_factory=Future)


@dataclass
class BatchStats:
    """What the batcher has done."""

    batches: int = 0  # engine calls made
    requests: int = 0  # requests answered through them
    largest: int = 0  # most requests in one call
    cached: int = 0  # requests answered from the engine's caches without joining a batch


def check_batch_config(config: BatchConfig) -> BatchConfig:
    """The config itself, or InvalidInput naming the serve flag that is out of range."""
    from evdsearch.errors import InvalidInput

    if not config.window_ms >= 0:
        raise InvalidInput(f"--batch-window-ms must be 0 or more, got {config.window_ms:g}")
    if not 1 <= config.max_batch <= MAX_BATCH:
        raise InvalidInput(f"--max-batch must be in 1..{MAX_BATCH}, got {config.max_batch}")
    return config


class MicroBatcher:
    """`search(req, deadline)` like SearchEngine.search, answered by a background thread in batches."""

    def __init__(self, engine: Any, config: BatchConfig | None = None) -> None:
        self.engine = engine
        self.config = check_batch_config(config or BatchConfig())
        self.stats = BatchStats()
        self._queue: queue.Queue[_Pending | None] = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="evdsearch-batcher", daemon=True)
        self._thread.start()

    def search(self, req: SearchRequest, deadline: float | None = None, engine: Any = None) -> SearchResponse:
        """The engine's answer to `req`, or the error it raised for `req` alone.

        `engine` is the one the calling RPC holds (after a hot reload, requests of the old and the new
        generation are never mixed in one batch); None: the batcher's own. A request the engine can answer
        from its caches (no encode) skips the queue: batching would only make it wait behind other
        requests' encodes.
        """
        engine = engine if engine is not None else self.engine
        cached = getattr(engine, "cached_text_query", None)
        if cached is not None and cached(req):
            self.stats.cached += 1
            return engine.search(req, deadline=deadline)
        pending = _Pending(req, deadline, engine)
        self._queue.put(pending)
        timeout = None if deadline is None else max(0.0, deadline - time.monotonic()) + 1.0
        if timeout is not None and timeout >= threading.TIMEOUT_MAX:  # beyond what a timed wait can take
            timeout = None
        try:
            return pending.future.result(timeout=timeout)  # the loop settles every future it takes
        except FutureTimeout as err:  # a batch ahead of it ran long past this request's deadline
            raise DeadlineExceeded("deadline exceeded while waiting for a batch") from err

    def close(self, answer_queued: bool = True) -> None:
        """Stop the thread after answering what is queued, or (`answer_queued=False`, on server shutdown,
        when gRPC has cancelled the waiting calls) after failing it: nobody waits for those answers."""
        if not answer_queued:
            while True:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is not None:
                    item.future.set_exception(DeadlineExceeded("the server stopped before the request ran"))
        self._queue.put(None)
        self._thread.join()

    def _gather(self, first: _Pending) -> list[_Pending]:
        batch = [first]
        until = time.monotonic() + self.config.window_ms / 1000.0
        while len(batch) < self.config.max_batch:
            try:  # take what is already queued without waiting, then wait out the window
                item = self._queue.get_nowait() if self.config.window_ms <= 0 else \
                    self._queue.get(timeout=max(0.0, until - time.monotonic()))
            except queue.Empty:
                break
            if item is None:
                self._queue.put(None)  # close() after this batch
                break
            batch.append(item)
        return batch

    def _loop(self) -> None:
        while (first := self._queue.get()) is not None:
            by_engine: dict[int, list[_Pending]] = {}
            for item in self._gather(first):
                by_engine.setdefault(id(item.engine), []).append(item)
            for group in by_engine.values():
                self._run(group)

    def _run(self, batch: list[_Pending]) -> None:
        now = time.monotonic()
        live = []
        for item in batch:  # a request whose deadline passed while queued is not searched
            if item.deadline is not None and now >= item.deadline:
                item.future.set_exception(DeadlineExceeded("deadline exceeded while waiting for a batch"))
            else:
                live.append(item)
        if not live:
            return
        deadlines = [item.deadline for item in live]
        latest = None if None in deadlines else max(d for d in deadlines if d is not None)
        try:
            answers = live[0].engine.search_batch([item.request for item in live], deadline=latest)
        except Exception as err:  # noqa: BLE001 - one bad request must not fail the others: answer each alone
            if len(live) == 1:
                live[0].future.set_exception(err)
                return
            for item in live:
                self._settle_alone(item)
            return
        self.stats.batches += 1
        self.stats.requests += len(live)
        self.stats.largest = max(self.stats.largest, len(live))
        finished = time.monotonic()
        for item, answer in zip(live, answers, strict=True):
            if item.deadline is not None and finished >= item.deadline:  # its own deadline, not the batch's
                item.future.set_exception(DeadlineExceeded("deadline exceeded before the search finished"))
            else:
                item.future.set_result(answer)

    def _settle_alone(self, item: _Pending) -> None:
        try:
            item.future.set_result(item.engine.search(item.request, deadline=item.deadline))
        except Exception as err:  # noqa: BLE001 - handed to the waiting RPC thread, which maps it to a status
            item.future.set_exception(err)
