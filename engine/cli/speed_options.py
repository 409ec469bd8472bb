"""`serve` options for speed: one thread budget, cross-request batching, the query embedding cache."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.engine.batcher import DEFAULT_MAX_BATCH, DEFAULT_WINDOW_MS, BatchConfig
from evdsearch.engine.threads import available_cores

DEFAULT_EMBEDDING_CACHE = 4096  # query-text embeddings kept (about 2 MiB at 512 dims)


def add_speed_options(p: argparse.ArgumentParser) -> None:
    """--threads, --batch-window-ms, --max-batch, --embedding-cache."""
    p.add_argument("--threads", type=int, default=available_cores(), metavar="N",
                   help="one thread budget for torch, onnxruntime and FAISS; encoder calls then run one at a time "
                        "(default: the cores, %(default)s here; 0: each library's own default)")
    p.add_argument("--batch-window-ms", type=float, default=DEFAULT_WINDOW_MS, metavar="MS",
                   help="gather concurrent Search calls for at most this long into one rewrite + encode + "
                        f"index search (default {DEFAULT_WINDOW_MS:g}; 0 turns batching off)")
    p.add_argument("--max-batch", type=int, default=DEFAULT_MAX_BATCH, metavar="N",
                   help=f"most Search calls in one batch (default {DEFAULT_MAX_BATCH})")
    p.add_argument("--embedding-cache", type=int, default=DEFAULT_EMBEDDING_CACHE, metavar="N",
                   help=f"query-text embeddings kept in an LRU cache (default {DEFAULT_EMBEDDING_CACHE}; 0: off); "
                        "hits and misses are reported by Info")


def speed_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The EngineConfig fields those options set, checked."""
    from evdsearch.engine.batcher import check_batch_config
    from evdsearch.errors import InvalidInput

    check_batch_config(BatchConfig(window_ms=args.batch_window_ms, max_batch=args.max_batch))  # before loading
    if args.threads < 0:
        raise InvalidInput(f"--threads must be 0 or positive, got {args.threads}")
    if args.embedding_cache < 0:
        raise InvalidInput(f"--embedding-cache must be 0 or positive, got {args.embedding_cache}")
    return {"threads": args.threads, "embedding_cache_size": args.embedding_cache}


def make_batcher(engine: Any, args: argparse.Namespace) -> Any:
    """A MicroBatcher for the server, or None when --batch-window-ms is 0 (bad values are refused either way)."""
    from evdsearch.engine.batcher import MicroBatcher, check_batch_config

    config = check_batch_config(BatchConfig(window_ms=args.batch_window_ms, max_batch=args.max_batch))
    return MicroBatcher(engine, config) if config.window_ms > 0 else None
