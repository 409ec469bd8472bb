"""Recall@K for text<->image retrieval, defined as in LAION's CLIP_benchmark, blockwise in numpy.

Every caption is a query. Text->image: a hit when the caption's own image is in the top K.
Image->text: a hit when ANY of the image's captions is in the top K. Ties count against the query
(a collapsed model scoring everything equal gets recall ~K/N, not 1.0).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_KS = (1, 5, 10)


def text_to_image_ranks(text_emb: np.ndarray, image_emb: np.ndarray, text_to_image: np.ndarray,
                        block: int = 1024) -> np.ndarray:
    """For each caption, how many images score at least as high as its own image (0 = ranked first)."""
    ranks = np.empty(len(text_emb), dtype=np.int64)
    for start in range(0, len(text_emb), block):
        scores = text_emb[start : start + block] @ image_emb.T  # (block, n_images)
        rows = np.arange(scores.shape[0])
        own = scores[rows, text_to_image[start : start + block]]
        ranks[start : start + block] = (scores >= own[:, None]).sum(axis=1) - 1
    return ranks


def image_to_text_ranks(text_emb: np.ndarray, image_emb: np.ndarray, text_to_image: np.ndarray,
                        block: int = 256) -> np.ndarray:
    """For each image, how many other images' captions score at least as high as its best caption.

    Images without captions get rank len(text_emb) (never a hit); callers usually exclude them.
    """
    ranks = np.empty(len(image_emb), dtype=np.int64)
    for start in range(0, len(image_emb), block):
        scores = image_emb[start : start + block] @ text_emb.T  # (block, n_texts)
        own = text_to_image[None, :] == np.arange(start, start + scores.shape[0])[:, None]
        best = np.where(own, scores, -np.inf).max(axis=1)
        ranks[start : start + block] = ((scores >= best[:, None]) & ~own).sum(axis=1)
        ranks[start : start + block][~own.any(axis=1)] = len(text_emb)
    return ranks


def recall_from_ranks(ranks: np.ndarray, ks: Sequence[int] = DEFAULT_KS) -> dict[int, float]:
    """Fraction of queries whose rank is below K, for each K."""
    if len(ranks) == 0:
        return {k: float("nan") for k in ks}
    return {k: float((ranks < k).mean()) for k in ks}


def recall_at_k(text_emb: np.ndarray, image_emb: np.ndarray, text_to_image: Sequence[int],
                ks: Sequence[int] = DEFAULT_KS) -> dict[str, dict[int, float]]:
    """{"t2i": {K: recall}, "i2t": {K: recall}}; rows of both embeddings should be L2-normalised."""
    text_emb = np.asarray(text_emb, dtype=np.float32)
    image_emb = np.asarray(image_emb, dtype=np.float32)
    owners = np.asarray(text_to_image, dtype=np.int64)
    if len(owners) != len(text_emb):
        raise ValueError("text_to_image needs one image index per caption")
    i2t = image_to_text_ranks(text_emb, image_emb, owners)
    has_caption = np.bincount(owners, minlength=len(image_emb)) > 0
    return {"t2i": recall_from_ranks(text_to_image_ranks(text_emb, image_emb, owners), ks),
            "i2t": recall_from_ranks(i2t[has_caption], ks)}
