"""Replicas: several servers over one index behind gRPC's own round_robin client-side load balancing."""

from __future__ import annotations

import time
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


def test_server_lists_become_one_round_robin_target() -> None:
    from evdsearch.client.targets import SEARCH_SERVICE, grpc_target, service_config
    from evdsearch.proto.evdsearch.v1 import search_pb2

    assert SEARCH_SERVICE == search_pb2.DESCRIPTOR.services_by_name["SearchService"].full_name
    assert grpc_target("127.0.0.1:5001").target == "127.0.0.1:5001"
    assert not grpc_target("127.0.0.1:5001").replicas
    many = grpc_target("127.0.0.1:5001, 127.0.0.1:5002,127.0.0.1:5003")
    assert (many.target, many.replicas) == ("ipv4:127.0.0.1:5001,127.0.0.1:5002,127.0.0.1:5003", True)
    assert grpc_target("localhost:5001,localhost:5002").target == "ipv4:127.0.0.1:5001,127.0.0.1:5002"
    assert grpc_target("[::1]:5001,[::1]:5002").target == "ipv6:[::1]:5001,[::1]:5002"
    assert grpc_target("dns:///search.internal:50051").replicas  # a name for several replicas
    assert grpc_target("ipv4:127.0.0.1:1,127.0.0.1:2").target == "ipv4:127.0.0.1:1,127.0.0.1:2"
    with pytest.raises(InvalidInput, match="mixes IPv4-only and IPv6-only"):
        grpc_target("127.0.0.1:5001,[::1]:5002")
    with pytest.raises(InvalidInput, match="is not host:port"):
        grpc_target("127.0.0.1:5001,nope")
    config = service_config(replicas=True)
    assert config["loadBalancingConfig"] == [{"round_robin": {}}]
    assert config["healthCheckConfig"] == {"serviceName": SEARCH_SERVICE}
    methods = {n["method"] for n in config["methodConfig"][0]["name"]}
    assert methods == {"Search", "BatchSearch", "Rewrite", "Info"}  # idempotent: Reload is never retried
    assert config["methodConfig"][0]["retryPolicy"]["retryableStatusCodes"] == ["UNAVAILABLE"]
    assert "healthCheckConfig" not in service_config(replicas=False)  # one server: its own message gets through


def test_an_unhealthy_replica_is_skipped_and_rejoins(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """gRPC's client-side health checking (healthCheckConfig) through the CLI's own channel: a replica whose
    health service says NOT_SERVING gets no calls until it says SERVING again."""
    from grpc_health.v1 import health_pb2

    from evdsearch.client.channel import open_channel
    from evdsearch.engine.grpc_server.server import SERVICE_NAME
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    with open_engine(build_index(tmp_path, tiny_clip_dir), None, rewriter="none") as engine:
        replicas = [Counting(engine) for _ in range(3)]
        servers = [build_server(r, port=0, max_workers=2) for r in replicas]
        for s in servers:
            s.start()
        try:
            with open_channel(",".join(f"127.0.0.1:{s.port}" for s in servers)) as channel:
                stub = search_pb2_grpc.SearchServiceStub(channel)

                def spread(n: int) -> list[int]:
                    before = [r.searches for r in replicas]
                    for _ in range(n):
                        stub.Search(pb.SearchRequest(text="a red picture", k=2), timeout=10)
                    return [r.searches - b for r, b in zip(replicas, before, strict=True)]

                assert min(spread(30)) >= 5
                servers[0].health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.NOT_SERVING)
                time.sleep(0.5)  # the health watch stream tells the client
                skipped = spread(30)
                assert skipped[0] == 0 and sum(skipped) == 30, skipped
                servers[0].health.set(SERVICE_NAME, health_pb2.HealthCheckResponse.SERVING)
                time.sleep(0.5)
                assert min(spread(30)) >= 5
        finally:
            for s in servers:
                s.stop(0)


def test_tls_with_a_replica_list(tmp_path: Path, tiny_clip_dir: Path, pki: Path) -> None:
    """A list has no single authority: certificates are checked against the first host as written."""
    from evdsearch.client.channel import ClientSecurity, open_channel
    from evdsearch.engine.grpc_server.security import TlsFiles
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    with open_engine(build_index(tmp_path, tiny_clip_dir), None, rewriter="none") as engine:
        servers = [build_server(engine, port=0, max_workers=2, tls=TlsFiles(pki / "server.pem", pki / "server.key"))
                   for _ in range(2)]
        for s in servers:
            s.start()
        try:
            address = ",".join(f"localhost:{s.port}" for s in servers)
            with open_channel(address, ClientSecurity(tls_ca=pki / "ca.pem")) as channel:
                stub = search_pb2_grpc.SearchServiceStub(channel)
                assert all(len(stub.Search(pb.SearchRequest(text="red", k=1), timeout=10).hits) == 1
                           for _ in range(4))
        finally:
            for s in servers:
                s.stop(0)


def free_ports(n: int) -> int:
    """A base port with the n ports from it free on 127.0.0.1."""
    import random
    import socket

    for _ in range(100):
        base = random.randint(20000, 60000)
        try:
            for port in range(base, base + n):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
            return base
        except OSError:
            continue
    raise AssertionError("no free ports")


@pytest.mark.slow  # three `evdsearch serve` processes and a 60 s soak
def test_replicas_script_kills_one_replica_under_load(tmp_path: Path, tiny_clip_dir: Path) -> None:
    """scripts/replicas.sh's kill test at a small size: 8 clients for 60 s through the client's round robin,
    one replica killed with -9 at 6 s and restarted at 12 s: no failed request, and it rejoins."""
    import json
    import os
    import subprocess
    import sys

    from test_engine_support import build_kb

    root = Path(__file__).resolve().parent.parent
    index, kb, out = build_index(tmp_path, tiny_clip_dir), build_kb(tmp_path / "kb"), tmp_path / "out"
    env = {**os.environ, "KILL_AT": "6", "RESTART_AT": "12", "DURATION": "60", "CLIENTS": "8",
           "EVD": str(Path(sys.executable).parent / "evdsearch")}
    done = subprocess.run(["bash", "scripts/replicas.sh", str(index), str(kb), str(out), "3", str(free_ports(3))],
                          cwd=root, env=env, capture_output=True, text=True, timeout=900)
    print(done.stdout[-1500:])
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((out / "failover.json").read_text())
    assert result["errors"] == 0 and result["requests"] > 0 and result["info_errors"] == {}
    assert "killed -9 at" in done.stdout and "never" not in done.stdout
