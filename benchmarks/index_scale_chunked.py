"""Index scale beyond RAM: vectors generated, trained on a sample and added chunk by chunk (never all in memory)."""

from __future__ import annotations

import resource
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.benchmarks.index_scale import (
    IndexScaleConfig,
    Point,
    environment,
    operating_points,
    rss_mb,
    time_batched,
    time_single,
)
from evdsearch.benchmarks.synthetic_vectors import mixture_parameters, mixture_vectors, recall_at_k


@dataclass
class ChunkedResult:
    """One factory built chunk by chunk over `n` vectors, on the CPU."""

    factory: str
    device: str = "cpu"
    train_n: int = 0  # vectors the index was trained on (a sample: the first ones generated)
    train_s: float = 0.0  # training time
    add_s: float = 0.0  # adding every chunk (includes generating it and updating the exact top-k)
    build_s: float = 0.0  # train + add, wall
    size_mb: float = 0.0  # serialized index size
    bytes_per_image: float = 0.0  # serialized size / n
    peak_rss_mb: float = 0.0  # peak resident memory of the process (ru_maxrss)
    rss_delta_mb: float | None = None  # RSS after the build minus before (the index in memory)
    truth_queries: int = 0  # queries whose exact top-k was computed over all n (chunked brute force)
    points: list[Point] = field(default_factory=list)
    skipped: str = ""


def chunks(cfg: IndexScaleConfig, chunk: int) -> Iterator[tuple[int, np.ndarray]]:
    """(start row, vectors) of the base, `chunk` rows at a time; each chunk has its own seed (reproducible)."""
    centres, projection = mixture_parameters(cfg)
    seeds = np.random.SeedSequence([cfg.seed, 1]).spawn((cfg.n + chunk - 1) // chunk)
    for i, start in enumerate(range(0, cfg.n, chunk)):
        rows = min(chunk, cfg.n - start)
        yield start, mixture_vectors(rows, centres, projection, cfg.spread, cfg.ambient, np.random.default_rng(seeds[i]))


def queries_for(cfg: IndexScaleConfig) -> np.ndarray:
    centres, projection = mixture_parameters(cfg)
    return mixture_vectors(cfg.queries, centres, projection, cfg.spread, cfg.ambient,
                           np.random.default_rng(np.random.SeedSequence([cfg.seed, 2])))


class RunningTopK:
    """Exact top-k inner products over a base seen chunk by chunk (the brute force never holds the base)."""

    def __init__(self, queries: np.ndarray, k: int) -> None:
        self.queries, self.k = queries, k
        self.scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
        self.ids = np.empty((len(queries), 0), dtype=np.int64)

    def update(self, start: int, vectors: np.ndarray) -> None:
        scores = self.queries @ vectors.T
        kk = min(self.k, scores.shape[1])
        top = np.argpartition(-scores, kk - 1, axis=1)[:, :kk]
        all_scores = np.concatenate([self.scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        all_ids = np.concatenate([self.ids, top + start], axis=1)
        keep = np.argsort(-all_scores, axis=1, kind="stable")[:, : self.k]
        self.scores = np.take_along_axis(all_scores, keep, axis=1)
        self.ids = np.take_along_axis(all_ids, keep, axis=1)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def bench_chunked(factory: str, cfg: IndexScaleConfig, chunk: int, train_n: int, truth_queries: int,
                  log: Callable[[str], None] = print) -> ChunkedResult:
    """Train `factory` on the first `train_n` vectors, add all `cfg.n` chunk by chunk, then measure."""
    from evdsearch.indexer import faiss_backend

    result = ChunkedResult(factory)
    queries = queries_for(cfg)
    truth = RunningTopK(queries[:truth_queries], cfg.k)
    index = faiss_backend.make_index(cfg.dim, factory)
    rss_before = rss_mb()
    t_build = time.perf_counter()
    if not index.is_trained:
        sample = np.concatenate([v for _, v in _take(chunks(cfg, min(chunk, train_n)), train_n)])[:train_n]
        result.train_n = len(sample)
        t0 = time.perf_counter()
        index.train(sample)
        result.train_s = time.perf_counter() - t0
        del sample
        log(f"{factory}: trained on {result.train_n:,} vectors in {result.train_s:.1f} s")
    t0 = time.perf_counter()
    for start, vectors in chunks(cfg, chunk):
        index.add(vectors)
        truth.update(start, vectors)
        done = start + len(vectors)
        if (start // chunk) % 10 == 0 or done == cfg.n:
            log(f"{factory}: added {done:,}/{cfg.n:,} ({time.perf_counter() - t0:.0f} s, "
                f"peak RSS {peak_rss_mb():,.0f} MB)")
    result.add_s = time.perf_counter() - t0
    result.build_s = time.perf_counter() - t_build
    rss_after = rss_mb()
    result.rss_delta_mb = rss_after - rss_before if rss_before is not None and rss_after is not None else None
    result.peak_rss_mb = peak_rss_mb()
    with tempfile.TemporaryDirectory(prefix="evd-index-scale-") as tmp:
        path = Path(tmp) / "index.faiss"
        faiss_backend.write(index, path)
        result.size_mb = path.stat().st_size / 2**20
        result.bytes_per_image = path.stat().st_size / cfg.n
    result.truth_queries = len(truth.ids)
    for params in operating_points(index, cfg):
        faiss_backend.set_search_params(index, params.get("nprobe", 1), params.get("efSearch", 16))
        batch_qps, _ = time_batched(index, queries, cfg.k, cfg.min_batch_seconds)
        _, ids = index.search(queries[:truth_queries], cfg.k)
        single_qps, latencies = time_single(index, queries, cfg.k, cfg.single_seconds)
        ms = np.asarray(latencies) * 1000
        result.points.append(Point(params, recall_at_k(ids, truth.ids, cfg.k), batch_qps, single_qps,
                                   float(np.percentile(ms, 50)), float(np.percentile(ms, 99))))
        log(f"{factory} {params}: recall@{cfg.k} {result.points[-1].recall:.3f}, {batch_qps:,.0f} QPS batched")
    return result


def _take(it: Iterator[tuple[int, np.ndarray]], n: int) -> Iterator[tuple[int, np.ndarray]]:
    """Chunks from `it` until `n` rows were yielded."""
    seen = 0
    for start, vectors in it:
        if seen >= n:
            return
        seen += len(vectors)
        yield start, vectors


def run_index_scale_chunked(cfg: IndexScaleConfig, chunk: int, train_n: int, truth_queries: int,
                            on_result: Callable[[dict[str, Any]], None] | None = None,
                            log: Callable[[str], None] = print) -> dict[str, Any]:
    """Every factory of `cfg`, chunked, on the CPU; the result has the same "runs" layout as `run_index_scale`."""
    import faiss

    from evdsearch.errors import InvalidInput

    if chunk < 1 or train_n < 1 or not 1 <= truth_queries <= cfg.queries or cfg.latent_dim < 1:
        raise InvalidInput("--chunk-size, --train-size must be positive, --truth-queries in 1..--queries, "
                           "and --latent-dim positive for a chunked run")
    if cfg.threads:
        faiss.omp_set_num_threads(cfg.threads)
    result: dict[str, Any] = {"benchmark": "index-scale", "mode": "chunked", "config": asdict(cfg),
                              "chunk_size": chunk, "environment": environment(), "runs": []}
    for factory in cfg.factories:
        result["runs"].append(asdict(bench_chunked(factory, cfg, chunk, train_n, truth_queries, log)))
        if on_result:
            on_result(result)
    return result
