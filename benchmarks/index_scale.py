"""Index scale benchmark: build time, size, QPS and recall@k of FAISS factories on clustered synthetic vectors."""

from __future__ import annotations

import os
import platform
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.benchmarks.synthetic_vectors import exact_topk, make_dataset, recall_at_k

DEFAULT_FACTORIES = ("Flat", "IVF1024,Flat", "IVF1024,PQ64", "HNSW32")


@dataclass
class IndexScaleConfig:
    """What `evdsearch bench index-scale` measures."""

    n: int = 1_000_000  # database vectors
    dim: int = 512  # vector dimension (CLIP ViT-B: 512)
    queries: int = 1000  # query vectors (held out, same distribution)
    factories: tuple[str, ...] = DEFAULT_FACTORIES  # faiss index_factory strings, measured in order
    device: str = "auto"  # cpu | gpu | auto (gpu when faiss-gpu sees one, then cpu)
    k: int = 10  # neighbours per query; recall@k is measured against exact search
    clusters: int = 1000  # Gaussian-mixture components, so IVF/PQ meet realistic structure
    latent_dim: int = 64  # intrinsic dimension: the mixture lives here and is projected up to `dim` (0: none)
    spread: float = 1.5  # within-cluster std relative to the centres' (1.0); 1.5 makes clusters overlap
    ambient: float = 0.1  # full-dimensional noise norm added after projection (relative to 1)
    seed: int = 0  # everything random derives from it
    nprobe: tuple[int, ...] = (1, 4, 16, 64)  # IVF operating points (lists probed per query)
    ef_search: tuple[int, ...] = (16, 64, 256)  # HNSW operating points (candidate list size)
    min_batch_seconds: float = 0.5  # batched search is repeated until it took at least this long
    single_seconds: float = 2.0  # time budget of the one-query-at-a-time loop per operating point
    threads: int = 0  # faiss OpenMP threads for CPU runs; 0 = faiss' default (all cores)


@dataclass
class Point:
    """One operating point of one index on one device."""

    params: dict[str, int]  # search parameters (nprobe / efSearch), empty for exact indexes
    recall: float  # recall@k against exact search
    batch_qps: float  # queries/s when all queries go in one call
    single_qps: float  # queries/s one query per call
    single_p50_ms: float  # median latency of a one-query call
    single_p99_ms: float


@dataclass
class FactoryResult:
    """Build cost and operating points of one factory on one device."""

    factory: str
    device: str  # cpu | gpu
    build_s: float = 0.0  # train + add (GPU: including copies to and from the GPU)
    size_mb: float = 0.0  # serialized index size
    rss_delta_mb: float | None = None  # process RSS growth over the build (CPU memory)
    points: list[Point] = field(default_factory=list)
    skipped: str = ""  # why it was not measured on this device, if it was not


def qps(count: int, seconds: float) -> float:
    """Queries per second; 0 when nothing was timed."""
    return count / seconds if seconds > 0 else 0.0


def time_batched(index: Any, queries: np.ndarray, k: int, min_seconds: float) -> tuple[float, np.ndarray]:
    """(QPS, ids) of whole-batch searches repeated until `min_seconds` passed (at least once)."""
    reps, elapsed, ids = 0, 0.0, None
    while reps == 0 or elapsed < min_seconds:
        start = time.perf_counter()
        _, ids = index.search(queries, k)
        elapsed += time.perf_counter() - start
        reps += 1
    return qps(reps * len(queries), elapsed), ids


def time_single(index: Any, queries: np.ndarray, k: int, budget_s: float) -> tuple[float, list[float]]:
    """(QPS, per-call seconds) of one-query calls, cycling through the queries until the budget is spent."""
    latencies: list[float] = []
    total = 0.0
    while total < budget_s and len(latencies) < 100 * len(queries):
        row = queries[len(latencies) % len(queries)][None, :]
        start = time.perf_counter()
        index.search(row, k)
        latencies.append(time.perf_counter() - start)
        total += latencies[-1]
    return qps(len(latencies), total), latencies


def operating_points(index: Any, cfg: IndexScaleConfig) -> list[dict[str, int]]:
    """Search parameters worth sweeping for this index type (none for exact or PQ-only indexes)."""
    import faiss

    ivf = faiss.try_extract_index_ivf(index)
    if ivf is not None:
        return [{"nprobe": p} for p in cfg.nprobe if p <= ivf.nlist] or [{"nprobe": ivf.nlist}]
    if getattr(faiss.downcast_index(index), "hnsw", None) is not None:
        return [{"efSearch": ef} for ef in cfg.ef_search]
    return [{}]


def rss_mb() -> float | None:
    """Resident memory of this process (Linux), or None elsewhere."""
    try:
        with open("/proc/self/statm") as handle:
            return int(handle.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20
    except (OSError, ValueError):
        return None


def serialized_mb(index: Any) -> float:
    from evdsearch.indexer import faiss_backend

    with tempfile.TemporaryDirectory(prefix="evd-index-scale-") as tmp:
        path = Path(tmp) / "index.faiss"
        faiss_backend.write(index, path)
        return path.stat().st_size / 2**20


def is_gpu_index(index: Any) -> bool:
    return type(index).__name__.startswith("Gpu")


def _measure_points(cpu_index: Any, device: str, queries: np.ndarray, truth: np.ndarray,
                    cfg: IndexScaleConfig) -> list[Point]:
    from evdsearch.indexer import faiss_backend

    points = []
    for params in operating_points(cpu_index, cfg):
        faiss_backend.set_search_params(cpu_index, params.get("nprobe", 1), params.get("efSearch", 16))
        # A GPU copy takes its search parameters from the CPU index, so copy again per operating point.
        index = faiss_backend.for_search(cpu_index, "cuda" if device == "gpu" else "cpu")
        batch_qps, ids = time_batched(index, queries, cfg.k, cfg.min_batch_seconds)
        single_qps, latencies = time_single(index, queries, cfg.k, cfg.single_seconds)
        ms = np.asarray(latencies) * 1000
        points.append(Point(params, recall_at_k(ids, truth, cfg.k), batch_qps, single_qps,
                            float(np.percentile(ms, 50)), float(np.percentile(ms, 99))))
        del index
    return points


def gpu_refusal(factory: str, dim: int) -> str:
    """Why faiss-gpu cannot hold this index type ("" when it can); checked on an empty index, so no build is wasted.

    The backend keeps such indexes on the CPU and logs why; that log line is the reason reported.
    """
    import logging

    from evdsearch.indexer import faiss_backend

    reasons: list[str] = []
    handler = logging.Handler(logging.INFO)
    handler.emit = lambda record: reasons.append(record.getMessage())  # type: ignore[method-assign]
    backend_log = logging.getLogger(faiss_backend.__name__)
    old_level = backend_log.level
    backend_log.addHandler(handler)
    backend_log.setLevel(logging.INFO)
    try:
        held = is_gpu_index(faiss_backend.for_search(faiss_backend.make_index(dim, factory), "cuda"))
    finally:
        backend_log.removeHandler(handler)
        backend_log.setLevel(old_level)
    return "" if held else "not on GPU: " + (reasons[-1] if reasons else "faiss-gpu kept it on the CPU")


def bench_factory(factory: str, device: str, base: np.ndarray, queries: np.ndarray, truth: np.ndarray,
                  cfg: IndexScaleConfig) -> FactoryResult:
    """Build `factory` over `base` on `device` (cpu | gpu) and measure every operating point."""
    from evdsearch.indexer import faiss_backend

    result = FactoryResult(factory, device)
    if device == "gpu" and (refusal := gpu_refusal(factory, base.shape[1])):
        result.skipped = refusal
        return result
    rss_before = rss_mb()
    start = time.perf_counter()
    cpu_index = faiss_backend.build(base, factory, "cuda" if device == "gpu" else "cpu")
    result.build_s = time.perf_counter() - start
    rss_after = rss_mb()
    result.rss_delta_mb = rss_after - rss_before if rss_before is not None and rss_after is not None else None
    result.size_mb = serialized_mb(cpu_index)
    result.points = _measure_points(cpu_index, device, queries, truth, cfg)
    return result


def environment() -> dict[str, Any]:
    """Where the numbers were taken: CPU, threads, faiss version, GPU name."""
    import subprocess

    import faiss

    from evdsearch.indexer import faiss_backend

    env: dict[str, Any] = {"machine": platform.machine(), "cpus": os.cpu_count(),
                           "faiss": getattr(faiss, "__version__", "?"), "omp_threads": faiss.omp_get_max_threads(),
                           "faiss_gpu": faiss_backend.gpu_available(), "gpu": ""}
    if env["faiss_gpu"]:
        try:
            env["gpu"] = subprocess.run(["nvidia-smi", "--query-gpu=name", "--format=csv,noheader"],
                                        capture_output=True, text=True, timeout=20).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            env["gpu"] = "(nvidia-smi not available)"
    return env


def devices_for(requested: str) -> list[str]:
    """cpu -> [cpu]; gpu -> [gpu] (error without faiss-gpu); auto -> gpu first when there is one, then cpu.

    GPU first because it is the quick part: a run cut off during a slow CPU build still has both devices.
    """
    from evdsearch.errors import InvalidInput
    from evdsearch.indexer import faiss_backend

    if requested not in ("cpu", "gpu", "auto"):
        raise InvalidInput(f"--device must be cpu, gpu or auto, not {requested!r}")
    has_gpu = requested != "cpu" and faiss_backend.gpu_available()
    if requested == "gpu" and not has_gpu:
        raise InvalidInput("--device gpu asked for, but faiss-gpu is not installed or sees no GPU; "
                           "use --device cpu")
    return (["gpu"] if has_gpu else []) + (["cpu"] if requested != "gpu" else [])


def run_index_scale(cfg: IndexScaleConfig, on_result: Callable[[dict[str, Any]], None] | None = None,
                    log: Callable[[str], None] = print) -> dict[str, Any]:
    """Generate the data, compute exact neighbours, then build and measure every factory on every device.

    `on_result` gets the partial result after each factory, so a long run that is cut off keeps its rows.
    """
    import faiss

    from evdsearch.errors import InvalidInput

    if cfg.n < 1 or cfg.queries < 1 or cfg.dim < 1 or cfg.k < 1 or not cfg.factories:
        raise InvalidInput("--n, --queries, --dim and --k must be positive, and --factories not empty")
    devices = devices_for(cfg.device)
    if cfg.threads:
        faiss.omp_set_num_threads(cfg.threads)
    result: dict[str, Any] = {"benchmark": "index-scale", "config": asdict(cfg), "environment": environment(),
                              "runs": []}
    t0 = time.perf_counter()
    base, queries = make_dataset(cfg)
    log(f"data: {cfg.n} x {cfg.dim} base + {cfg.queries} queries in {time.perf_counter() - t0:.1f} s")
    t0 = time.perf_counter()
    truth = exact_topk(base, queries, cfg.k)
    result["exact_search_s"] = time.perf_counter() - t0
    log(f"exact top-{cfg.k}: {result['exact_search_s']:.1f} s")
    from tqdm import tqdm

    with tqdm(total=len(devices) * len(cfg.factories), desc="index-scale", unit="index") as bar:
        for device in devices:
            for factory in cfg.factories:
                bar.set_postfix_str(f"{device}: {factory}")
                measured = bench_factory(factory, device, base, queries, truth, cfg)
                result["runs"].append(asdict(measured))
                best = max(measured.points, key=lambda p: p.recall, default=None)
                bar.write(f"{device}: {factory}: " + (measured.skipped or f"build {measured.build_s:.1f} s, "
                          f"{measured.size_mb:.0f} MB, best recall {best.recall:.3f} at {best.batch_qps:,.0f} QPS"))
                bar.update()
                if on_result:
                    on_result(result)
    return result
