"""Hydration: index rows -> Hits with exact per-hit original / rewritten scores and stored captions."""

from __future__ import annotations

from typing import Any

import numpy as np

from evdsearch.search_api import Hit


def make_hit(item: Any, row: int, score: float, original: float, rewritten: float) -> Hit:
    """A Hit from an items.jsonl entry (a dict, or an object with uri / captions)."""
    get = item.get if isinstance(item, dict) else lambda key, default=None: getattr(item, key, default)
    return Hit(id=int(row), uri=str(get("uri", "")), score=float(score), original_score=float(original),
               rewritten_score=float(rewritten), captions=[str(c) for c in (get("captions", None) or [])])


def hydrate_hits(store: Any, scores: np.ndarray, ids: np.ndarray, k: int, q: np.ndarray,
                 q_rewritten: np.ndarray) -> list[Hit]:
    """The first k real hits (FAISS pads missing ones with id -1), in index order.

    `score` is the index's own score (what ranked the hit); original / rewritten scores are exact
    inner products with the stored embeddings, so they stay exact even on approximate indexes.
    """
    keep = [i for i in range(len(ids)) if ids[i] >= 0][:k]
    if not keep:
        return []
    rows = np.asarray(ids)[keep].astype(np.int64)
    vectors = np.asarray(store.embeddings[rows], dtype=np.float32)  # k rows read from the memmap
    original, rewritten = vectors @ q, vectors @ q_rewritten
    return [make_hit(store.item(int(row)), int(row), float(scores[i]), float(original[j]), float(rewritten[j]))
            for j, (i, row) in enumerate(zip(keep, rows.tolist(), strict=True))]
