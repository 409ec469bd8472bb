"""The one place that builds a client channel to `evdsearch serve`: TLS credentials and the bearer token."""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput, NotFound

TOKEN_ENV = "EVDSEARCH_TOKEN"  # the token, when no --token-file is given
MAX_MESSAGE_BYTES = 16 * 1024 * 1024  # as large as the server's default, for image queries


@dataclass
class ClientSecurity:
    """How a client proves who it is and checks the server."""

    tls_ca: Path | None = None  # PEM CA (or the self-signed cert) that signed the server's certificate; set: TLS
    token: str | None = None  # bearer token sent as 'authorization: Bearer TOKEN' on every call
    tls_cert: Path | None = None  # client certificate, for servers that require mutual TLS
    tls_key: Path | None = None  # its private key
    server_name: str | None = None  # name to check the server certificate against, when not the host dialled


def add_client_security_options(p: argparse.ArgumentParser) -> None:
    """--tls-ca, --token-file, --tls-cert/--tls-key (mutual TLS), --tls-server-name; shared by every client."""
    p.add_argument("--tls-ca", type=Path, metavar="FILE",
                   help="PEM CA certificate that signed the server's (a self-signed server cert works): use TLS")
    p.add_argument("--token-file", type=Path, metavar="FILE",
                   help=f"file whose first line is the bearer token (default: the {TOKEN_ENV} variable, if set)")
    p.add_argument("--tls-cert", type=Path, metavar="FILE", help="client certificate, for a mutual-TLS server")
    p.add_argument("--tls-key", type=Path, metavar="FILE", help="private key of --tls-cert")
    p.add_argument("--tls-server-name", metavar="NAME",
                   help="host name the server certificate must carry, when it differs from the --server host")


def security_from_args(args: argparse.Namespace) -> ClientSecurity:
    """Checked flags -> ClientSecurity (the token from --token-file, else $EVDSEARCH_TOKEN)."""
    tls_ca = getattr(args, "tls_ca", None)
    cert, key = getattr(args, "tls_cert", None), getattr(args, "tls_key", None)
    if (cert is None) != (key is None):
        raise InvalidInput("give both --tls-cert and --tls-key (the client certificate and its key)")
    if cert is not None and tls_ca is None:
        raise InvalidInput("--tls-cert/--tls-key need --tls-ca (mutual TLS is TLS plus a client certificate)")
    for flag, path in (("--tls-ca", tls_ca), ("--tls-cert", cert), ("--tls-key", key)):
        if path is not None and not Path(path).is_file():
            raise NotFound(f"{flag}: no such file: {path}")
    return ClientSecurity(tls_ca=tls_ca, token=read_token(getattr(args, "token_file", None)), tls_cert=cert,
                          tls_key=key, server_name=getattr(args, "tls_server_name", None))


def read_token(path: Path | None) -> str | None:
    """The first non-blank line of `path`, else $EVDSEARCH_TOKEN, else None."""
    if path is None:
        return os.environ.get(TOKEN_ENV, "").strip() or None
    if not Path(path).is_file():
        raise NotFound(f"--token-file: no such file: {path}")
    lines = [line.strip() for line in Path(path).read_text(encoding="utf-8").splitlines() if line.strip()]
    if not lines:
        raise InvalidInput(f"--token-file {path} is empty")
    return lines[0]


@cache
def _interceptor_class() -> type:
    """A client interceptor class adding metadata to every call (built on first use: grpc loads lazily)."""
    import collections

    import grpc

    fields = ("method", "timeout", "metadata", "credentials", "wait_for_ready", "compression")

    class Details(collections.namedtuple("Details", fields), grpc.ClientCallDetails):
        pass

    class AddMetadata(grpc.UnaryUnaryClientInterceptor, grpc.UnaryStreamClientInterceptor,
                      grpc.StreamUnaryClientInterceptor, grpc.StreamStreamClientInterceptor):
        def __init__(self, metadata: tuple[tuple[str, str], ...]) -> None:
            self.metadata = metadata

        def _add(self, details: Any) -> Any:
            values = {name: getattr(details, name, None) for name in fields}
            values["metadata"] = (*tuple(details.metadata or ()), *self.metadata)
            return Details(**values)

        def intercept_unary_unary(self, continuation: Any, details: Any, request: Any) -> Any:
            return continuation(self._add(details), request)

        intercept_unary_stream = intercept_unary_unary

        def intercept_stream_unary(self, continuation: Any, details: Any, requests: Any) -> Any:
            return continuation(self._add(details), requests)

        intercept_stream_stream = intercept_stream_unary

    return AddMetadata


def bearer_metadata(token: str) -> tuple[tuple[str, str], ...]:
    """The call metadata the server's token check expects."""
    return (("authorization", f"Bearer {token}"),)


def open_channel(address: str, security: ClientSecurity | None = None,
                 options: Sequence[tuple[str, Any]] = ()) -> Any:
    """A grpc.Channel to `address` (host:port, or host:port,host:port,... / dns:///name:port for replicas,
    see targets.py): TLS when security.tls_ca is set (token as call credentials), else plaintext (token, if
    any, added by an interceptor); messages up to MAX_MESSAGE_BYTES both ways; the default service config
    (round robin, retries of idempotent calls on UNAVAILABLE, health checks of replicas)."""
    import grpc

    from evdsearch.client.targets import channel_options, grpc_target

    security = security or ClientSecurity()
    target = grpc_target(address)
    opts = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
            ("grpc.max_send_message_length", MAX_MESSAGE_BYTES), *channel_options(target), *options]
    if security.server_name:
        opts.append(("grpc.ssl_target_name_override", security.server_name))
    elif security.tls_ca is not None and target.target != address:
        # an address list has no single authority: check certificates against the first host, as written
        opts += [("grpc.ssl_target_name_override", target.first_host), ("grpc.default_authority", target.first)]
    if security.tls_ca is None:
        channel = grpc.insecure_channel(target.target, options=opts)
        if not security.token:
            return channel
        # gRPC refuses call credentials on plaintext channels, so the token goes in as metadata here
        return grpc.intercept_channel(channel, _interceptor_class()(bearer_metadata(security.token)))
    creds = grpc.ssl_channel_credentials(
        root_certificates=Path(security.tls_ca).read_bytes(),
        private_key=Path(security.tls_key).read_bytes() if security.tls_key else None,
        certificate_chain=Path(security.tls_cert).read_bytes() if security.tls_cert else None)
    if security.token:
        creds = grpc.composite_channel_credentials(creds, grpc.access_token_call_credentials(security.token))
    return grpc.secure_channel(target.target, creds, options=opts)
