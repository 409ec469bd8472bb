"""Karpathy split JSON (Flickr30K / MSCOCO format): one reader and writer for every data set.

Format: {"dataset": str, "images": [{"filename", "filepath"?, "split", "imgid", "sentids",
"sentences": [{"raw", "tokens", "imgid", "sentid", ...extra}], ...extra}]}.
Extra keys (the shapes world adds sentence "kind" and "entities") survive a round trip.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evdsearch.atomic import write_json_atomic
from evdsearch.errors import InvalidInput, NotFound

SPLIT_ALIASES = {"restval": "train"}  # Karpathy's COCO "restval" images are training images
_TOKEN_RE = re.compile(r"[a-z0-9]+")


def tokenize(raw: str) -> list[str]:
    """Karpathy-style tokens: lower-case alphanumeric words."""
    return _TOKEN_RE.findall(raw.lower())


@dataclass
class Sentence:
    """One caption of an image."""

    raw: str  # the caption as written
    tokens: list[str] = field(default_factory=list)  # lower-case words of `raw`
    extra: dict[str, Any] = field(default_factory=dict)  # any other keys (e.g. kind, entities)

    @property
    def kind(self) -> str:
        """Caption kind in the shapes world (attribute / seen_entity / unseen_entity); 'caption' elsewhere."""
        return str(self.extra.get("kind", "caption"))


@dataclass
class KarpathyImage:
    """One image with its split and captions."""

    filename: str  # file name as in the JSON
    split: str  # train / val / test (restval is read as train)
    sentences: list[Sentence]  # usually 5
    filepath: str = ""  # sub-folder below the images root (COCO: val2014), may be empty
    imgid: int = 0  # position in the JSON
    extra: dict[str, Any] = field(default_factory=dict)  # any other keys (e.g. objects)

    @property
    def relpath(self) -> str:
        """Path below the images root."""
        return f"{self.filepath}/{self.filename}" if self.filepath else self.filename


@dataclass
class KarpathyDataset:
    """A whole Karpathy JSON plus where its images live."""

    name: str  # "flickr30k", "coco", "shapes", ...
    images: list[KarpathyImage]
    images_root: Path  # folder the relative image paths start from

    def split(self, split: str) -> list[KarpathyImage]:
        """Images of one split; an unknown split name is a user error."""
        chosen = [img for img in self.images if img.split == split]
        if not chosen:
            known = sorted({img.split for img in self.images})
            raise InvalidInput(f"split {split!r} has no images; this data set has: {', '.join(known)}")
        return chosen

    def image_path(self, image: KarpathyImage) -> Path:
        """Absolute path of an image file."""
        return self.images_root / image.relpath


def _sentence_from_json(obj: dict[str, Any]) -> Sentence:
    extra = {k: v for k, v in obj.items() if k not in ("raw", "tokens", "imgid", "sentid")}
    return Sentence(raw=obj["raw"], tokens=list(obj.get("tokens") or tokenize(obj["raw"])), extra=extra)


def load_karpathy(json_path: str | Path, images_root: str | Path | None = None) -> KarpathyDataset:
    """Read a Karpathy split file; `images_root` defaults to the JSON's folder."""
    json_path = Path(json_path)
    if not json_path.is_file():
        raise NotFound(f"Karpathy split file not found: {json_path}")
    try:
        data = json.loads(json_path.read_text(encoding="utf-8"))
        raw_images = data["images"]
    except (json.JSONDecodeError, KeyError, TypeError) as err:
        raise InvalidInput(f"{json_path} is not a Karpathy split JSON ({err})") from err
    images = []
    for position, obj in enumerate(raw_images):
        extra = {
            k: v
            for k, v in obj.items()
            if k not in ("filename", "filepath", "split", "sentences", "imgid", "sentids")
        }
        images.append(
            KarpathyImage(
                filename=obj["filename"],
                split=SPLIT_ALIASES.get(obj["split"], obj["split"]),
                sentences=[_sentence_from_json(s) for s in obj["sentences"]],
                filepath=obj.get("filepath", ""),
                imgid=int(obj.get("imgid", position)),
                extra=extra,
            )
        )
    root = Path(images_root) if images_root is not None else json_path.parent
    return KarpathyDataset(name=str(data.get("dataset", json_path.stem)), images=images, images_root=root)


def dataset_to_json(dataset: KarpathyDataset) -> dict[str, Any]:
    """The JSON object for a data set, with image and sentence ids numbered in order."""
    out_images = []
    sentid = 0
    for imgid, image in enumerate(dataset.images):
        sentences = []
        for sentence in image.sentences:
            sentences.append(
                {"raw": sentence.raw, "tokens": sentence.tokens or tokenize(sentence.raw), "imgid": imgid,
                 "sentid": sentid, **sentence.extra}
            )
            sentid += 1
        entry: dict[str, Any] = {"filename": image.filename}
        if image.filepath:
            entry["filepath"] = image.filepath
        entry.update({"split": image.split, "imgid": imgid,
                      "sentids": [s["sentid"] for s in sentences], "sentences": sentences, **image.extra})
        out_images.append(entry)
    return {"dataset": dataset.name, "images": out_images}


def write_karpathy(dataset: KarpathyDataset, json_path: str | Path) -> None:
    """Write a data set as a Karpathy split JSON, atomically."""
    write_json_atomic(json_path, dataset_to_json(dataset))
