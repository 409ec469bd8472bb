"""Small statistics for accuracy tables: mean ± 95 % CI over worlds and the exact McNemar test on paired images."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

# Two-sided 95 % Student-t quantiles by degrees of freedom (no scipy in the base install); 1.96 beyond 30.
_T95 = (12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.160, 2.145,
        2.131, 2.120, 2.110, 2.101, 2.093, 2.086, 2.080, 2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048,
        2.045, 2.042)


def t95(df: int) -> float:
    """The 97.5 % quantile of Student's t with `df` degrees of freedom."""
    if df < 1:
        raise ValueError("a t interval needs at least two values")
    return _T95[df - 1] if df <= len(_T95) else 1.96


def mean_ci(values: Sequence[float]) -> tuple[float, float]:
    """(mean, half-width of the 95 % t interval); half-width NaN for a single value."""
    x = np.asarray(values, dtype=np.float64)
    if x.size < 2:
        return float(x.mean()) if x.size else float("nan"), float("nan")
    return float(x.mean()), float(t95(x.size - 1) * x.std(ddof=1) / math.sqrt(x.size))


def binomial_ci(hits: np.ndarray) -> float:
    """Half-width (percent) of the normal 95 % interval of an accuracy over independent images (one world)."""
    p = float(np.mean(hits))
    return float(100.0 * 1.96 * math.sqrt(p * (1.0 - p) / hits.size)) if hits.size else float("nan")


def mcnemar(a: np.ndarray, b: np.ndarray) -> dict[str, float | int]:
    """Exact two-sided McNemar test of two classifiers' correctness on the same images: a right / b wrong
    (`a_only`) against the reverse (`b_only`), binomial with p = 1/2 on the discordant pairs."""
    a, b = np.asarray(a, dtype=bool), np.asarray(b, dtype=bool)
    if a.shape != b.shape:
        raise ValueError("McNemar needs both classifiers' results on the same images")
    a_only, b_only = int((a & ~b).sum()), int((~a & b).sum())
    n, k = a_only + b_only, min(a_only, b_only)
    if n == 0:
        return {"a_only": 0, "b_only": 0, "p": 1.0}
    tail = sum(math.comb(n, i) for i in range(k + 1)) / (1 << n)  # exact integers: n may pass 1,000
    return {"a_only": a_only, "b_only": b_only, "p": min(1.0, 2.0 * tail)}
