"""Karpathy-format data sets as every stage reads them: find the JSON, open it, decode images for CLIP.

Neutral ground for training, evaluation and benchmarks, which all read the same data the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.karpathy import KarpathyDataset, load_karpathy


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
