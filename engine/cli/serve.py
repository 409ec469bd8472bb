"""`evdsearch serve`: load an index + knowledge base + rewriter and answer SearchService over gRPC."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import threading
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.engine.cli.speed_options import add_speed_options
from evdsearch.engine.grpc_server.limits import DEFAULT_MAX_CONCURRENT, DEFAULT_MAX_REQUEST_S
from evdsearch.engine_options import ALPHA_HELP, add_description_options, add_fusion_options
from evdsearch.search_api import DEFAULT_ALPHA

EXAMPLE_QUERY = "a tomato next to a school bus"  # used in the ready line when the KB has no entities


def register(tree: Any) -> None:
    p = tree.add(None, "serve", help="serve an index over gRPC (SearchService, health, reflection)")
    p.add_argument("--index", required=True, metavar="INDEX_DIR", help="index folder from `evdsearch index`")
    p.add_argument("--kb", metavar="KB_DIR", help="knowledge base folder from `evdsearch kb import`")
    p.add_argument("--rewriter", default="template", metavar="none|template|PATH",
                   help="query rewriter: none, template (default), or a seq2seq model folder")
    p.add_argument("--port", type=int, default=50051, help="port to listen on (0: any free port; default 50051)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1; 0.0.0.0 for all)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, metavar="A", help=ALPHA_HELP)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES, help="where CLIP and the rewriter run")
    p.add_argument("--text-encoder", default="auto", choices=("auto", "torch", "onnx", "onnx-int8"),
                   help="CLIP text tower: auto (onnxruntime when the checkpoint has a current onnx/clip_text.onnx "
                        "from `evdsearch train export-onnx --clip CKPT`, else torch), torch, onnx, or onnx-int8 "
                        "(int8 weights; CPUs with VNNI/AMX only)")
    p.add_argument("--text-onnx", metavar="DIR", help="the text export's folder when it is not CKPT/onnx")
    add_description_options(p)
    add_fusion_options(p)
    p.add_argument("--workers", type=int, default=4, help="RPC worker threads (default 4)")
    add_speed_options(p)
    p.add_argument("--model", help="CLIP to load instead of the one in the index manifest (must match it)")
    p.add_argument("--pretrained", help="pretrained tag or weights file for --model")
    p.add_argument("--backend", choices=("faiss", "milvus"),
                   help="expect an index of this backend (default: whatever its manifest names)")
    p.add_argument("--milvus-uri", help="Milvus-backed index: Milvus Lite file or server address overriding the "
                                        "manifest's")
    p.add_argument("--skip-checksums", action="store_true",
                   help="do not re-hash the index and KB files against their SHA256SUMS at start and reload "
                        "(faster for very large indexes; damage is then not refused)")
    p.add_argument("--max-message-mb", type=float, default=16.0, help="largest request/response in MiB")
    p.add_argument("--grace", type=float, default=5.0, help="seconds in-flight RPCs get on shutdown")
    add_security_options(p)
    p.set_defaults(run=run)


def add_security_options(p: argparse.ArgumentParser) -> None:
    """TLS, tokens, the in-flight bound and path exposure (see docs/reliability.md)."""
    p.add_argument("--tls-cert", metavar="FILE", help="PEM certificate chain: serve TLS (with --tls-key)")
    p.add_argument("--tls-key", metavar="FILE", help="PEM private key of --tls-cert")
    p.add_argument("--tls-client-ca", metavar="FILE",
                   help="PEM CA that signs client certificates: mutual TLS (clients without one are refused)")
    p.add_argument("--auth-token-file", metavar="FILE",
                   help="accepted bearer tokens, one a line: every RPC but health needs "
                        "metadata 'authorization: Bearer TOKEN'")
    p.add_argument("--max-concurrent", type=int, default=DEFAULT_MAX_CONCURRENT, metavar="N",
                   help=f"in-flight RPCs; more answer RESOURCE_EXHAUSTED at once (default {DEFAULT_MAX_CONCURRENT})")
    p.add_argument("--max-request-seconds", type=float, default=DEFAULT_MAX_REQUEST_S, metavar="S",
                   help="longest one search RPC may run, whether or not the client set a deadline; longer "
                        f"ones answer DEADLINE_EXCEEDED (default {DEFAULT_MAX_REQUEST_S:g}; 0: no bound)")
    p.add_argument("--expose-paths", action="store_true",
                   help="hits carry absolute server paths (default: relative to the index's image folder)")


def _example_query(engine: Any) -> str:
    entities = engine.kb.entities()[:1] if engine.kb is not None else []
    if not entities:
        return EXAMPLE_QUERY
    article = "an" if entities[0][:1].lower() in "aeiou" else "a"
    return f"a photo of {article} {entities[0]}"


def _text_encoder_name(engine: Any) -> str:
    from evdsearch.engine.onnx_clip_text import ClipWithOnnxText

    return f"onnxruntime {engine.clip.text_precision}" if isinstance(engine.clip, ClipWithOnnxText) else "torch"


def _wait_for_signal(on_hup: Any = None) -> int:
    """Block until SIGTERM or SIGINT; returns the signal number. SIGHUP runs `on_hup()` in a thread."""
    received: list[int] = []
    done = threading.Event()

    def handler(signum: int, _frame: Any) -> None:
        received.append(signum)
        done.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
    if on_hup is not None:  # the reload is slow (model load): never in the signal handler itself
        signal.signal(signal.SIGHUP, lambda _s, _f: threading.Thread(target=on_hup, name="evdsearch-reload",
                                                                        daemon=True).start())
    while not done.wait(1.0):  # a timed wait keeps the main thread responsive to signals
        pass
    return received[0]


def _reload_on_signal(reloader: Any) -> None:
    """SIGHUP: reopen index, KB and rewriter; one line either way (a failure keeps the old engine serving)."""
    from evdsearch.engine.reload import ReloadFailed

    try:
        outcome = reloader.reload()
    except ReloadFailed as err:
        print(f"evdsearch: SIGHUP: {err}", flush=True)
        return
    gen = outcome.generation
    info = gen.engine.info()
    print(f"evdsearch: SIGHUP: reloaded in {outcome.seconds:.1f} s, now serving generation {gen.number} "
          f"({info.index_size} images, {info.kb_entities} entities, rewriter {info.rewriter})", flush=True)


def run(args: argparse.Namespace) -> int:
    from evdsearch.engine.alpha import describe
    from evdsearch.engine.cli.config import engine_config
    from evdsearch.engine.cli.speed_options import make_batcher
    from evdsearch.engine.grpc_server.security import TokenStore, tls_files
    from evdsearch.engine.grpc_server.server import build_server
    from evdsearch.engine.search import SearchEngine
    from evdsearch.errors import InvalidInput

    if args.workers < 1:
        raise InvalidInput(f"--workers must be at least 1, got {args.workers}")
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # a SIGHUP while loading must not kill us; reloads once serving
    config = engine_config(args)
    if not args.max_request_seconds >= 0:
        raise InvalidInput(f"--max-request-seconds must be 0 or more, got {args.max_request_seconds:g}")
    if args.max_concurrent < 1:
        raise InvalidInput(f"--max-concurrent must be at least 1, got {args.max_concurrent}")
    tls = tls_files(args.tls_cert, args.tls_key, args.tls_client_ca)
    tokens = TokenStore(args.auth_token_file) if args.auth_token_file else None
    engine = SearchEngine.open(config)
    batcher = make_batcher(engine, args)
    running = build_server(engine, port=args.port, max_workers=args.workers, host=args.host,
                           max_message_bytes=int(args.max_message_mb * 1024 * 1024), tls=tls, tokens=tokens,
                           max_concurrent=args.max_concurrent, expose_paths=args.expose_paths, batcher=batcher,
                           max_request_s=args.max_request_seconds or None)
    running.start()
    info = engine.info()
    target = f"localhost:{running.port}" if args.host in ("127.0.0.1", "localhost", "0.0.0.0", "::") \
        else running.address
    print(f"evdsearch: serving evdsearch.v1.SearchService on {running.address} "
          f"({info.index_size} images, {info.kb_entities} entities, rewriter {info.rewriter}, {info.device}, "
          f"text encoder {_text_encoder_name(engine)}, {describe(engine.alpha_policy)}, {running.transport})",
          flush=True)
    if tokens and not tls and args.host not in ("127.0.0.1", "localhost", "::1"):
        print(f"evdsearch: warning: tokens travel in clear text to {args.host}; anyone on the network can read "
              f"them: add --tls-cert FILE --tls-key FILE", flush=True)
    client_flags = (" --tls-ca CA.pem" if tls else "") + (" --token-file TOKEN_FILE" if tokens else "")
    print(f"try: evdsearch search {shlex.quote(_example_query(engine))} --server {target} -k 10 --explain"
          f"{client_flags}", flush=True)
    print(f"reload: kill -HUP {os.getpid()} (or AdminService.Reload) reopens the index, KB, rewriter"
          f"{' and token file' if tokens else ''}", flush=True)
    signum = _wait_for_signal(on_hup=lambda: _reload_on_signal(running.reloader))
    print(f"evdsearch: {signal.Signals(signum).name} received, draining for up to {args.grace:g} s", flush=True)
    running.stop(args.grace)
    if batcher is not None:  # calls still queued were cancelled by the stop: fail them, do not encode them
        batcher.close(answer_queued=False)
    print("evdsearch: server stopped", flush=True)
    return 0
