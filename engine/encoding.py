"""Query encoding: original and rewritten query vectors for a batch, one CLIP call per modality."""

from __future__ import annotations

from typing import Any

import numpy as np

from evdsearch.engine.validation import Query
from evdsearch.search_api import RewriteResult


def mean_direction(vectors: np.ndarray) -> np.ndarray:
    """The L2-normalised mean of unit vectors (CLIP's prompt ensembling); one vector is returned as it is."""
    if len(vectors) == 1:
        return vectors[0]
    mean = vectors.mean(axis=0)
    return mean / max(float(np.linalg.norm(mean)), 1e-12)


def encode_rewrites(clip: Any, rewrites: list[tuple[str, list[str]]], **encode_options: Any) -> np.ndarray:
    """q' for (rewrite, variants) pairs, as the engine computes it: (n, dim) float32. `encode_options` go to
    `clip.encode_texts` (e.g. batch_size)."""
    texts = list(dict.fromkeys(t for text, variants in rewrites for t in (text, *variants)))
    vectors = clip.encode_texts(texts, **encode_options)
    if not rewrites:
        return np.asarray(vectors, dtype=np.float32)
    row = {t: i for i, t in enumerate(texts)}
    return np.stack([mean_direction(vectors[[row[t] for t in (text, *variants)]])
                     for text, variants in rewrites]).astype(np.float32)


def encode_queries(clip: Any, queries: list[Query], rewrites: list[RewriteResult | None]) -> tuple[np.ndarray, np.ndarray]:
    """(q, q') as float32 (n, dim), L2-normalised; q' = q wherever nothing was rewritten (images, embeddings).

    A rewrite with variants (the template ensemble) gets q' = the normalised mean of its texts' embeddings.
    Texts are de-duplicated, so a query whose rewrite equals it is encoded once.
    """
    texts: dict[str, int] = {}
    for query, rewrite in zip(queries, rewrites, strict=True):
        if rewrite is not None:
            for text in (query.text, rewrite.rewritten, *rewrite.variants):
                texts.setdefault(text, len(texts))
    text_vectors = clip.encode_texts(list(texts)) if texts else None
    images = [query.image for query in queries if query.image is not None]
    image_vectors = iter(clip.encode_pil_images(images)) if images else iter(())
    q, q_rewritten = [], []
    for query, rewrite in zip(queries, rewrites, strict=True):
        if rewrite is not None:
            q.append(text_vectors[texts[query.text]])
            q_rewritten.append(mean_direction(text_vectors[[texts[t] for t in (rewrite.rewritten, *rewrite.variants)]]))
            continue
        vector = next(image_vectors) if query.image is not None else query.vector
        q.append(vector)
        q_rewritten.append(vector)
    return np.stack(q).astype(np.float32), np.stack(q_rewritten).astype(np.float32)
