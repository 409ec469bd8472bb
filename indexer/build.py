"""`build_index`: source → embeddings → FAISS index → index folder, written atomically."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evdsearch.clip_models import LoadedClip, load_clip
from evdsearch.errors import InvalidInput, UserError
from evdsearch.indexer import faiss_backend
from evdsearch.indexer.embed import embed_images
from evdsearch.indexer.manifest import (
    DATA_FILES,
    EMBEDDINGS_FILE,
    INDEX_FILE,
    ITEMS_FILE,
    MANIFEST_FILE,
    Manifest,
    checksums,
    now_utc,
    write_manifest,
)
from evdsearch.indexer.sources import ImageRecord, collect_images
from evdsearch.versioned import is_versioned, publish_version


@dataclass
class IndexBuildConfig:
    """Everything `evdsearch index` asks for."""

    source: Path  # image folder (walked recursively) or Karpathy split JSON
    out: Path  # index folder to write
    model: str  # open_clip architecture name or CLIP checkpoint folder
    pretrained: str | None = None  # hub tag or local weights file for `model`
    factory: str = "Flat"  # any faiss index_factory string (Flat, HNSW32, IVF1024,Flat, ...)
    batch_size: int = 64  # images per forward pass
    device: str = "auto"  # auto | cpu | cuda, for CLIP and (when faiss-gpu is installed) FAISS
    split: str | None = None  # Karpathy split to index; None = every split
    images_root: Path | None = None  # Karpathy images folder; None = the JSON's folder
    workers: int = 0  # image decoding threads; 0 = min(8, CPUs)
    force: bool = False  # replace an existing index folder
    progress: bool = True  # show a progress bar


@dataclass
class BuildReport:
    """The outcome of a build, for the CLI summary and benchmarks."""

    out: Path  # the index folder
    count: int  # images indexed
    candidates: int  # images found in the source
    skipped: list[dict[str, str]] = field(default_factory=list)  # [{path, reason}]
    seconds: float = 0.0  # wall time of embedding + indexing + writing
    manifest: Manifest | None = None


def _check_out_dir(out: Path, force: bool) -> None:
    """Fail before the slow part; and never let --force wipe a folder that is not an index."""
    if not out.exists():
        return
    if not force:
        raise UserError(f"{out} already exists; pass --force to replace it")
    if not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST_FILE).is_file() and not is_versioned(out)):
        raise UserError(f"{out} exists and is not an evdsearch index (no {MANIFEST_FILE}); "
                        f"refusing to replace it, choose another --out")


def _write_items(path: Path, records: list[ImageRecord]) -> None:
    with path.open("w", encoding="utf-8") as handle:
        for row, rec in enumerate(records):
            handle.write(json.dumps({"id": row, "uri": rec.uri, "captions": rec.captions}, ensure_ascii=False))
            handle.write("\n")


def build_index(cfg: IndexBuildConfig, clip: LoadedClip | None = None) -> BuildReport:
    """Embed every readable image of `cfg.source` and write the index folder `cfg.out` atomically.

    An exception or Ctrl-C at any point leaves a previous index at `cfg.out` untouched.
    `clip` may be passed pre-loaded (tests, benchmarks); it must match `cfg.model`.
    """
    out = Path(cfg.out)
    if cfg.batch_size < 1:
        raise InvalidInput(f"--batch-size must be at least 1, got {cfg.batch_size}")
    source = collect_images(cfg.source, cfg.split, cfg.images_root)
    _check_out_dir(out, cfg.force)
    clip = clip or load_clip(cfg.model, cfg.pretrained, cfg.device)
    # A factory that cannot work (bad string, too many IVF lists) fails before the long embedding.
    faiss_backend.check_trainable(faiss_backend.make_index(clip.embed_dim, cfg.factory), cfg.factory,
                                  len(source.records))
    start = time.perf_counter()
    # A new version behind out/current: a server reading the old version keeps it until it reloads.
    with publish_version(out, force=cfg.force, compat_files=(*DATA_FILES, MANIFEST_FILE)) as tmp:
        result = embed_images(clip, [r.path for r in source.records], cfg.batch_size, cfg.workers, cfg.progress)
        skipped = [{"path": source.records[i].uri, "reason": reason} for i, reason in result.skipped]
        if not result.kept:
            raise InvalidInput(f"none of the {len(source.records)} images could be read "
                               f"(first: {skipped[0]['path']}: {skipped[0]['reason']})")
        kept = [source.records[i] for i in result.kept]
        index = faiss_backend.build(result.embeddings, cfg.factory, cfg.device)
        faiss_backend.write(index, tmp / INDEX_FILE)
        np.save(tmp / EMBEDDINGS_FILE, result.embeddings)
        _write_items(tmp / ITEMS_FILE, kept)
        identity = clip.identity
        manifest = Manifest(
            model=identity.model, pretrained=identity.pretrained, fingerprint=identity.fingerprint,
            dim=identity.embed_dim, count=len(kept), factory=cfg.factory, created=now_utc(),
            checksums=checksums(tmp), skipped=skipped, source=source.info,
        )
        write_manifest(tmp, manifest)  # written last: a folder with a manifest is a complete index
    return BuildReport(out, len(kept), len(source.records), skipped, time.perf_counter() - start, manifest)
