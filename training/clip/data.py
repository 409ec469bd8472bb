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
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.karpathy import KarpathyDataset, KarpathyImage, load_karpathy

CaptionTransform = Callable[[str, random.Random], "str | None"]


def find_dataset_json(data: str | Path) -> Path:
    """`data` is a Karpathy JSON file, or a folder holding exactly one `dataset_*.json`."""
    path = Path(data)
    if path.is_file():
        return path
    if not path.is_dir():
        raise NotFound(f"data not found: {path} (give a folder with dataset_*.json or the JSON file)")
    found = sorted(path.glob("dataset_*.json"))
    if len(found) != 1:
        what = "no dataset_*.json" if not found else f"several dataset_*.json ({', '.join(p.name for p in found)})"
        raise InvalidInput(f"{path} holds {what}; pass the Karpathy JSON file itself")
    return found[0]


def open_dataset(data: str | Path, images: str | Path | None = None) -> KarpathyDataset:
    """Load the Karpathy data set a `--data` (and optional `--images`) argument points at."""
    return load_karpathy(find_dataset_json(data), images_root=images)


@dataclass
class PilTransform:
    """open_clip's eval transform split in two: the PIL part (resize/crop/RGB) and Normalize."""

    steps: list[Any]  # PIL -> PIL steps, in order
    mean: tuple[float, ...]  # Normalize mean (applied to [0, 1] floats)
    std: tuple[float, ...]  # Normalize std

    @classmethod
    def from_preprocess(cls, preprocess: Any) -> PilTransform:
        from torchvision import transforms as T

        steps, mean, std = [], (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)
        for step in getattr(preprocess, "transforms", [preprocess]):
            if isinstance(step, T.Normalize):
                mean, std = tuple(float(m) for m in step.mean), tuple(float(s) for s in step.std)
            elif not isinstance(step, T.ToTensor):
                steps.append(step)
        return cls(steps, mean, std)

    def __call__(self, image: Any) -> Any:
        for step in self.steps:
            image = step(image)
        return image.convert("RGB")

    def describe(self) -> str:
        """Stable text for cache keys (function reprs carry memory addresses, names do not)."""
        return " ".join(getattr(s, "__name__", repr(s)) for s in self.steps)


def decode_images(paths: Sequence[Path], to_pil: Callable[[Any], Any], workers: int = 2) -> np.ndarray:
    """Decode and transform image files into a uint8 array (N, 3, H, W)."""
    from PIL import Image

    def load(path: Path) -> np.ndarray:
        try:
            with Image.open(path) as im:
                return np.asarray(to_pil(im), dtype=np.uint8).transpose(2, 0, 1)
        except (OSError, ValueError) as err:
            raise InvalidInput(f"cannot read image {path}: {err}") from err

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        arrays = list(pool.map(load, paths))
    if not arrays:
        raise InvalidInput("no images to decode")
    return np.stack(arrays)


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
