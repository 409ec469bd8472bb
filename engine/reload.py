"""Hot reload: an engine holder that RPCs read once each, and a reloader that builds a new engine and swaps it in."""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

from evdsearch.engine.search import SearchEngine
from evdsearch.errors import UserError
from evdsearch.versioned import current_version

_log = logging.getLogger(__name__)


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@dataclass(eq=False)
class Generation:
    """One loaded engine and its bookkeeping."""

    engine: SearchEngine  # what RPCs of this generation use
    number: int  # 1 at start, +1 per successful reload
    loaded_at: str = field(default_factory=_now)  # ISO 8601 UTC
    refs: int = 0  # RPCs running on it right now
    retired: bool = False  # replaced by a newer generation; closed when refs reaches 0


class EngineHolder:
    """The engine now serving. `acquire()` pins one generation for a whole RPC; `swap()` replaces it.

    A replaced generation is closed once its last in-flight RPC has finished (reference count), so no
    request ever sees a closed engine and none waits for a reload.
    """

    def __init__(self, engine: SearchEngine) -> None:
        self._lock = threading.Lock()
        self._current = Generation(engine, 1)
        self._live: list[Generation] = [self._current]  # not closed yet (current + retired with RPCs running)

    @property
    def current(self) -> Generation:
        return self._current

    @contextlib.contextmanager
    def acquire(self) -> Iterator[Generation]:
        with self._lock:
            gen = self._current
            gen.refs += 1
        try:
            yield gen
        finally:
            with self._lock:
                gen.refs -= 1
                finished = gen.retired and gen.refs == 0
            if finished:
                self._close(gen)

    def swap(self, engine: SearchEngine) -> Generation:
        """Make `engine` current; the old generation closes when its in-flight RPCs are done."""
        with self._lock:
            old = self._current
            new = Generation(engine, old.number + 1)
            self._current = new
            self._live.append(new)
            old.retired = True
            finished = old.refs == 0
        if finished:
            self._close(old)
        return new

    def _close(self, gen: Generation) -> None:
        """Release what `gen` alone holds: its KB, unless a live generation reuses the same handle."""
        with self._lock:
            if gen not in self._live:
                return
            self._live.remove(gen)
            shared = any(other.engine.kb is gen.engine.kb for other in self._live)
        if gen.engine.kb is not None and not shared:
            gen.engine.kb.close()
        _log.info("engine generation %d closed", gen.number)


class ReloadFailed(UserError):
    """A reload that did not happen; the previous engine is still serving (gRPC FAILED_PRECONDITION)."""


@dataclass
class ReloadOutcome:
    """What a successful reload loaded."""

    generation: Generation  # the generation now serving
    seconds: float  # time to build it


class Reloader:
    """Reopens index, KB and rewriter from the engine config's paths; one reload at a time.

    `callbacks` run first, each may raise to fail the reload (e.g. a token store's `reload`).
    """

    def __init__(self, holder: EngineHolder, open_engine: Callable[..., SearchEngine] | None = None) -> None:
        self.holder = holder
        self.callbacks: list[Callable[[], Any]] = []  # run on every reload before the engine is rebuilt
        self._open = open_engine or SearchEngine.open
        self._lock = threading.Lock()

    def reload(self) -> ReloadOutcome:
        """Build a new engine beside the old one and swap it in; on any error the old one keeps serving."""
        with self._lock:
            start = time.perf_counter()
            serving = self.holder.current
            try:
                for callback in self.callbacks:
                    callback()
                old, config = serving.engine, serving.engine.config
                # LMDB allows one open env per path and process: an unchanged KB version is shared, not reopened.
                reuse = old.kb if old.kb is not None and config.kb_dir and \
                    current_version(config.kb_dir) == old.kb.path else None
                # the model is kept when the index fits it, and with it the warm query-embedding cache
                engine = self._open(config, kb=reuse, clip=old.clip, text_cache=old.encoder)
            except Exception as err:  # noqa: BLE001 - whatever broke, the old engine keeps serving
                raise ReloadFailed(f"reload failed, still serving generation {serving.number}: {err}") from err
            gen = self.holder.swap(engine)
            seconds = time.perf_counter() - start
        _log.info("reloaded: generation %d, %d images, kb %s, in %.1f s", gen.number, engine.store.count,
                     engine.kb.path if engine.kb is not None else "none", seconds)
        return ReloadOutcome(gen, seconds)
