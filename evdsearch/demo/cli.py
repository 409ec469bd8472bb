"""`evdsearch demo`: the Gradio search page, over a server (--server) or one it starts itself (--index/--kb)."""

from __future__ import annotations

import argparse
import signal
from typing import Any

from evdsearch.client.channel import add_client_security_options
from evdsearch.device import DEVICE_CHOICES
from evdsearch.engine_options import add_description_options, add_fusion_options


def register(tree: Any) -> None:
    p = tree.add(None, "demo", help="a web page to try searches: original vs fused hits, entities, rewrites")
    p.add_argument("--server", metavar="HOST:PORT", help="use a running `evdsearch serve` (instead of --index)")
    p.add_argument("--index", metavar="INDEX_DIR",
                   help="index folder from `evdsearch index` (the demo starts its own `evdsearch serve` on it)")
    p.add_argument("--kb", metavar="KB_DIR", help="knowledge base folder (with --index)")
    p.add_argument("--rewriter", default="template", metavar="none|template|PATH",
                   help="query rewriter with --index: none, template (default), or a seq2seq model folder")
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where CLIP runs with --index")
    add_description_options(p)
    add_fusion_options(p)
    p.add_argument("--host", default="127.0.0.1", help="address of the page (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--port", type=int, default=7860, help="port of the page (default 7860)")
    p.add_argument("-k", type=int, default=8, help="hits shown at first (default 8)")
    p.add_argument("--timeout", type=float, default=10.0, metavar="S", help="gRPC deadline with --server (s)")
    add_client_security_options(p)
    p.add_argument("--image-root", metavar="DIR",
                   help="with --server: the folder the server's images are in here (its hits name them relative "
                        "to that folder unless it runs with --expose-paths)")
    p.add_argument("--auth", metavar="USER:PASS", help="ask for this user name and password before the page opens")
    p.set_defaults(run=run)


def open_backend(args: argparse.Namespace) -> Any:
    """A GrpcBackend for --server, else one over a `serve` of --index/--kb; flag mix-ups are UserErrors."""
    from evdsearch.errors import InvalidInput

    if args.server and args.index:
        raise InvalidInput("give either --server HOST:PORT or --index INDEX_DIR, not both")
    if args.server:
        if args.kb:
            raise InvalidInput("--kb goes with --index; with --server the server's knowledge base is used")
        from evdsearch.client.channel import security_from_args
        from evdsearch.demo.grpc_backend import GrpcBackend

        backend = GrpcBackend(args.server, timeout_s=args.timeout, security=security_from_args(args),
                              image_root=args.image_root)
        try:
            backend.info()  # fail now, with one clear line, if nothing answers there
        except Exception:
            backend.close()
            raise
        return backend
    if args.tls_ca or args.token_file or args.tls_cert:
        raise InvalidInput("--tls-ca, --token-file and --tls-cert go with --server (they secure the gRPC call)")
    if not args.index:
        raise InvalidInput("give --index INDEX_DIR [--kb KB_DIR] to search in-process, or --server HOST:PORT")
    from evdsearch.demo.local_serve import LocalServeBackend, serve_args

    return LocalServeBackend(serve_args(args), timeout_s=max(args.timeout, 60.0))


def parse_auth(text: str | None) -> tuple[str, str] | None:
    """"USER:PASS" -> (user, pass); both parts must be non-empty (the password may hold ':')."""
    from evdsearch.errors import InvalidInput

    if text is None:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise InvalidInput("--auth takes USER:PASS (both non-empty), e.g. --auth admin:s3cret")
    return user, password


def _interrupt(_signum: int, _frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM (docker stop, systemd) shuts down like Ctrl-C: server closed, KB released


def run(args: argparse.Namespace) -> int:
    from evdsearch.errors import InvalidInput, UserError

    if not 1 <= args.k <= 48:
        raise InvalidInput(f"-k must be from 1 to 48, got {args.k}")
    auth = parse_auth(args.auth)
    backend = open_backend(args)
    try:
        from evdsearch.demo.app import build_app, launch

        app = build_app(backend, k=args.k)
        try:
            url = launch(app, host=args.host, port=args.port, block=False, auth=auth)
        except OSError as err:
            raise UserError(f"cannot serve the demo on {args.host}:{args.port} ({err}); pick another --port") from None
        print(f"evdsearch: demo on {url} (engine: {backend.where}); Ctrl-C stops it", flush=True)
        signal.signal(signal.SIGTERM, _interrupt)
        app.block_thread()  # returns after Ctrl-C / SIGTERM, once the web server is closed
    finally:
        backend.close()
    return 0
