"""Filtered search on synthetic CLIP-like vectors: recall@k against exact filtered brute force and QPS at several
selectivities on Flat, IVF and HNSW (planned, selector-only, exact-only, unfiltered), the exact/selector
crossover, and FAISS vs Milvus (FLAT) ids under the same filters."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from evdsearch.filter_expr import parse_filter
from evdsearch.indexer import faiss_backend
from evdsearch.indexer.filter_eval import bind, evaluate
from evdsearch.indexer.filtered_search import FilteredSearchConfig, exact_top, search_page
from evdsearch.indexer.metadata import Column, MetadataTable, MetaField, Schema

PLANNED = FilteredSearchConfig()  # what the server does
SELECTOR_ONLY = FilteredSearchConfig(exact_rows=0, exact_fraction=0.0)
EXACT_ONLY = FilteredSearchConfig(exact_rows=1 << 62, exact_fraction=1.0)
TIE_TOLERANCE = 1e-6  # exact scores this close are a tie: float32 sums in another order differ by ~1e-7


@dataclass
class FilterBenchConfig:
    """What the filter half of `bench search-features` measures."""

    n: int = 100_000  # database vectors
    dim: int = 128  # dimension (the shapes world's CLIP)
    queries: int = 200  # query vectors (held out)
    k: int = 10  # recall@k
    factories: tuple[str, ...] = ("Flat", "IVF256,Flat", "HNSW32")  # index types
    selectivities: tuple[float, ...] = (0.5, 0.05, 0.005)  # fraction of rows a filter keeps
    crossover_rows: tuple[int, ...] = (100, 1_000, 3_000, 10_000, 30_000, 100_000)  # kept rows timed both ways
    nprobe: int = 32  # IVF lists probed (the server's default)
    ef_search: int = 64  # HNSW candidate list (the server's default)
    seconds: float = 1.5  # single-query timing budget per cell
    milvus_rows: int = 20_000  # rows loaded into Milvus Lite for the id comparison (0: skip)
    seed: int = 0
    workdir: str = "runs/bench/search-features/milvus"  # where the Milvus Lite file goes


@dataclass
class Cell:
    factory: str
    selectivity: float  # 1.0: unfiltered
    path: str  # planned | selector | exact | unfiltered
    recall: float
    qps: float
    plan: str = ""


@dataclass
class FilterBenchResult:
    config: dict[str, Any]
    cells: list[Cell] = field(default_factory=list)
    crossover: list[dict[str, Any]] = field(default_factory=list)  # {factory, rows, exact_ms, selector_ms}
    milvus: list[dict[str, Any]] = field(default_factory=list)  # {selectivity, same_ids[_up_to_ties], same_sets}
    build_seconds: dict[str, float] = field(default_factory=dict)


def _data(cfg: FilterBenchConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    from evdsearch.benchmarks.index_scale import IndexScaleConfig
    from evdsearch.benchmarks.synthetic_vectors import make_dataset

    base, queries = make_dataset(IndexScaleConfig(n=cfg.n, dim=cfg.dim, queries=cfg.queries, seed=cfg.seed,
                                                  clusters=max(16, cfg.n // 100)))
    bucket = np.random.default_rng(cfg.seed + 1).integers(0, 1000, cfg.n).astype(np.int64)
    return base, queries, bucket


def _table(bucket: np.ndarray) -> MetadataTable:
    meta = MetaField("bucket", "int")
    return MetadataTable(Schema([meta]), {"bucket": Column(meta, bucket, np.ones(len(bucket), bool))}, len(bucket))


def filter_text(selectivity: float) -> str:
    """The filter keeping `selectivity` of the rows: bucket is uniform over 0..999."""
    return f"bucket < {round(selectivity * 1000)}"


def _recall(found: np.ndarray, truth: np.ndarray) -> float:
    hits = [len(set(f[f >= 0].tolist()) & set(t[t >= 0].tolist())) / max(1, int((t >= 0).sum()))
            for f, t in zip(found, truth, strict=True)]
    return float(np.mean(hits))


def _qps(run: Any, queries: np.ndarray, seconds: float) -> float:
    """Single-query searches per second (one request at a time, as a server answers one)."""
    done, start = 0, time.perf_counter()
    while done < len(queries) and (done < 5 or time.perf_counter() - start < seconds):
        run(queries[done:done + 1])
        done += 1
    return done / (time.perf_counter() - start)


def _searcher(index: Any, base: np.ndarray, cfg: FilterBenchConfig, rows: np.ndarray | None = None,
              config: FilteredSearchConfig = PLANNED) -> Any:
    """queries -> Page, as the server's store searches (nprobe / efSearch at the server's defaults)."""
    return lambda q: search_page(index, base, q, cfg.k, cfg.nprobe, cfg.ef_search, rows=rows, live=cfg.n,
                                 config=config)


def measure(cfg: FilterBenchConfig, progress: Any = print) -> FilterBenchResult:
    base, queries, bucket = _data(cfg)
    table = _table(bucket)
    result = FilterBenchResult(asdict(cfg))
    masks = {s: evaluate(bind(parse_filter(filter_text(s)), table.schema), table) for s in cfg.selectivities}
    for factory in cfg.factories:
        start = time.perf_counter()
        index = faiss_backend.build(base, factory, device="cpu")
        faiss_backend.set_search_params(index, cfg.nprobe, cfg.ef_search)
        result.build_seconds[factory] = time.perf_counter() - start
        full = exact_top(base, np.arange(cfg.n), queries, cfg.k)[1]
        run = _searcher(index, base, cfg)
        page = run(queries)
        result.cells.append(Cell(factory, 1.0, "unfiltered", _recall(page.ids, full),
                                 _qps(run, queries, cfg.seconds), page.plan))
        for selectivity, rows in masks.items():
            truth = exact_top(base, np.flatnonzero(rows), queries, cfg.k)[1]
            for path, config in (("planned", PLANNED), ("selector", SELECTOR_ONLY),
                                 ("exact", EXACT_ONLY)):
                run = _searcher(index, base, cfg, rows, config)
                page = run(queries)
                result.cells.append(Cell(factory, selectivity, path, _recall(page.ids, truth),
                                         _qps(run, queries, cfg.seconds), page.plan))
            progress(f"{factory} at {selectivity:.1%}: " + ", ".join(
                f"{c.path} recall {c.recall:.3f} {c.qps:.0f} QPS" for c in result.cells[-3:]))
        result.crossover += _crossover(cfg, factory, index, base, queries)
    if cfg.milvus_rows:
        result.milvus = _milvus(cfg, base[:cfg.milvus_rows], queries, bucket[:cfg.milvus_rows])
    return result


def _crossover(cfg: FilterBenchConfig, factory: str, index: Any, base: np.ndarray, queries: np.ndarray
               ) -> list[dict[str, Any]]:
    """Per-query milliseconds of the exact path and the selector path as the kept rows grow."""
    out = []
    rng = np.random.default_rng(cfg.seed + 2)
    for rows_kept in (r for r in cfg.crossover_rows if r <= cfg.n):
        rows = np.zeros(cfg.n, dtype=bool)
        rows[rng.choice(cfg.n, rows_kept, replace=False)] = True
        cell = {"factory": factory, "rows": rows_kept}
        for path, config in (("exact", EXACT_ONLY), ("selector", SELECTOR_ONLY)):
            cell[f"{path}_ms"] = 1000.0 / _qps(_searcher(index, base, cfg, rows, config), queries, cfg.seconds)
        out.append(cell)
    return out


def tie_gap(a: list[int], b: list[int], base: np.ndarray, query: np.ndarray) -> float:
    """How far apart, in exact (float64) score, two ids that `a` and `b` put at the same rank are at worst:
    0.0 for the same ranking, inf for lists of different lengths. Two engines that score in float32 with a
    different summation order may order ids whose scores differ by ~1e-7 differently (also across the k-th
    place, where the tie decides which id is kept); a gap within TIE_TOLERANCE is such a tie."""
    if len(a) != len(b):
        return float("inf")
    swapped = [(x, y) for x, y in zip(a, b, strict=True) if x != y]
    if not swapped:
        return 0.0
    q = np.asarray(query, dtype=np.float64)
    return max(abs(float(base[x].astype(np.float64) @ q) - float(base[y].astype(np.float64) @ q))
               for x, y in swapped)


def _milvus(cfg: FilterBenchConfig, base: np.ndarray, queries: np.ndarray, bucket: np.ndarray) -> list[dict]:
    """FAISS Flat (planned) and Milvus Lite FLAT with the translated filter: same ids per query?"""
    from pathlib import Path

    from evdsearch.indexer.milvus_backend import MilvusTarget, client, create_collection, upsert_rows
    from evdsearch.indexer.milvus_filter import milvus_expression

    Path(cfg.workdir).mkdir(parents=True, exist_ok=True)
    target = MilvusTarget(str((Path(cfg.workdir) / "bench.db").resolve()), "bench_filters", "FLAT")
    create_collection(target, base.shape[1], replace=True)
    upsert_rows(target, np.arange(len(base)), base, [f"row-{i}" for i in range(len(base))],
                [{"bucket": int(b)} for b in bucket])
    table = _table(bucket)
    index = faiss_backend.build(base, "Flat", device="cpu")
    out = []
    for selectivity in cfg.selectivities:
        tree = bind(parse_filter(filter_text(selectivity)), table.schema)
        faiss_ids = search_page(index, base, queries, cfg.k, cfg.nprobe, cfg.ef_search,
                                rows=evaluate(tree, table), live=len(base)).ids
        answers = client(target.uri).search(target.collection, data=queries.tolist(), limit=cfg.k,
                                            filter=milvus_expression(tree), search_params={"metric_type": "IP"})
        milvus_ids = [[int(h["id"]) for h in hits] for hits in answers]
        pairs = [(f[f >= 0].tolist(), m) for f, m in zip(faiss_ids, milvus_ids, strict=True)]
        gaps = [tie_gap(f, m, base, q) for (f, m), q in zip(pairs, queries, strict=True)]
        out.append({"selectivity": selectivity, "filter": milvus_expression(tree), "queries": len(queries),
                    "rows": len(base), "same_ids": float(np.mean([f == m for f, m in pairs])),
                    "same_ids_up_to_ties": float(np.mean([g <= TIE_TOLERANCE for g in gaps])),
                    "same_sets": float(np.mean([set(f) == set(m) for f, m in pairs])),
                    "largest_swap_gap": max((g for g in gaps if g != float("inf")), default=0.0),
                    "tolerance": TIE_TOLERANCE})
    client(target.uri).drop_collection(target.collection)
    return out
