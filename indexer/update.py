"""`index add` / `index delete`: incremental updates with stable ids (rows are appended or tombstoned, never moved).

FAISS: a new folder version is written (old embeddings reused, only new images embedded, the index
rebuilt over the live rows with their row ids) and swapped in atomically. Milvus: the collection is
upserted / deleted first, then the folder version is swapped (a rerun after a crash repeats the same ids).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.clip_models import LoadedClip, file_sha256, load_clip
from evdsearch.diskspace import naming, tree_bytes
from evdsearch.errors import IncompatibleArtifact, InvalidInput, NotFound
from evdsearch.indexer import faiss_backend
from evdsearch.indexer.embed import embed_images
from evdsearch.indexer.manifest import (
    DATA_FILES,
    EMBEDDINGS_FILE,
    INDEX_FILE,
    ITEMS_FILE,
    MANIFEST_FILE,
    ROW_BYTES,
    Manifest,
    checksums,
    now_utc,
    read_manifest,
    write_manifest,
)
from evdsearch.indexer.shard_index import ADD_CHUNK, TRAIN_SAMPLE, create_embeddings
from evdsearch.indexer.sources import collect_images
from evdsearch.versioned import current_version, publish_version


@dataclass
class UpdateReport:
    """What an add or delete changed."""

    out: Path  # the index folder
    added: int = 0  # rows appended (new or changed images)
    unchanged: int = 0  # images already indexed with the same content (skipped: idempotent)
    deleted: int = 0  # rows tombstoned (deleted, or replaced by a changed image)
    skipped: list[dict[str, str]] = field(default_factory=list)  # unreadable images [{path, reason}]
    live: int = 0  # searchable rows after the update
    seconds: float = 0.0


def _read_items(folder: Path) -> list[dict[str, Any]]:
    """Every items.jsonl row (an update rewrites the file anyway, so it reads it whole)."""
    with (folder / ITEMS_FILE).open(encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def add_images(out: Path, source: str | Path, split: str | None = None, images_root: str | Path | None = None,
               device: str = "auto", batch_size: int = 64, workers: int = 0, progress: bool = True,
               clip: LoadedClip | None = None, milvus_uri: str | None = None) -> UpdateReport:
    """Append the images of `source` not yet indexed; an image whose URI is indexed with other content replaces it."""
    start = time.perf_counter()
    out = Path(out)
    manifest = read_manifest(current_version(out))  # the version being served, never the links
    items = _read_items(current_version(out))
    live = {row["uri"]: row for row in items if not row.get("deleted")}
    records = collect_images(source, split, images_root).records
    report = UpdateReport(out)
    fresh, replaced = [], []
    for record in records:
        digest = file_sha256(record.path) if record.path.is_file() else ""
        old = live.get(record.uri)
        if old is not None and (old.get("sha256") in (None, digest)):
            report.unchanged += 1  # same URI and content (or a row from a build that kept no hash)
            continue
        if old is not None:
            replaced.append(int(old["id"]))
        fresh.append((record, digest))
    if not fresh:
        report.live = manifest.count - manifest.deleted
        report.seconds = time.perf_counter() - start
        return report
    clip = clip or load_clip(manifest.model, manifest.pretrained or None, device)
    if clip.identity.fingerprint != manifest.fingerprint:
        raise IncompatibleArtifact(f"index {out} was built with model {manifest.model}; the CLIP loaded for the "
                                   f"update differs (fingerprint {clip.identity.fingerprint[:16]})")
    result = embed_images(clip, [r.path for r, _ in fresh], batch_size, workers, progress)
    report.skipped = [{"path": fresh[i][0].uri, "reason": reason} for i, reason in result.skipped]
    new_rows = [{"id": manifest.count + j, "uri": fresh[i][0].uri, "captions": fresh[i][0].captions,
                 "sha256": fresh[i][1]} for j, i in enumerate(result.kept)]
    tomb = set(replaced)
    for row in items:
        if row["id"] in tomb:
            row["deleted"] = True
    report.added, report.deleted = len(new_rows), len(tomb)
    _write_version(out, manifest, items + new_rows, result.embeddings, tomb, milvus_uri,
                   skipped=manifest.skipped + report.skipped)
    report.live = len(items) + len(new_rows) - sum(1 for row in items if row.get("deleted"))
    report.seconds = time.perf_counter() - start
    return report


def delete_items(out: Path, ids: list[int] | None = None, uris: list[str] | None = None,
                 milvus_uri: str | None = None) -> UpdateReport:
    """Tombstone rows by id or URI; ids and URIs that are already deleted are no-ops, unknown ones an error."""
    start = time.perf_counter()
    out = Path(out)
    if not ids and not uris:
        raise InvalidInput("index delete needs --ids or --uris")
    manifest = read_manifest(current_version(out))  # the version being served, never the links
    items = _read_items(current_version(out))
    rows: set[int] = set()
    for row in ids or []:
        if not 0 <= row < len(items):
            raise NotFound(f"no item {row} in index {out} (ids are 0..{len(items) - 1})")
        rows.add(row)
    if uris:
        by_uri: dict[str, list[int]] = {}
        for row in items:
            by_uri.setdefault(row["uri"], []).append(int(row["id"]))
        missing = [u for u in uris if u not in by_uri]
        if missing:
            raise NotFound(f"{len(missing)} URI(s) are not in index {out}, e.g. {missing[0]}")
        rows.update(r for u in uris for r in by_uri[u])
    tomb = {r for r in rows if not items[r].get("deleted")}
    for row in tomb:
        items[row]["deleted"] = True
    report = UpdateReport(out, deleted=len(tomb))
    if tomb:
        _write_version(out, manifest, items, np.empty((0, manifest.dim), np.float32), tomb, milvus_uri,
                       skipped=manifest.skipped)
    report.live = sum(1 for row in items if not row.get("deleted"))
    report.seconds = time.perf_counter() - start
    return report


def _write_version(out: Path, manifest: Manifest, items: list[dict[str, Any]], new_vectors: np.ndarray,
                   tomb: set[int], milvus_uri: str | None, skipped: list[dict[str, str]]) -> None:
    """The backend first (Milvus: upsert new rows, delete tombstoned ones), then the folder version, swapped in."""
    old_count = manifest.count
    deleted = sum(1 for row in items if row.get("deleted"))
    if manifest.backend_type == "milvus":
        from evdsearch.indexer.milvus_backend import delete_rows, target_of, upsert_rows

        target = target_of(manifest, milvus_uri)
        new_ids = np.arange(old_count, old_count + len(new_vectors))
        upsert_rows(target, new_ids, new_vectors, [items[int(i)]["uri"] for i in new_ids])
        delete_rows(target, sorted(tomb))
    needed = tree_bytes(current_version(out)) + len(new_vectors) * (manifest.dim * 8 + ROW_BYTES)
    with publish_version(out, force=True, compat_files=(*DATA_FILES, MANIFEST_FILE), needed_bytes=needed) as tmp:
        _write_embeddings(out, tmp, new_vectors)
        with naming(tmp / ITEMS_FILE), (tmp / ITEMS_FILE).open("w", encoding="utf-8") as handle:
            for row in items:
                handle.write(json.dumps(row, ensure_ascii=False) + "\n")
        if manifest.backend_type != "milvus":
            _build_faiss_with_ids(tmp, manifest.factory, items)
        manifest.count, manifest.deleted, manifest.created, manifest.skipped = len(items), deleted, now_utc(), skipped
        manifest.checksums = checksums(tmp)
        write_manifest(tmp, manifest)


def _write_embeddings(out: Path, tmp: Path, new_vectors: np.ndarray) -> None:
    """Old rows + new rows; with nothing new the old file is hard-linked (files are never changed in place)."""
    old_path = current_version(out) / EMBEDDINGS_FILE
    if not len(new_vectors):
        try:
            os.link(old_path, tmp / EMBEDDINGS_FILE)
        except OSError:
            shutil.copyfile(old_path, tmp / EMBEDDINGS_FILE)
        return
    old = np.load(old_path, mmap_mode="r")
    merged = create_embeddings(tmp / EMBEDDINGS_FILE, len(old) + len(new_vectors), old.shape[1])
    for start in range(0, len(old), ADD_CHUNK):
        stop = min(start + ADD_CHUNK, len(old))
        merged[start:stop] = old[start:stop]
    merged[len(old):] = new_vectors
    merged.flush()
    del merged


def _build_faiss_with_ids(folder: Path, factory: str, items: list[dict[str, Any]]) -> None:
    """The index over the live rows, each under its row id (IVF takes ids natively; others through IDMap)."""
    import faiss

    embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")
    live = np.asarray([row["id"] for row in items if not row.get("deleted")], dtype=np.int64)
    if not len(live):
        raise InvalidInput("an index cannot be left empty; delete the folder instead")
    index = faiss_backend.make_index(embeddings.shape[1], factory)
    faiss_backend.check_trainable(index, factory, len(live))
    if faiss.try_extract_index_ivf(index) is None:
        index = faiss.IndexIDMap2(index)
    if not index.is_trained:
        sample = live if len(live) <= TRAIN_SAMPLE else live[np.linspace(0, len(live) - 1, TRAIN_SAMPLE).astype(int)]
        index.train(np.ascontiguousarray(embeddings[sample]))
    for start in range(0, len(live), ADD_CHUNK):
        rows = live[start:start + ADD_CHUNK]
        index.add_with_ids(np.ascontiguousarray(embeddings[rows]), rows)
    faiss_backend.write(index, folder / INDEX_FILE)
