"""Retriever feedback for candidate rewrites: cosine to the caption's own image and rank in its batch."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evdsearch.engine.fusion import fuse_queries


@dataclass
class CandidateScores:
    """Scores of one caption's candidates (row i = candidate i)."""

    cosine: np.ndarray  # (n,) inner product of the (fused) query with the caption's own image
    rank: np.ndarray  # (n,) in-batch images scoring at least as high as the own image (0 = first)
    margin: np.ndarray  # (n,) own-image score minus the best other in-batch image's score


def score_candidates(original: np.ndarray, candidates: np.ndarray, batch_images: np.ndarray, own: int,
                     alpha: float = 0.5) -> CandidateScores:
    """Score each candidate as the engine would search with it: fused with the original query.

    `original` (dim,) and `candidates` (n, dim) are L2-normalised text embeddings; `batch_images`
    (m, dim) are the in-batch image embeddings with the caption's own image at row `own`.
    alpha=1 scores the rewrite alone; alpha=0.5 is the engine's default fusion.
    """
    queries = fuse_queries(np.broadcast_to(original, candidates.shape), candidates, alpha)
    scores = queries @ batch_images.T  # (n, m)
    own_scores = scores[:, own]
    others = np.delete(scores, own, axis=1)
    rank = (others >= own_scores[:, None]).sum(axis=1)  # ties count against the query, as in recall
    best_other = others.max(axis=1) if others.shape[1] else np.full(len(scores), -np.inf)
    return CandidateScores(own_scores.astype(np.float32), rank.astype(np.int64),
                           (own_scores - best_other).astype(np.float32))


def ranking(scores: CandidateScores) -> list[int]:
    """Candidate indices best first: lower in-batch rank, then higher cosine, then earlier candidate."""
    keys = [(int(r), -float(c), i) for i, (r, c) in enumerate(zip(scores.rank, scores.cosine, strict=True))]
    return [i for _, _, i in sorted(keys)]
