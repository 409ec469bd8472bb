"""A softmax linear probe trained with SGD, its checkpoints, and TracIn influence in closed form.

For a linear softmax classifier (W, b) on input x with label y, the loss gradient is
g ⊗ [x, 1] with g = softmax(Wx + b) - onehot(y), so the TracIn dot product of two examples is
(g_i · g_j)(x_i · x_j + 1): no autograd needed, and the whole train × val matrix is two matmuls.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Checkpoint:
    """Probe weights saved after an epoch, with the learning rate used to reach them (TracIn's η_k)."""

    W: np.ndarray  # (C, D)
    b: np.ndarray  # (C,)
    lr: float


def softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


def residuals(ckpt: Checkpoint, X: np.ndarray, y: np.ndarray) -> np.ndarray:
    """g = softmax(XWᵀ + b) - onehot(y): the per-example gradient w.r.t. the logits, (N, C)."""
    g = softmax(X @ ckpt.W.T + ckpt.b)
    g[np.arange(len(y)), y] -= 1.0
    return g


def cross_entropy(ckpt: Checkpoint, X: np.ndarray, y: np.ndarray) -> float:
    p = softmax(X @ ckpt.W.T + ckpt.b)
    return float(-np.log(np.maximum(p[np.arange(len(y)), y], 1e-12)).mean())


def sgd_epochs(ckpt: Checkpoint, X: np.ndarray, y: np.ndarray, epochs: int, lr: float, batch_size: int,
               rng: np.random.Generator, weights: np.ndarray | None = None) -> list[Checkpoint]:
    """Mini-batch SGD on mean (optionally weighted) cross-entropy; one checkpoint per epoch."""
    W, b = ckpt.W.copy(), ckpt.b.copy()
    w = np.ones(len(y), dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64)
    saved = []
    for _ in range(epochs):
        order = rng.permutation(len(y))
        for start in range(0, len(y), batch_size):
            idx = order[start : start + batch_size]
            g = residuals(Checkpoint(W, b, lr), X[idx], y[idx]) * w[idx, None] / len(idx)
            W -= lr * g.T @ X[idx]
            b -= lr * g.sum(axis=0)
        saved.append(Checkpoint(W.copy(), b.copy(), lr))
    return saved


def train_probe(X: np.ndarray, y: np.ndarray, n_classes: int, epochs: int = 30, lr: float = 2.0,
                batch_size: int = 32, seed: int = 0) -> list[Checkpoint]:
    """Train from zeros; returns the checkpoint after every epoch (the last one is the final probe)."""
    start = Checkpoint(np.zeros((n_classes, X.shape[1])), np.zeros(n_classes), lr)
    return sgd_epochs(start, X, y, epochs, lr, batch_size, np.random.default_rng(seed))


def tracin(ckpts: list[Checkpoint], X_train: np.ndarray, y_train: np.ndarray, X_val: np.ndarray,
           y_val: np.ndarray) -> np.ndarray:
    """TracIn(z_i, z'_j) = Σ_k η_k ∇L(z_i; θ_k) · ∇L(z'_j; θ_k), as an (N_train, N_val) matrix.

    Positive: a gradient step on training example i lowered the loss of validation example j
    (a proponent); negative: an opponent.
    """
    kernel = X_train @ X_val.T + 1.0  # [x, 1] · [x', 1]
    total = np.zeros((len(X_train), len(X_val)))
    for ckpt in ckpts:
        total += ckpt.lr * (residuals(ckpt, X_train, y_train) @ residuals(ckpt, X_val, y_val).T) * kernel
    return total


def predict_probe(ckpt: Checkpoint, X: np.ndarray) -> np.ndarray:
    return (X @ ckpt.W.T + ckpt.b).argmax(axis=1)
