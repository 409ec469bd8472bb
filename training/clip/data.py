"""Training data for CLIP: Karpathy images decoded once into a uint8 tensor, captions sampled per step.

Decoding PNGs every step would dominate a 2-core CPU run, so images go through the model's own eval
resize/crop once, are kept as uint8 (N, 3, S, S) in memory and cached on disk beside the data.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.datasets import PilTransform, decode_images
from evdsearch.errors import InvalidInput, NotFound
from evdsearch.karpathy import KarpathyDataset, KarpathyImage

CaptionTransform = Callable[[str, random.Random], "str | None"]


def _cache_key(dataset: KarpathyDataset, images: Sequence[KarpathyImage], describe: str) -> str:
    digest = hashlib.sha1(describe.encode())
    digest.update(str(dataset.images_root.resolve()).encode())
    for image in images:  # size + mtime, so a regenerated world at the same path is not served stale
        try:
            stat = dataset.image_path(image).stat()
        except FileNotFoundError as err:
            raise NotFound(f"image file missing: {dataset.image_path(image)}") from err
        digest.update(f"{image.relpath}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:16]


def cached_images(
    dataset: KarpathyDataset, images: Sequence[KarpathyImage], preprocess: Any,
    cache_dir: str | Path | None, workers: int = 2,
) -> tuple[np.ndarray, tuple[float, ...], tuple[float, ...]]:
    """uint8 (N, 3, S, S) images after the model's resize/crop, from the disk cache when present."""
    transform = PilTransform.from_preprocess(preprocess)
    cache = None
    if cache_dir is not None:
        cache = Path(cache_dir) / f"images-{_cache_key(dataset, images, transform.describe())}.npy"
        if cache.is_file():
            return np.load(cache), transform.mean, transform.std
    array = decode_images([dataset.image_path(im) for im in images], transform, workers)
    if cache is not None:
        try:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
            np.save(tmp, array)
            tmp.replace(cache)
        except OSError as err:  # a read-only data folder only costs the next run a re-decode
            logging.getLogger(__name__).warning("image cache not written (%s)", err)
    return array, transform.mean, transform.std


class CaptionSampler:
    """Draws batches of distinct images, each with one of its captions chosen at random."""

    def __init__(self, captions: list[list[str]], rng: random.Random,
                 caption_transform: CaptionTransform | None = None) -> None:
        if any(not caps for caps in captions):
            raise InvalidInput("every training image needs at least one caption")
        self.captions = captions  # captions[i] = all captions of image i
        self.rng = rng  # the only randomness, so resuming restores it exactly
        self.caption_transform = caption_transform

    def batch(self, batch_size: int) -> tuple[list[int], list[str]]:
        """Image rows and one caption each; the hook may rewrite a caption (None keeps it)."""
        rows = self.rng.sample(range(len(self.captions)), min(batch_size, len(self.captions)))
        texts = []
        for row in rows:
            text = self.rng.choice(self.captions[row])
            if self.caption_transform is not None:
                text = self.caption_transform(text, self.rng) or text
            texts.append(text)
        return rows, texts
