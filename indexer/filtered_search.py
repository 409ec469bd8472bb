"""Deep, filtered FAISS searches with stable pages: an ID selector in the search parameters, exact search over
the kept rows when a filter keeps few of them, and HNSW rankings defined bucket by bucket.

Why buckets: an HNSW search's candidate list grows with k (efSearch = max(efSearch, k)), so the top 30 of a
k=30 search need not start with the top 10 of a k=10 search. The ranking served is therefore defined in
buckets of depth (64, 128, 256, ...): positions [0, b0) are the top of one search with k = b0, positions
[b0, b1) the next hits of a search with k = b1 that were not already shown, and so on. Every page is a slice
of that one ranking, so pages never repeat or skip a hit. Flat and IVF searches keep their top-k order as k
grows (IVF probes the same lists for every k), so one search at the page's depth is enough there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from evdsearch.indexer import faiss_backend

SearchOnce = Callable[[int], tuple[np.ndarray, np.ndarray]]  # k -> (scores (n, k), ids (n, k)), best first


@dataclass(frozen=True)
class FilteredSearchConfig:
    """When a filtered search runs exactly over the kept rows instead of through the index."""

    exact_rows: int = 20_000  # a filter keeping at most this many rows is answered exactly (measured crossover)
    exact_fraction: float = 0.02  # ... or at most this fraction of the live rows
    max_boost: float = 16.0  # IVF nprobe / HNSW efSearch grow by 1 / selectivity, at most this factor
    first_bucket: int = 64  # HNSW: the first bucket of the ranking (raised to efSearch when that is larger)


@dataclass
class Page:
    """Candidates of a search, best first, for each query row."""

    scores: np.ndarray  # float32 (n, depth'), -inf where a row has fewer hits
    ids: np.ndarray  # int64 (n, depth'), -1 where a row has fewer hits
    plan: str  # how they were found, for explanations ("index", "exact over 37 rows", "selector, nprobe 64")


def exact_top(embeddings: Any, rows: np.ndarray, vectors: np.ndarray, depth: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-`depth` inner products of `vectors` over `rows`, best first, ties by lower id.

    FAISS's brute-force kNN rather than a numpy product: a (1, d) x (d, m) product goes to multi-threaded
    BLAS, which on a busy machine ran 20x slower than FAISS's single-query SIMD loop (measured, see
    docs/search.md)."""
    n = len(vectors)
    width = min(depth, len(rows))
    scores = np.full((n, depth), -np.inf, dtype=np.float32)
    ids = np.full((n, depth), -1, dtype=np.int64)
    if width == 0:
        return scores, ids
    kept = np.ascontiguousarray(embeddings[rows], dtype=np.float32)
    found_scores, found = faiss_backend.brute_force(np.ascontiguousarray(vectors, dtype=np.float32), kept, width)
    for i in range(n):
        valid = found[i] >= 0
        row_ids, row_scores = rows[found[i][valid]], found_scores[i][valid]
        order = np.lexsort((row_ids, -row_scores))
        scores[i, :len(order)], ids[i, :len(order)] = row_scores[order], row_ids[order]
    return scores, ids


def bucket_sizes(depth: int, first: int) -> list[int]:
    """The HNSW buckets a ranking to `depth` needs: first, 2*first, ... up to the one holding `depth`."""
    sizes = [first]
    while sizes[-1] < depth:
        sizes.append(sizes[-1] * 2)
    return sizes


def chained(search_once: SearchOnce, depth: int, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
    """The bucket-by-bucket ranking (see the module) to `depth`, for n query rows. A bucket that finds fewer
    new hits than it holds ends that row's ranking (deeper buckets are not asked), so it never has holes."""
    scores = np.full((n, depth), -np.inf, dtype=np.float32)
    ids = np.full((n, depth), -1, dtype=np.int64)
    filled = [0] * n
    open_rows = set(range(n))
    shown: list[set[int]] = [set() for _ in range(n)]
    for size in bucket_sizes(depth, first):
        if not open_rows:
            break
        got_scores, got_ids = search_once(size)
        for i in sorted(open_rows):
            for score, row in zip(got_scores[i].tolist(), got_ids[i].tolist(), strict=True):
                if filled[i] >= min(size, depth):
                    break
                if row >= 0 and row not in shown[i]:
                    shown[i].add(row)
                    scores[i, filled[i]], ids[i, filled[i]] = score, row
                    filled[i] += 1
            if filled[i] < min(size, depth) or filled[i] >= depth:
                open_rows.discard(i)
    return scores, ids


def boost(selectivity: float, config: FilteredSearchConfig) -> float:
    """How much more of the index a filtered search explores: 1 / selectivity, capped."""
    return min(config.max_boost, 1.0 / max(selectivity, 1e-9))


def search_page(index: Any, embeddings: Any, vectors: np.ndarray, depth: int, nprobe: int, ef_search: int,
                rows: np.ndarray | None = None, live: int = 0,
                config: FilteredSearchConfig = FilteredSearchConfig()) -> Page:
    """The top `depth` of each query row, over every live row or (with `rows`, a bool mask by id) the kept ones.

    A filter that keeps few rows (config.exact_rows / exact_fraction) is answered exactly from the embeddings;
    otherwise the index searches with an ID selector and nprobe / efSearch raised by 1 / selectivity.
    """
    vectors = np.ascontiguousarray(vectors, dtype=np.float32)
    n = len(vectors)
    kind = faiss_backend.index_kind(index)
    factor = 1.0
    plan = "index"
    if rows is not None:
        kept = np.flatnonzero(rows)
        live = max(live, 1)
        if len(kept) <= max(config.exact_rows, config.exact_fraction * live) or kind == "other":
            scores, ids = exact_top(embeddings, kept.astype(np.int64), vectors, depth)
            return Page(scores, ids, f"exact over {len(kept)} rows")
        factor = boost(len(kept) / live, config)
        plan = f"selector over {len(kept)} rows"
    probes = math.ceil(nprobe * factor)
    ef = math.ceil(ef_search * factor)

    def search_once(k: int) -> tuple[np.ndarray, np.ndarray]:
        if rows is None:  # the index's own parameters (set at open): the plain search, also on a GPU
            scores, ids = index.search(vectors, k)
        else:
            params, _keep = faiss_backend.search_params(index, rows, probes, ef)
            scores, ids = faiss_backend.search_with(index, vectors, k, params)
        scores[ids < 0] = -np.inf
        return scores, ids

    if kind == "ivf":
        plan += f", nprobe {probes}"
    if kind != "hnsw":
        return Page(*search_once(depth), plan)
    first = max(config.first_bucket, ef)
    return Page(*chained(search_once, depth, first, n), plan + f", efSearch {ef}, buckets from {first}")
