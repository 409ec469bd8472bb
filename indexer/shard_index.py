"""An index folder assembled from staged shards with bounded memory: embeddings, items, FAISS index."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.diskspace import naming, reserve
from evdsearch.indexer import faiss_backend
from evdsearch.indexer.manifest import EMBEDDINGS_FILE, INDEX_FILE, ITEMS_FILE
from evdsearch.indexer.shards import iter_shards
from evdsearch.indexer.sources import ImageRecord

TRAIN_SAMPLE = 262_144  # at most this many vectors train IVF / PQ (faiss samples 256 per list anyway)
ADD_CHUNK = 65_536  # vectors added to FAISS per call: bounds the temporary copies


@dataclass
class Assembled:
    """What the shards held."""

    count: int  # rows written
    skipped: list[dict[str, str]] = field(default_factory=list)  # [{path, reason}] of unreadable images


def shard_counts(staging: Path, shards: int) -> tuple[int, int]:
    """(rows, dim) over all shards, reading only the shapes."""
    rows, dim = 0, 0
    for index in range(shards):
        with np.load(staging / f"shard-{index:05d}.npz") as data:
            shape = data["vectors"].shape
        rows += shape[0]
        dim = dim or (shape[1] if len(shape) == 2 else 0)
    return rows, dim


def write_rows(staging: Path, shards: int, records: list[ImageRecord], folder: Path, dim: int) -> Assembled:
    """embeddings.npy (memory-mapped while written) and items.jsonl, shard by shard; ids are rows."""
    count, _ = shard_counts(staging, shards)
    embeddings = create_embeddings(folder / EMBEDDINGS_FILE, count, dim)
    out = Assembled(count)
    row = 0
    with naming(folder / ITEMS_FILE), (folder / ITEMS_FILE).open("w", encoding="utf-8") as items:
        for shard in iter_shards(staging, shards):
            embeddings[row:row + len(shard.vectors)] = shard.vectors
            for pos, uri in zip(shard.positions.tolist(), shard.uris, strict=True):
                items.write(json.dumps({"id": row, "uri": uri, "captions": records[pos].captions},
                                       ensure_ascii=False) + "\n")
                row += 1
            out.skipped += [{"path": records[pos].uri, "reason": reason} for pos, reason in shard.skipped]
    embeddings.flush()
    del embeddings
    return out


def create_embeddings(path: Path, count: int, dim: int) -> np.memmap:
    """A float32 (count, dim) .npy file to fill through a memory map, its blocks reserved on disk first: a full
    disk raises ENOSPC here instead of a SIGBUS when a page is written."""
    with naming(path):
        embeddings = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(count, dim))
    try:
        reserve(path, path.stat().st_size)
    except OSError:
        del embeddings
        raise
    return embeddings


def build_faiss(folder: Path, factory: str, device: str) -> Any:
    """Train on a sample of the written embeddings, add them chunk by chunk, write index.faiss."""
    embeddings = np.load(folder / EMBEDDINGS_FILE, mmap_mode="r")
    sample = _sample(embeddings, TRAIN_SAMPLE)
    chunks = (embeddings[i:i + ADD_CHUNK] for i in range(0, len(embeddings), ADD_CHUNK))
    index = faiss_backend.build_chunked(embeddings.shape[1], factory, sample, chunks, len(embeddings), device)
    faiss_backend.write(index, folder / INDEX_FILE)
    return index


def _sample(embeddings: np.ndarray, limit: int) -> np.ndarray:
    """All rows when few, else `limit` rows evenly spread (shards are in source order, which may be sorted)."""
    if len(embeddings) <= limit:
        return np.asarray(embeddings)
    return np.asarray(embeddings[np.linspace(0, len(embeddings) - 1, limit).astype(np.int64)])
