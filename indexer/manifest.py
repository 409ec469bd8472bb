"""The index folder's manifest.json: which model built it, what it holds, and the files' checksums."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evdsearch.atomic import write_json_atomic
from evdsearch.errors import IncompatibleArtifact, NotFound
from evdsearch.integrity import sha256_file

FORMAT_VERSION = 1
MANIFEST_FILE = "manifest.json"
INDEX_FILE = "index.faiss"
EMBEDDINGS_FILE = "embeddings.npy"
ITEMS_FILE = "items.jsonl"
DATA_FILES = (INDEX_FILE, EMBEDDINGS_FILE, ITEMS_FILE)  # the files `checksums` covers
ROW_BYTES = 300  # items.jsonl bytes per image, about: what disk-space estimates (a full disk's message) assume
OPTIONAL_FIELDS = {"backend", "deleted"}  # added after format 1 shipped: older manifests without them still read


@dataclass
class Manifest:
    """manifest.json, field for field (see docs/ARCHITECTURE.md, "Index folder")."""

    model: str  # ClipIdentity.model: architecture name or absolute checkpoint folder
    pretrained: str  # ClipIdentity.pretrained: tag, weights path or ""
    fingerprint: str  # ClipIdentity.fingerprint: what `check_model` compares
    dim: int  # embedding size
    count: int  # images indexed (= rows of embeddings.npy = lines of items.jsonl)
    factory: str  # faiss index_factory string
    created: str  # ISO 8601 UTC time of the build
    checksums: dict[str, str] = field(default_factory=dict)  # file name -> sha256
    skipped: list[dict[str, str]] = field(default_factory=list)  # [{path, reason}] of unreadable images
    source: dict[str, Any] = field(default_factory=dict)  # {"type": folder|karpathy, "path", "split", ...}
    metric: str = "inner_product"  # always inner product over L2-normalised embeddings
    deleted: int = 0  # rows removed by `index delete` (or replaced by `index add`): kept in items.jsonl
    # and embeddings.npy as tombstones (so ids stay stable), absent from the vector index; older manifests lack it
    backend: dict[str, Any] = field(default_factory=dict)  # where vectors are searched: {} or {"type": "faiss"}
    # (index.faiss here), or {"type": "milvus", "uri", "collection", "index_type"}; older manifests lack it
    format_version: int = FORMAT_VERSION  # bumped when the folder layout changes

    @property
    def backend_type(self) -> str:
        """faiss (the default, also for manifests written before backends existed) or milvus."""
        return str(self.backend.get("type", "faiss"))

    def to_json(self) -> dict[str, Any]:
        """The JSON object, keys in the documented order."""
        order = ("format_version", "model", "pretrained", "fingerprint", "dim", "count", "factory", "metric",
                 "created", "checksums", "skipped", "source", "deleted", "backend")
        data = asdict(self)
        return {key: data[key] for key in order}

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Manifest:
        if not isinstance(obj, dict):
            raise IncompatibleArtifact(f"{where} is not a JSON object")
        if obj.get("format_version") != FORMAT_VERSION:
            raise IncompatibleArtifact(
                f"{where} has format_version {obj.get('format_version')!r}, this evdsearch reads "
                f"{FORMAT_VERSION}; rebuild the index with `evdsearch index ... --force`")
        names = {f.name for f in fields(cls)}
        missing = sorted(names - obj.keys() - OPTIONAL_FIELDS)
        if missing:
            raise IncompatibleArtifact(f"{where} lacks {', '.join(missing)}; rebuild the index")
        return cls(**{key: obj[key] for key in names if key in obj})


def now_utc() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def checksums(folder: Path) -> dict[str, str]:
    """sha256 of each data file in an index folder (a Milvus-backed folder has no index.faiss); remembered, so
    the version's SHA256SUMS (written when it is published) does not read the files again."""
    return {name: sha256_file(folder / name, remember=True) for name in DATA_FILES if (folder / name).is_file()}


def check_data_files(folder: Path, manifest: Manifest, verify: bool, needed: tuple[str, ...] = DATA_FILES) -> None:
    """Refuse a folder missing one of `needed`, or (`verify`) whose data files no longer match the manifest's
    checksums: a rebuild hint now beats a crash or wrong hits later. Both backends open their folders here."""
    for name in needed:
        if not (folder / name).is_file():
            raise IncompatibleArtifact(f"index {folder} is incomplete: {name} is missing; "
                                       f"rebuild it with `evdsearch index ... --force`")
    if verify:
        actual = checksums(folder)
        bad = [name for name in actual if manifest.checksums.get(name) != actual[name]]
        if bad:
            raise IncompatibleArtifact(f"index {folder}: {', '.join(bad)} changed since the build "
                                       f"(checksum mismatch); rebuild it with `evdsearch index ... --force`")


def read_manifest(folder: str | Path) -> Manifest:
    """Load and check an index folder's manifest; clear errors for a missing or foreign folder."""
    folder = Path(folder)
    if not folder.is_dir():
        raise NotFound(f"no index at {folder}; build one with `evdsearch index IMAGES --out {folder} --model M`")
    path = folder / MANIFEST_FILE
    if not path.is_file():
        raise NotFound(f"{folder} is not an evdsearch index (no {MANIFEST_FILE}); build one with `evdsearch index`")
    try:
        obj = json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise IncompatibleArtifact(f"{path} is not valid JSON ({err}); rebuild the index") from err
    return Manifest.from_json(obj, str(path))


def write_manifest(folder: Path, manifest: Manifest) -> None:
    write_json_atomic(folder / MANIFEST_FILE, manifest.to_json())
