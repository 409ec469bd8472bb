"""Zero-shot classification with text prompts: one mean text embedding per class, argmax of cosine."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np


def normalize(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """Rows scaled to unit L2 norm (zero rows stay zero)."""
    norm = np.linalg.norm(x, axis=axis, keepdims=True)
    return (x / np.maximum(norm, 1e-12)).astype(np.float32)


def class_embeddings(clip: Any, texts_per_class: Sequence[Sequence[str]]) -> np.ndarray:
    """(C, D): the normalised mean of each class's normalised text embeddings (CLIP's prompt ensembling)."""
    flat = [t for texts in texts_per_class for t in texts]
    emb = clip.encode_texts(flat)
    out, start = [], 0
    for texts in texts_per_class:
        if not texts:
            raise ValueError("every class needs at least one text")
        out.append(emb[start : start + len(texts)].mean(axis=0))
        start += len(texts)
    return normalize(np.stack(out))


def predict(image_emb: np.ndarray, class_emb: np.ndarray) -> np.ndarray:
    """Class index per image: highest cosine between image and class embedding."""
    return (image_emb @ class_emb.T).argmax(axis=1)


def accuracy(pred: np.ndarray, labels: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Top-1 accuracy in percent (over `mask` when given); NaN for an empty selection."""
    hit = pred == labels
    if mask is not None:
        hit = hit[mask]
    return float(100.0 * hit.mean()) if hit.size else float("nan")


def fill_templates(templates: Sequence[str], name: str) -> list[str]:
    """Each "{}" template with the class name put in."""
    return [t.replace("{}", name) for t in templates]


def with_name(name: str, description: str) -> str:
    """A description joined to its class name as the engine's template rewriter joins them."""
    from evdsearch.engine.rewriters.template import connect

    text = " ".join(description.split()).rstrip(" .")
    return f"{name} which {connect(text)}" if text else name
