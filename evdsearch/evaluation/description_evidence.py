"""Which of an entity's descriptions CLIP ties to the entity: evidence that ranks them before any rewriter sees them.

The engine hands the rewriter an entity's top descriptions. Imported in no useful order, they mix looks
("a small red circle"), facts ("grown in vegetable gardens") and mistakes ("a medium red circle"), and
a rewriter fed the wrong ones rewrites a query into another object. Where captioned images of the
entity exist, a description's evidence is how highly it ranks those images (mean percentile among the
calibration images); where none exist (a name no caption uses), it is how highly the entity's other
descriptions rank the images this one retrieves: a fact retrieves nothing in particular and a lone
mistake retrieves images the others do not. The KB's `kind` labels are never read.
"""

from __future__ import annotations

from typing import Any

import numpy as np

METHODS = ("captions", "consensus")  # how an entity's descriptions were ranked


def percentiles(scores: np.ndarray) -> np.ndarray:
    """(rows, images) scores -> each image's percentile in each row: the fraction of images ranked below it."""
    order = np.argsort(scores, axis=1, kind="stable")
    ranks = np.empty_like(order)
    np.put_along_axis(ranks, order, np.arange(scores.shape[1])[None, :], axis=1)
    return ranks / max(scores.shape[1] - 1, 1)


def description_evidence(text_emb: np.ndarray, image_emb: np.ndarray, own_images: list[int],
                         top_k: int) -> tuple[np.ndarray, str]:
    """Evidence of each description of ONE entity (rows of `text_emb`), and which of METHODS measured it."""
    scores = text_emb @ image_emb.T
    if own_images:
        return percentiles(scores)[:, own_images].mean(axis=1), "captions"
    n = len(text_emb)
    if n < 2:  # nothing to agree with
        return np.zeros(n), "consensus"
    # Standard scores, not percentiles: a description's best images all sit near percentile 1 under any
    # loosely related description, while how far above the mean they score still separates the two.
    z = (scores - scores.mean(axis=1, keepdims=True)) / (scores.std(axis=1, keepdims=True) + 1e-8)
    k = min(top_k, image_emb.shape[0])
    retrieved = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    agreement = [np.mean([z[j, retrieved[i]].mean() for j in range(n) if j != i]) for i in range(n)]
    return np.asarray(agreement), "consensus"


def rank_descriptions(clip: Any, image_emb: np.ndarray, kb: Any, own_images: dict[str, list[int]],
                      top_k: int) -> dict[str, int]:
    """Measure every entity's description evidence and store it in `kb` (writable), which re-ranks them.

    `own_images`: entity -> rows of `image_emb` whose captions name it. Returns entities ranked per method.
    """
    texts = {e: [d.text for d in kb.get(e)] for e in kb.entities()}
    flat = [t for ts in texts.values() for t in ts]
    emb = clip.encode_texts([f"a photo of {t}" for t in flat]) if flat else np.zeros((0, image_emb.shape[1]))
    evidence: dict[str, dict[str, float]] = {}
    counts = dict.fromkeys(METHODS, 0)
    start = 0
    for entity, ts in texts.items():
        if not ts:
            continue
        values, method = description_evidence(emb[start : start + len(ts)], image_emb,
                                              own_images.get(entity, []), top_k)
        start += len(ts)
        evidence[entity] = dict(zip(ts, values.tolist(), strict=True))
        counts[method] += 1
    kb.set_evidence(evidence)
    return counts
