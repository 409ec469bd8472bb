"""Client-side replicas: one gRPC target for `--server a,b,c`, and the default service config (round robin,
health-checked when there are several replicas, retries of idempotent calls on UNAVAILABLE).

Everything here is gRPC's own machinery, configured: the `ipv4:`/`ipv6:` resolvers take an address list,
`round_robin` spreads calls over the ready ones, `healthCheckConfig` makes it skip a replica whose health
service says NOT_SERVING (a draining server, a server whose Milvus is unreachable), and the method config's
`retryPolicy` retries a call that failed with UNAVAILABLE (a replica killed mid-call) on another one.
"""

from __future__ import annotations

import ipaddress
import json
import socket
from dataclasses import dataclass
from typing import Any

from evdsearch.errors import InvalidInput

SEARCH_SERVICE = "evdsearch.v1.SearchService"  # = the proto's full service name (tests check it)
IDEMPOTENT_METHODS = ("Search", "BatchSearch", "Rewrite", "Info")  # safe to send twice; Reload is not
RETRY_POLICY = {  # gRPC retry policy: up to 5 attempts, randomised exponential backoff from 0.1 s to 1 s
    "maxAttempts": 5, "initialBackoff": "0.1s", "maxBackoff": "1s", "backoffMultiplier": 2,
    "retryableStatusCodes": ["UNAVAILABLE"],
}
MAX_RECONNECT_BACKOFF_MS = 5000  # a replica that comes back is dialled again within ~5 s (gRPC's default: 120 s)
SCHEMES = ("dns:", "ipv4:", "ipv6:", "unix:", "unix-abstract:", "vsock:")


@dataclass
class Target:
    """What to hand grpc for a `--server` value."""

    target: str  # the gRPC target string ("127.0.0.1:50051", "ipv4:127.0.0.1:1,127.0.0.1:2", "dns:///h:p")
    replicas: bool  # several servers (a list or a dns: name): round robin skips unhealthy ones
    first_host: str  # host of the first address as written (for TLS name checks and the authority)
    first: str  # first address as written (host:port)


def split_host_port(address: str) -> tuple[str, int]:
    """'host:port' or '[v6]:port' -> (host, port)."""
    host, sep, port = address.strip().rpartition(":")
    if not sep or not port.isdigit() or not host:
        raise InvalidInput(f"--server: {address!r} is not host:port")
    return host.strip("[]"), int(port)


def _family_addresses(host: str, port: int) -> dict[int, list[str]]:
    """{AF_INET: [...], AF_INET6: [...]} for a host name or literal."""
    try:
        ip = ipaddress.ip_address(host)
    except ValueError:
        pass
    else:
        return {socket.AF_INET if ip.version == 4 else socket.AF_INET6: [str(ip)]}
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except OSError as err:
        raise InvalidInput(f"--server: cannot resolve {host!r} ({err.strerror or err})") from err
    found: dict[int, list[str]] = {}
    for family, *_rest, sockaddr in infos:
        found.setdefault(family, [])
        if sockaddr[0] not in found[family]:
            found[family].append(sockaddr[0])
    return found


def grpc_target(server: str) -> Target:
    """`--server` -> gRPC target. One host:port passes as it is; `a:1,b:2,c:3` (names resolved once, now)
    becomes `ipv4:…` or `ipv6:…`; a target with a scheme (`dns:///name:port`, `ipv4:…`) passes as it is and
    counts as replicas when it can name several servers."""
    server = server.strip()
    if server.startswith(SCHEMES):
        body = server.split(":", 1)[1].lstrip("/")
        first = body.split(",")[0]
        host = first.rpartition(":")[0].strip("[]") or first
        return Target(server, server.startswith("dns:") or "," in body, host, first)
    parts = [p.strip() for p in server.split(",") if p.strip()]
    if not parts:
        raise InvalidInput("--server is empty: give host:port, or host:port,host:port,... for replicas")
    if len(parts) == 1:
        host, _ = split_host_port(parts[0])
        return Target(parts[0], False, host, parts[0])
    hosts = [split_host_port(p) for p in parts]
    by_host = [_family_addresses(h, port) for h, port in hosts]
    for family, scheme in ((socket.AF_INET, "ipv4"), (socket.AF_INET6, "ipv6")):
        if all(family in found for found in by_host):
            addresses = [f"[{a}]:{port}" if scheme == "ipv6" else f"{a}:{port}"
                         for found, (_h, port) in zip(by_host, hosts, strict=True) for a in found[family]]
            return Target(f"{scheme}:{','.join(addresses)}", True, hosts[0][0], parts[0])
    raise InvalidInput(f"--server {server!r} mixes IPv4-only and IPv6-only hosts; list one family, or use a "
                       f"DNS name that resolves to all replicas (dns:///NAME:PORT)")


def service_config(replicas: bool) -> dict[str, Any]:
    """The default service config: round robin, retries of idempotent SearchService calls on UNAVAILABLE, and
    (with replicas) client-side health checking of SearchService. One server is not health-checked: its own
    UNAVAILABLE message (e.g. "Milvus at … is unreachable") then reaches the caller instead of gRPC's."""
    config: dict[str, Any] = {
        "loadBalancingConfig": [{"round_robin": {}}],
        "methodConfig": [{"name": [{"service": SEARCH_SERVICE, "method": m} for m in IDEMPOTENT_METHODS],
                          "retryPolicy": RETRY_POLICY}],
    }
    if replicas:
        config["healthCheckConfig"] = {"serviceName": SEARCH_SERVICE}
    return config


def channel_options(target: Target) -> list[tuple[str, Any]]:
    """Channel arguments that carry the service config (and a short reconnect backoff, so a replica that
    comes back rejoins within seconds)."""
    return [("grpc.service_config", json.dumps(service_config(target.replicas))), ("grpc.enable_retries", 1),
            ("grpc.max_reconnect_backoff_ms", MAX_RECONNECT_BACKOFF_MS)]
