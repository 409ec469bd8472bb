"""Where images to index come from: a folder walked recursively, or a Karpathy split JSON with captions."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput, NotFound

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp")


@dataclass
class ImageRecord:
    """One image to embed."""

    path: Path  # absolute file path
    captions: list[str] = field(default_factory=list)  # reference captions (Karpathy sources only)
    split: str | None = None  # Karpathy split (train / val / test); None for a folder source

    @property
    def uri(self) -> str:
        """What items.jsonl records: the absolute path."""
        return str(self.path)


@dataclass
class ImageSource:
    """The images of one build, in index order, and a description for the manifest."""

    records: list[ImageRecord]
    info: dict[str, Any]  # manifest "source": {"type", "path", "split", ...}

    @property
    def root(self) -> Path:
        """The folder image paths are relative to: the image folder, or a Karpathy JSON's images root."""
        return Path(self.info.get("images_root") or self.info["path"])


def walk_images(root: Path) -> list[Path]:
    """Image files below `root` in sorted relative-path order; hidden files and folders are skipped
    (macOS `._x.jpg` resource forks and thumbnail caches are not images)."""
    found = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = [d for d in dirs if not d.startswith(".")]
        for name in files:
            if not name.startswith(".") and name.lower().endswith(IMAGE_EXTENSIONS):
                found.append(Path(folder, name))
    return sorted(found, key=lambda p: p.relative_to(root).as_posix())


def _karpathy_source(json_path: Path, split: str | None, images_root: Path | None) -> ImageSource:
    from evdsearch.karpathy import load_karpathy

    dataset = load_karpathy(json_path, images_root)
    images = dataset.split(split) if split else dataset.images
    records = [ImageRecord(dataset.image_path(img).resolve(), [s.raw for s in img.sentences], img.split)
               for img in images]
    info = {"type": "karpathy", "path": str(json_path.resolve()), "dataset": dataset.name, "split": split,
            "images_root": str(dataset.images_root.resolve())}
    return ImageSource(records, info)


def collect_images(source: str | Path, split: str | None = None, images_root: str | Path | None = None
                   ) -> ImageSource:
    """Images of a folder (recursively) or of a Karpathy JSON (`split` None = every split)."""
    path = Path(source)
    if path.is_file() and path.suffix.lower() == ".json":
        return _karpathy_source(path, split, Path(images_root) if images_root else None)
    if path.is_dir():
        if split or images_root:
            raise InvalidInput("--split and --images-root only apply to a Karpathy split JSON source")
        records = [ImageRecord(p.resolve()) for p in walk_images(path)]
        if not records:
            raise InvalidInput(f"no images in {path} (looked for {', '.join(IMAGE_EXTENSIONS)} recursively)")
        return ImageSource(records, {"type": "folder", "path": str(path.resolve()), "split": None})
    if path.exists():
        raise InvalidInput(f"{path} is neither an image folder nor a Karpathy split .json file")
    raise NotFound(f"image source not found: {path}")
