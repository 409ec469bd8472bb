"""Health follows the store: NOT_SERVING while the serving engine's store cannot answer (its Milvus server is
away), SERVING again once it does, so balancers and health-checking clients route around the replica."""

from __future__ import annotations

import logging
import threading
from typing import Any

from grpc_health.v1 import health_pb2

_log = logging.getLogger(__name__)
PROBE_EVERY_S = 1.0  # how often the store is asked (a Milvus probe is one get_load_state call)


class StoreHealthWatch(threading.Thread):
    """Probes `holder`'s current store every PROBE_EVERY_S (stores without `probe()`, FAISS, are always fine)
    and sets the health of `services` accordingly."""

    def __init__(self, holder: Any, health: Any, services: tuple[str, ...], every_s: float = PROBE_EVERY_S) -> None:
        super().__init__(daemon=True, name="evdsearch-store-health")
        self.holder, self.health, self.services, self.every_s = holder, health, services, every_s
        self.serving = True  # what was last reported
        self._done = threading.Event()

    def run(self) -> None:
        while not self._done.wait(self.every_s):
            with self.holder.acquire() as gen:
                probe = getattr(getattr(gen.engine, "store", None), "probe", None)
                problem = probe() if callable(probe) else None
            if (problem is None) != self.serving and not self._done.is_set():
                self.serving = problem is None
                status = health_pb2.HealthCheckResponse.SERVING if self.serving \
                    else health_pb2.HealthCheckResponse.NOT_SERVING
                for service in self.services:
                    self.health.set(service, status)
                _log.warning("health: %s%s", "SERVING" if self.serving else "NOT_SERVING",
                             "" if problem is None else f" ({problem})")

    def stop(self) -> None:
        self._done.set()
