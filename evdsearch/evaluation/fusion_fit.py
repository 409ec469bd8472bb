"""The numbers behind `kb calibrate`: reciprocal ranks per fusion weight, a name's zero-shot familiarity, the
decreasing isotonic fit from familiarity to weight, and made-up stand-in names."""

from __future__ import annotations

import random
from typing import Any

import numpy as np

_SYLLABLES = ("ka", "zo", "ri", "mu", "te", "vo", "xi", "pla", "dru", "gen", "sor", "quo", "bli", "fen", "taz")


def nonce_name(rng: random.Random, taken: set[str]) -> str:
    """A made-up word no caption or entity uses: the stand-in for a name CLIP does not know.

    Three syllables while that space has room; one more syllable after each run of failed draws, so a large
    `taken` (thousands of stand-ins) never makes this loop forever.
    """
    syllables, misses = 3, 0
    while True:
        word = "".join(rng.choice(_SYLLABLES) for _ in range(syllables))
        if word not in taken:
            taken.add(word)
            return word
        misses += 1
        if misses % 64 == 0:
            syllables += 1


def reciprocal_ranks(q: np.ndarray, q_rw: np.ndarray, image_emb: np.ndarray, targets: np.ndarray,
                      grid: tuple[float, ...], block: int = 512) -> np.ndarray:
    """(captions, len(grid)) reciprocal rank of each caption's image under each fusion weight."""
    out = np.empty((len(q), len(grid)), dtype=np.float32)
    for start in range(0, len(q), block):
        s_o = q[start : start + block] @ image_emb.T
        s_r = q_rw[start : start + block] @ image_emb.T
        rows = np.arange(s_o.shape[0])
        tgt = targets[start : start + block]
        for j, alpha in enumerate(grid):
            fused = (1.0 - alpha) * s_o + alpha * s_r
            own = fused[rows, tgt]
            rank = (fused >= own[:, None]).sum(axis=1) - 1  # ties count against the caption (as recall.py)
            out[start : start + block, j] = 1.0 / (rank + 1.0)
    return out


def isotonic_decreasing(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots (x sorted, fitted y) of the least-squares non-increasing fit of y on x."""
    from scipy.optimize import isotonic_regression

    order = np.argsort(x, kind="stable")
    xs = np.asarray(x, dtype=np.float64)[order]
    fitted = isotonic_regression(np.asarray(y, dtype=np.float64)[order], increasing=False).x
    # Keep the ends of each constant block: the same piecewise-linear curve, a few knots to store.
    change = np.flatnonzero(np.diff(fitted) != 0)
    keep = np.unique(np.concatenate([[0, len(xs) - 1], change, change + 1]))
    return xs[keep], fitted[keep]


def apply_fit(knots: tuple[np.ndarray, np.ndarray], x: float) -> float:
    """The fitted weight at familiarity x (flat beyond the knots)."""
    return float(np.clip(np.interp(x, knots[0], knots[1]), 0.0, 1.0))


class Familiarity:
    """Zero-shot familiarity of a name with a set of descriptions, against the calibration images."""

    def __init__(self, clip: Any, image_emb: np.ndarray, top_k: int) -> None:
        self.clip, self.image_emb, self.top_k = clip, image_emb, top_k

    def __call__(self, names: list[str], description_sets: list[list[str]]) -> np.ndarray:
        from evdsearch.engine.rewriters.template import connect

        name_q = self.clip.encode_texts([f"a photo of a {n}" for n in names])
        desc_q = self.clip.encode_texts([
            "a photo of something which " + " and ".join(connect(t) for t in ds) if ds else "a photo"
            for ds in description_sets])
        k = min(self.top_k, len(self.image_emb))
        out = np.empty(len(names), dtype=np.float64)
        for i in range(len(names)):
            retrieved = np.argpartition(-(self.image_emb @ desc_q[i]), k - 1)[:k]
            by_name = self.image_emb @ name_q[i]
            # Percentile of each retrieved image under the name query, averaged: an AUC-like score.
            out[i] = float(np.mean([(by_name < by_name[j]).mean() for j in retrieved]))
        return out


def captions_or_prior(rr: np.ndarray, grid: tuple[float, ...], prior: float) -> float:
    """The captions' best grid weight only when it beats the familiarity fit's weight (`prior`, taken at its
    nearest grid point) by more than one standard error of the paired difference; else that grid point.

    Forty captions or fewer make the best of eleven weights partly noise: a seen entity's lucky 0.3 cost
    seen-entity recall on fresh worlds; the fit pools every entity and stand-in, so it is the safer default.
    """
    means = rr.mean(axis=0)
    best = int(np.argmax(means))
    near = int(np.argmin(np.abs(np.asarray(grid) - prior)))
    if len(rr) < 2:
        return float(grid[near])
    diff = rr[:, best] - rr[:, near]
    se = float(diff.std(ddof=1)) / np.sqrt(len(rr))
    return float(grid[best] if means[best] - means[near] > se else grid[near])
