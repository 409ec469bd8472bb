"""Replicas: several servers over one index behind gRPC's own round_robin client-side load balancing."""

from __future__ import annotations

from pathlib import Path

import grpc
import pytest
from test_engine_support import build_index, open_engine

from evdsearch.benchmarks.serve_load import channel_options, check_target, grpc_caller, replica_addresses
from evdsearch.engine.grpc_server.server import build_server
from evdsearch.errors import InvalidInput


class Counting:
    """One replica's view of the shared engine: counts the searches it answered."""

    def __init__(self, engine: object) -> None:
        self.engine, self.searches = engine, 0

    def search(self, *args, **kwargs):
        self.searches += 1
        return self.engine.search(*args, **kwargs)

    def __getattr__(self, name: str):
        return getattr(self.engine, name)


def test_replica_target_parsing() -> None:
    target = "ipv4:127.0.0.1:5001,127.0.0.1:5002"
    assert replica_addresses(target) == ["127.0.0.1:5001", "127.0.0.1:5002"]
    assert replica_addresses("127.0.0.1:5001") == ["127.0.0.1:5001"]
    assert channel_options(target) == [("grpc.lb_policy_name", "round_robin")]
    assert channel_options("127.0.0.1:5001") == []
    assert check_target(target, allow_remote=False) == ("127.0.0.1", 5001)
    with pytest.raises(InvalidInput, match="not a loopback address"):
        check_target("ipv4:127.0.0.1:5001,10.1.2.3:5002", allow_remote=False)


def test_round_robin_spreads_requests_over_three_replicas(tmp_path: Path, tiny_clip_dir: Path) -> None:
    with open_engine(build_index(tmp_path, tiny_clip_dir), None, rewriter="none") as engine:
        replicas = [Counting(engine) for _ in range(3)]
        servers = [build_server(r, port=0, max_workers=2, max_message_bytes=1 << 20) for r in replicas]
        for s in servers:
            s.start()
        try:
            target = "ipv4:" + ",".join(f"127.0.0.1:{s.port}" for s in servers)
            with grpc.insecure_channel(target, options=channel_options(target)) as channel:
                grpc.channel_ready_future(channel).result(timeout=10)
            call, close = grpc_caller(target, "fused", k=3, explain=False, timeout_s=10, channels=1)
            try:
                results = [call("a red picture") for _ in range(30)]
            finally:
                close()
            assert all(r.ok for r in results)
            assert sum(r.searches for r in replicas) == 30
            assert all(r.searches >= 5 for r in replicas), [r.searches for r in replicas]  # every replica served
            servers[0].stop(0)  # one replica gone: the others keep answering
            call, close = grpc_caller(target, "fused", k=3, explain=False, timeout_s=10, channels=1)
            try:
                assert all(call("a blue picture").ok for _ in range(10))
            finally:
                close()
        finally:
            for s in servers:
                s.stop(0)
