"""Synthetic CLIP-like vectors for the index benchmarks (a seeded Gaussian mixture), exact top-k and recall@k.

`cfg` is an IndexScaleConfig (n, dim, queries, clusters, latent_dim, spread, ambient, seed).
"""

from __future__ import annotations

from typing import Any

import numpy as np


def mixture_vectors(n: int, centres: np.ndarray, projection: np.ndarray | None, spread: float, ambient: float,
                    rng: np.random.Generator, chunk: int = 65536) -> np.ndarray:
    """`n` unit vectors: latent centre + Gaussian noise (`spread`), projected up, plus ambient noise, normalised.

    `projection` None: the mixture lives in the full space already (no projection).
    """
    latent = centres.shape[1]
    dim = projection.shape[1] if projection is not None else latent
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, chunk):
        stop = min(start + chunk, n)
        z = centres[rng.integers(0, len(centres), stop - start)]
        rows = z + spread * rng.standard_normal((stop - start, latent), dtype=np.float32)
        if projection is not None:
            rows = rows @ projection
        rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        if ambient:
            rows += rng.standard_normal(rows.shape, dtype=np.float32) * (ambient / np.sqrt(dim))
            rows /= np.linalg.norm(rows, axis=1, keepdims=True)
        out[start:stop] = rows
    return out


def mixture_parameters(cfg: Any) -> tuple[np.ndarray, np.ndarray | None]:
    """(centres, projection) of the seeded mixture; projection None for the isotropic variant (latent_dim 0).

    Real CLIP embeddings have a low intrinsic dimension and overlapping semantic clusters: a Gaussian
    mixture in a `latent_dim` space, randomly projected to `dim`, reproduces what matters to FAISS
    (IVF needs several lists for high recall, HNSW navigates well, PQ loses some neighbours).
    """
    rng = np.random.default_rng(np.random.SeedSequence(cfg.seed).spawn(3)[0])
    if cfg.latent_dim > 0:
        centres = rng.standard_normal((cfg.clusters, cfg.latent_dim), dtype=np.float32)
        projection = rng.standard_normal((cfg.latent_dim, cfg.dim), dtype=np.float32) / np.sqrt(cfg.latent_dim)
        return centres, projection
    # isotropic: unit centres in the full space (first version; high intrinsic dimension)
    centres = rng.standard_normal((cfg.clusters, cfg.dim), dtype=np.float32)
    centres *= np.sqrt(cfg.dim) / np.linalg.norm(centres, axis=1, keepdims=True)
    return centres, None


def make_dataset(cfg: Any) -> tuple[np.ndarray, np.ndarray]:
    """(base, queries), seeded; queries come from the same mixture (`mixture_parameters`) but are not in the base."""
    seeds = np.random.SeedSequence(cfg.seed).spawn(3)
    draw = (*mixture_parameters(cfg), cfg.spread, cfg.ambient)
    base = mixture_vectors(cfg.n, *draw, np.random.default_rng(seeds[1]))
    queries = mixture_vectors(cfg.queries, *draw, np.random.default_rng(seeds[2]))
    return base, queries


def exact_topk(base: np.ndarray, queries: np.ndarray, k: int, chunk: int = 131072) -> np.ndarray:
    """Ids (nq, k) of the k largest inner products, best first (numpy, chunked over the base)."""
    best_scores = np.full((len(queries), 0), -np.inf, dtype=np.float32)
    best_ids = np.empty((len(queries), 0), dtype=np.int64)
    for start in range(0, len(base), chunk):
        scores = queries @ base[start:start + chunk].T
        top = np.argpartition(-scores, min(k, scores.shape[1]) - 1, axis=1)[:, :k]
        best_scores = np.concatenate([best_scores, np.take_along_axis(scores, top, axis=1)], axis=1)
        best_ids = np.concatenate([best_ids, top + start], axis=1)
        keep = np.argsort(-best_scores, axis=1, kind="stable")[:, :k]
        best_scores = np.take_along_axis(best_scores, keep, axis=1)
        best_ids = np.take_along_axis(best_ids, keep, axis=1)
    return best_ids


def recall_at_k(found: np.ndarray, truth: np.ndarray, k: int) -> float:
    """Mean over queries of |found top-k ∩ true top-k| / k (faiss' "k-recall@k"); -1 ids never match."""
    hits = sum(len((set(f[:k].tolist()) - {-1}) & set(t[:k].tolist())) for f, t in zip(found, truth, strict=True))
    return hits / (k * len(truth)) if len(truth) else 0.0
