"""Classification data (shapes-world view or any ImageFolder), cached CLIP image embeddings, description files."""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput, NotFound

log = logging.getLogger(__name__)
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".webp")
DATA_DIR = Path(__file__).parent / "data"


@dataclass
class ClassificationSplit:
    """One split of an ImageFolder: image paths, their class index, and the class names."""

    root: Path  # the folder holding one sub-folder per class
    classes: list[str]  # display names, index = label
    paths: list[Path]  # image files
    labels: np.ndarray  # (n,) int64 class index per image
    seen: dict[str, bool] | None = None  # shapes world: class seen in CLIP's training captions

    def __len__(self) -> int:
        return len(self.paths)


def _class_names(root: Path, folders: list[str]) -> tuple[list[str], dict[str, bool] | None]:
    """Names from the shapes world's classes.json when present (folder -> name), else folder names."""
    for info in (root / "classes.json", root.parent / "classes.json"):
        if info.is_file():
            items = {c["folder"]: c for c in json.loads(info.read_text(encoding="utf-8"))}
            names = [items[f]["name"] if f in items else f.replace("_", " ") for f in folders]
            return names, {items[f]["name"]: bool(items[f].get("seen", True)) for f in folders if f in items}
    return [f.replace("_", " ") for f in folders], None


def open_split(data: str | Path, split: str = "test") -> ClassificationSplit:
    """DATA may be a shapes world (its classification/ view), a folder of splits, or a folder of classes."""
    root = Path(data)
    if not root.is_dir():
        raise NotFound(f"classification data not found: {root}")
    if (root / "classification").is_dir():
        root = root / "classification"
    if (root / split).is_dir():
        root = root / split
    elif any((root / s).is_dir() for s in ("train", "val", "test")):
        raise NotFound(f"{root} has no {split!r} split")
    folders = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise InvalidInput(f"{root} has no class sub-folders (expected ImageFolder layout: CLASS/IMAGE.png)")
    classes, seen = _class_names(root, folders)
    paths, labels = [], []
    for index, folder in enumerate(folders):
        for path in sorted((root / folder).iterdir()):
            if path.suffix.lower() in IMAGE_SUFFIXES:
                paths.append(path)
                labels.append(index)
    if not paths:
        raise InvalidInput(f"{root} has class folders but no images ({', '.join(IMAGE_SUFFIXES)})")
    return ClassificationSplit(root, classes, paths, np.asarray(labels, dtype=np.int64), seen)


def _cache_key(clip: Any, split: ClassificationSplit) -> str:
    digest = hashlib.sha1(json.dumps(clip.identity.__dict__, sort_keys=True).encode())
    for path in split.paths:
        stat = path.stat()
        digest.update(f"{path.relative_to(split.root)}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:20]


def image_embeddings(clip: Any, split: ClassificationSplit, batch_size: int = 256,
                     cache_dir: str | Path | None = None) -> np.ndarray:
    """L2-normalised embeddings of the split's images, cached (keyed by weights + files) in `cache_dir`, by
    default beside the data."""
    from PIL import Image

    folder = Path(cache_dir) if cache_dir else split.root.parent / ".cache"
    cache = folder / f"cls-emb-{_cache_key(clip, split)}.npy"
    if cache.is_file() and not clip.identity.fingerprint.endswith(":random"):
        emb = np.load(cache)
        if emb.shape == (len(split), clip.embed_dim):
            return emb
    out = []
    for start in range(0, len(split), batch_size):
        images = []
        for path in split.paths[start : start + batch_size]:
            with Image.open(path) as image:
                images.append(image.convert("RGB"))
        out.append(clip.encode_pil_images(images))
    emb = np.concatenate(out).astype(np.float32)
    try:
        cache.parent.mkdir(parents=True, exist_ok=True)
        tmp = cache.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, emb)
        tmp.replace(cache)
    except OSError as err:  # read-only data: embed again next time
        log.warning("embedding cache not written (%s)", err)
    return emb


def load_templates(name: str = "clip_imagenet_templates") -> list[str]:
    """A list of "{}" templates shipped in training/descriptions/data (the 80 CLIP ImageNet ones, EX2's 25)."""
    return json.loads((DATA_DIR / f"{name}.json").read_text(encoding="utf-8"))


def read_jsonl(path: str | Path) -> list[dict[str, Any]]:
    """Records of a JSONL file (blank lines skipped); a bad line is a user error naming its number."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"file not found: {path}")
    records = []
    for lineno, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if line.strip():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise InvalidInput(f"{path} line {lineno}: not valid JSON ({err.msg})") from err
    return records


def descriptions_by_entity(records: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """kb-import records grouped by lower-cased entity name, each group best score first."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for record in records:
        if "entity" not in record or "description" not in record:
            raise InvalidInput(f"description record without 'entity' / 'description': {str(record)[:80]}")
        groups[str(record["entity"]).lower()].append(record)
    return {k: sorted(v, key=lambda r: -float(r.get("score", 0.0))) for k, v in groups.items()}


def write_jsonl(path: str | Path, records: list[dict[str, Any]]) -> Path:
    """Write records as JSONL atomically (kb-import format when they carry entity/description/source/score)."""
    from evdsearch.atomic import write_text_atomic

    write_text_atomic(path, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    return Path(path)


def set_threads(threads: int | None) -> None:
    """Cap torch CPU threads (this machine is shared; 2 cores)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
