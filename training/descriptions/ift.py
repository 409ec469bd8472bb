"""IFT: score candidate texts by TracIn influence (through CLIP space) plus CLIP similarity; keep the top-k.

How a text about class c gets an influence (texts were never trained on), two modes:
  gradient (default): the text, moved across the modality gap (`gap_shift`), is scored as if it were a
    training image of class c: I(t) = Σ_{val j of class c} TracIn(t, j) over the image probe's
    checkpoints, i.e. would a step on this text have lowered class c's validation loss.
  kernel: the images carry TracIn scores I_i = Σ_{val j of i's class} TracIn(i, j), and
    I(t) = Σ_{train i of class c} softmax_i(cos(t, x_i) / τ) · I_i, the influence of the class's
    training images nearest the text in CLIP space.
  CLIP similarity S(t) = cos(t, normalised mean of class c's training images)
  IFT(t) = λ · z(I(t)) + (1 - λ) · z(S(t)), z = standardised over class c's candidates;
λ = `weight` (λ = 0 is CLIP-only selection).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from evdsearch.evaluation.zeroshot import normalize
from evdsearch.training.descriptions.tracin import Checkpoint, sgd_epochs


@dataclass
class IFTConfig:
    """An `evdsearch train ift` run; the CLI fills it."""

    data: str  # shapes world (or ImageFolder with train/val/test)
    model: str  # CLIP checkpoint folder
    candidates: tuple[str, ...]  # JSONL files of candidate texts (kb-import format)
    out: str  # output folder
    weight: float = 0.5  # λ: influence share of the IFT score (0 = CLIP similarity only)
    top_k: int = 10  # proponent texts kept per class
    influence: str = "gradient"  # gradient | kernel: how a text inherits influence (module docstring)
    tau: float = 0.05  # temperature of the text -> image kernel (kernel mode)
    shots: int = 4  # training images per class for the probe (few-shot: room for text transfer)
    epochs: int = 20  # probe epochs (one checkpoint each)
    lr: float = 20.0  # probe SGD (unit-norm inputs need a large step) learning rate
    transfer_epochs: int = 5  # epochs of continued training on selected text embeddings
    transfer_lr: float = 0.5  # learning rate of that continued training
    seed: int = 0  # probe and random-selection seed
    threads: int = 2  # torch CPU threads (CLIP encoding)


def zscore(x: np.ndarray) -> np.ndarray:
    """Standardised scores; constant input gives zeros."""
    sd = x.std()
    return (x - x.mean()) / sd if sd > 1e-12 else np.zeros_like(x)


def text_influence(text_emb: np.ndarray, class_images: np.ndarray, image_influence: np.ndarray,
                   tau: float) -> np.ndarray:
    """Kernel-weighted mean of the class's image influences, weights softmax(cos / τ) per text."""
    logits = text_emb @ class_images.T / tau
    logits -= logits.max(axis=1, keepdims=True)
    w = np.exp(logits)
    w /= w.sum(axis=1, keepdims=True)
    return w @ image_influence


def ift_scores(influence: np.ndarray, similarity: np.ndarray, weight: float) -> np.ndarray:
    """λ · z(influence) + (1 - λ) · z(similarity) over one class's candidates."""
    return weight * zscore(influence) + (1.0 - weight) * zscore(similarity)


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """Indices of the k highest scores, best first; ties keep the earlier candidate."""
    order = np.lexsort((np.arange(len(scores)), -scores))
    return order[:k]


def gap_shift(text_emb: np.ndarray, text_mean: np.ndarray, image_mean: np.ndarray) -> np.ndarray:
    """Move text embeddings across CLIP's modality gap (subtract the text mean, add the image mean):
    a probe trained on images then reads texts as if they were images of their class."""
    return normalize(text_emb - text_mean + image_mean)


def transfer(ckpt: Checkpoint, texts: np.ndarray, labels: np.ndarray, weights: np.ndarray, epochs: int,
             lr: float, seed: int) -> Checkpoint:
    """Continue training the image probe on (gap-shifted) text embeddings, each loss term weighted."""
    return sgd_epochs(ckpt, texts, labels, epochs, lr, 16, np.random.default_rng(seed), weights)[-1]


def selection_weights(scores: np.ndarray) -> np.ndarray:
    """Per-text loss weights from selection scores: softmax over the selected texts, mean 1."""
    e = np.exp(scores - scores.max())
    return e / e.sum() * len(scores)
