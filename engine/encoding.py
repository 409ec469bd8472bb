"""Query encoding: original and rewritten query vectors for a batch, one CLIP call per modality."""

from __future__ import annotations

from typing import Any

import numpy as np

from evdsearch.engine.api import RewriteResult
from evdsearch.engine.validation import Query


def encode_queries(clip: Any, queries: list[Query], rewrites: list[RewriteResult | None]) -> tuple[np.ndarray, np.ndarray]:
    """(q, q') as float32 (n, dim), L2-normalised; q' = q wherever nothing was rewritten (images, embeddings).

    Texts are de-duplicated, so a query whose rewrite equals it is encoded once.
    """
    texts: dict[str, int] = {}
    for query, rewrite in zip(queries, rewrites, strict=True):
        if rewrite is not None:
            texts.setdefault(query.text, len(texts))
            texts.setdefault(rewrite.rewritten, len(texts))
    text_vectors = clip.encode_texts(list(texts)) if texts else None
    images = [query.image for query in queries if query.image is not None]
    image_vectors = iter(clip.encode_pil_images(images)) if images else iter(())
    q, q_rewritten = [], []
    for query, rewrite in zip(queries, rewrites, strict=True):
        if rewrite is not None:
            q.append(text_vectors[texts[query.text]])
            q_rewritten.append(text_vectors[texts[rewrite.rewritten]])
            continue
        vector = next(image_vectors) if query.image is not None else query.vector
        q.append(vector)
        q_rewritten.append(vector)
    return np.stack(q).astype(np.float32), np.stack(q_rewritten).astype(np.float32)
