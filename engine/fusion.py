"""Score fusion: one query vector whose inner products are the weighted average of two queries' scores."""

from __future__ import annotations

import numpy as np


def fuse_queries(q: np.ndarray, q_rewritten: np.ndarray, alpha: float | np.ndarray) -> np.ndarray:
    """`(1-alpha)*q + alpha*q'`, float32, *not* re-normalised.

    Inner products are linear, so for every image x: <x, fused> = (1-alpha)*<x, q> + alpha*<x, q'>.
    One index search with the fused vector therefore ranks by EvdCLIP's averaged score (alpha=0.5)
    without searching twice; re-normalising would rescale scores and break that equality.
    Works on single vectors (dim,) and batches (n, dim); for a batch, alpha may be one weight per row.
    """
    q = np.asarray(q, dtype=np.float32)
    q_rewritten = np.asarray(q_rewritten, dtype=np.float32)
    if q.shape != q_rewritten.shape:
        raise ValueError(f"query shapes differ: {q.shape} vs {q_rewritten.shape}")
    weight = np.asarray(alpha, dtype=np.float32)
    if weight.ndim == 1 and q.ndim == 2:
        weight = weight[:, None]
    return ((1.0 - weight) * q + weight * q_rewritten).astype(np.float32)
