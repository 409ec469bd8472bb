"""Embedding shards: a build's images cut into fixed-size shards, each embedded once into a staging file."""

from __future__ import annotations

import hashlib
import json
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evdsearch.atomic import atomic_file, write_json_atomic
from evdsearch.diskspace import naming
from evdsearch.errors import IncompatibleArtifact, InvalidInput
from evdsearch.indexer.sources import ImageRecord

JOB_FILE = "job.json"  # what the staged shards were made from; a resume must match it


@dataclass
class ShardSpec:
    """One shard to embed: a contiguous slice of the build's images."""

    index: int  # shard number (file shard-00000.npz ...)
    start: int  # position of its first image in the build's image list
    records: list[ImageRecord]  # its images, in order


@dataclass
class Shard:
    """An embedded shard as staged on disk."""

    vectors: np.ndarray  # float32 (kept, dim), L2-normalised
    positions: np.ndarray  # int64 (kept,): position of each row's image in the build's image list
    uris: list[str]  # uri of each row
    skipped: list[tuple[int, str]] = field(default_factory=list)  # (position, reason) of unreadable images


def plan_shards(records: list[ImageRecord], shard_size: int) -> list[ShardSpec]:
    """Cut the image list into shards of `shard_size` (the last one shorter)."""
    if shard_size < 1:
        raise InvalidInput(f"--shard-size must be at least 1, got {shard_size}")
    return [ShardSpec(i, start, records[start:start + shard_size])
            for i, start in enumerate(range(0, len(records), shard_size))]


def shard_path(staging: Path, index: int) -> Path:
    return staging / f"shard-{index:05d}.npz"


def write_shard(staging: Path, index: int, shard: Shard) -> Path:
    """Write a shard file atomically (temporary file, then rename): a staged shard is always whole."""
    path = shard_path(staging, index)
    with naming(path), atomic_file(path, "wb") as handle:
        np.savez(handle, vectors=np.asarray(shard.vectors, dtype=np.float32),
                 positions=np.asarray(shard.positions, dtype=np.int64),
                 uris=np.asarray(shard.uris, dtype=str),
                 skipped_positions=np.asarray([p for p, _ in shard.skipped], dtype=np.int64),
                 skipped_reasons=np.asarray([r for _, r in shard.skipped], dtype=str))
    return path


def read_shard(staging: Path, index: int) -> Shard:
    with np.load(shard_path(staging, index), allow_pickle=False) as data:
        return Shard(data["vectors"], data["positions"], data["uris"].tolist(),
                     list(zip(data["skipped_positions"].tolist(), data["skipped_reasons"].tolist(), strict=True)))


def iter_shards(staging: Path, count: int) -> Iterator[Shard]:
    """The staged shards in order, one in memory at a time."""
    for index in range(count):
        yield read_shard(staging, index)


def staging_dir(out: Path) -> Path:
    """Where a build of `out` stages its shards: a hidden sibling, so it survives an interrupted build."""
    return out.parent / f".{out.name}.staging"


def job_key(records: list[ImageRecord], shard_size: int, fingerprint: str) -> dict[str, object]:
    """What must not change for staged shards to be reused: the image list, shard size and CLIP."""
    digest = hashlib.sha256("\n".join(r.uri for r in records).encode()).hexdigest()
    return {"images": len(records), "images_sha256": digest, "shard_size": shard_size, "fingerprint": fingerprint}


def open_staging(out: Path, key: dict[str, object], resume: bool) -> Path:
    """The staging folder for this job: reused with `resume` (when it matches), else started afresh."""
    staging = staging_dir(out)
    job = staging / JOB_FILE
    if staging.exists() and resume and job.is_file():
        found = json.loads(job.read_text(encoding="utf-8"))
        if found != key:
            raise IncompatibleArtifact(
                f"{staging} holds shards of another build (images, --shard-size or model differ); "
                f"rerun without --resume to start over")
        return staging
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    write_json_atomic(job, key)
    return staging


def done_shards(staging: Path, specs: list[ShardSpec]) -> set[int]:
    """Shards already staged (a shard file only appears once complete)."""
    return {s.index for s in specs if shard_path(staging, s.index).is_file()}
