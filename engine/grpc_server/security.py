"""Server security: TLS credentials from PEM files and bearer-token auth (a token file, a server interceptor)."""

from __future__ import annotations

import hmac
import json
import logging
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc

from evdsearch.errors import InvalidInput, NotFound

_log = logging.getLogger(__name__)
OPEN_SERVICES = ("grpc.health.v1.Health",)  # load-balancer / Kubernetes probes must work without a token
AUTH_HEADER = "authorization"  # gRPC metadata keys are lower case


@dataclass
class TlsFiles:
    """PEM files of `serve --tls-cert/--tls-key/--tls-client-ca`."""

    cert: Path  # the server's certificate chain
    key: Path  # its private key
    client_ca: Path | None = None  # CA that signs client certificates; set: mutual TLS (clients must present one)

    def credentials(self) -> grpc.ServerCredentials:
        pairs = [(_read_pem(self.key, "--tls-key"), _read_pem(self.cert, "--tls-cert"))]
        if self.client_ca is None:
            return grpc.ssl_server_credentials(pairs)
        return grpc.ssl_server_credentials(pairs, root_certificates=_read_pem(self.client_ca, "--tls-client-ca"),
                                           require_client_auth=True)

    def describe(self) -> str:
        """For the ready line."""
        return "mutual TLS" if self.client_ca is not None else "TLS"


def tls_files(cert: str | None, key: str | None, client_ca: str | None) -> TlsFiles | None:
    """The checked TLS flags: both cert and key, or none of the three."""
    if cert is None and key is None:
        if client_ca is not None:
            raise InvalidInput("--tls-client-ca needs --tls-cert and --tls-key (mutual TLS is TLS plus client certs)")
        return None
    if cert is None or key is None:
        raise InvalidInput("give both --tls-cert FILE and --tls-key FILE (or neither, for plaintext)")
    files = TlsFiles(Path(cert), Path(key), Path(client_ca) if client_ca else None)
    files.credentials()  # read and check the PEM files now, before a slow model load
    _check_pair(files.cert, files.key)
    return files


def _check_pair(cert: Path, key: Path) -> None:
    """Refuse a key that does not belong to the certificate (gRPC would only fail to bind, saying nothing)."""
    import ssl

    try:  # the empty password makes an encrypted key fail here instead of prompting on the terminal
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(cert, key, password=lambda: b"")
    except ssl.SSLError as err:
        raise InvalidInput(f"--tls-key {key} does not fit --tls-cert {cert}, or is encrypted "
                           f"(gRPC needs an unencrypted PEM key): {err.reason or err}") from err


def _read_pem(path: Path, flag: str) -> bytes:
    if not path.is_file():
        raise NotFound(f"{flag}: no such file: {path}")
    data = path.read_bytes()
    if b"-----BEGIN " not in data:
        raise InvalidInput(f"{flag}: {path} is not a PEM file (no '-----BEGIN' line)")
    return data


class TokenStore:
    """The accepted bearer tokens: one a line of a file (blank lines ignored); `reload()` re-reads it."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._lock = threading.Lock()
        self._tokens: tuple[bytes, ...] = ()
        self.reload()

    def reload(self) -> int:
        """Re-read the file (e.g. on SIGHUP); a missing or empty file keeps the old tokens and raises."""
        if not self.path.is_file():
            raise NotFound(f"token file not found: {self.path}")
        lines = self.path.read_text(encoding="utf-8").splitlines()
        tokens = tuple(line.strip().encode() for line in lines if line.strip())
        if not tokens:
            raise InvalidInput(f"token file {self.path} holds no token (one token per line)")
        bad = [i + 1 for i, t in enumerate(tokens) if any(c <= 32 or c == 127 for c in t)]
        if bad:
            raise InvalidInput(f"token file {self.path}: token {bad[0]} holds spaces or control characters")
        with self._lock:
            self._tokens = tokens
        return len(tokens)

    def accepts(self, token: str) -> bool:
        """Constant-time comparison with every token (no early exit, so timing does not tell which matched)."""
        given = token.encode()
        with self._lock:
            tokens = self._tokens
        matched = False
        for expected in tokens:
            matched |= hmac.compare_digest(given, expected)
        return matched


def check_authorization(metadata: Any, tokens: TokenStore) -> str | None:
    """None when the call carries `authorization: Bearer TOKEN` with an accepted token, else why not."""
    values = [value for key, value in (metadata or ()) if key == AUTH_HEADER]
    if not values:
        return "missing 'authorization' metadata: send 'authorization: Bearer TOKEN'"
    if len(values) > 1:
        return "malformed 'authorization' metadata: sent more than once"
    value = values[0] if isinstance(values[0], str) else ""
    scheme, _, token = value.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return "malformed 'authorization' metadata: expected 'Bearer TOKEN'"
    if not tokens.accepts(token.strip()):
        return "invalid token"
    return None


def _service_of(method: str) -> str:
    """'/pkg.Service/Method' -> 'pkg.Service'."""
    return method.lstrip("/").partition("/")[0]


def log_refusal(context: grpc.ServicerContext, method: str, reason: str) -> None:
    """One structured line per refused call: who (peer, client certificate name) and why; never the token."""
    entry = {"event": "refused", "peer": context.peer(), "method": method, "reason": reason}
    names = (context.auth_context() or {}).get("x509_common_name")
    if names:
        entry["client_cn"] = names[0].decode("utf-8", "replace")
    _log.warning("refused call %s", json.dumps(entry, ensure_ascii=False))


def refusing_handler(handler: grpc.RpcMethodHandler, code: grpc.StatusCode, message: str,
                     on_refuse: Callable[[grpc.ServicerContext], None] | None = None) -> grpc.RpcMethodHandler:
    """A handler of the same shape (unary/stream) as `handler` that answers `code` without running it
    (`on_refuse(context)` first, e.g. to log who was refused)."""

    def refuse(_request: Any, context: grpc.ServicerContext) -> Any:
        if on_refuse is not None:
            on_refuse(context)
        context.abort(code, message)

    def refuse_stream(request: Any, context: grpc.ServicerContext) -> Any:
        if on_refuse is not None:
            on_refuse(context)
        context.abort(code, message)
        yield  # pragma: no cover - abort raises; the yield makes this a generator

    kinds: dict[tuple[bool, bool], Callable[..., grpc.RpcMethodHandler]] = {
        (False, False): grpc.unary_unary_rpc_method_handler, (False, True): grpc.unary_stream_rpc_method_handler,
        (True, False): grpc.stream_unary_rpc_method_handler, (True, True): grpc.stream_stream_rpc_method_handler}
    shape = (handler.request_streaming, handler.response_streaming)
    return kinds[shape](refuse_stream if shape[1] else refuse, request_deserializer=handler.request_deserializer,
                        response_serializer=handler.response_serializer)


class TokenAuthInterceptor(grpc.ServerInterceptor):
    """Every service but OPEN_SERVICES needs a valid bearer token (so an admin service added later is
    covered without changes, and reflection follows the same rule); else UNAUTHENTICATED with why, and a
    log line (`log_refusal`)."""

    def __init__(self, tokens: TokenStore, open_services: tuple[str, ...] = OPEN_SERVICES) -> None:
        self.tokens = tokens
        self.open_services = frozenset(open_services)

    def intercept_service(self, continuation: Callable[[Any], Any], details: grpc.HandlerCallDetails) -> Any:
        handler = continuation(details)
        if handler is None or _service_of(details.method) in self.open_services:
            return handler
        problem = check_authorization(details.invocation_metadata, self.tokens)
        if problem is None:
            return handler
        return refusing_handler(handler, grpc.StatusCode.UNAUTHENTICATED, problem,
                                on_refuse=lambda context: log_refusal(context, details.method, problem))
