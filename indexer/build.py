"""`build_index`: source → embeddings → FAISS index → index folder, written atomically."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evdsearch.clip_models import LoadedClip, load_clip
from evdsearch.diskspace import explain_disk_errors
from evdsearch.errors import InvalidInput, UserError
from evdsearch.indexer import faiss_backend
from evdsearch.indexer.distributor import DISTRIBUTORS, Distributor, EmbedJob, SequentialDistributor
from evdsearch.indexer.manifest import (
    DATA_FILES,
    MANIFEST_FILE,
    ROW_BYTES,
    Manifest,
    checksums,
    now_utc,
    write_manifest,
)
from evdsearch.indexer.shard_index import build_faiss, write_rows
from evdsearch.indexer.shards import done_shards, job_key, open_staging, plan_shards
from evdsearch.indexer.sources import collect_images
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
    distributed: str = "none"  # which distributor embeds the shards: none (this process) | ray
    ray_address: str | None = None  # ray: cluster to join (None: start a local one)
    ray_workers: int = 0  # ray: embedding actors (0: one per CPU of the cluster, at most 8)
    gpus_per_worker: float = 0.0  # ray: GPUs per embedding actor (0: CPU actors)
    shard_size: int = 4096  # images per staged embedding shard (the unit of resume and of Ray output)
    resume: bool = False  # reuse the shards an interrupted build of the same job already staged
    backend: str = "faiss"  # where vectors are searched: faiss (index.faiss in the folder) | milvus
    milvus_uri: str | None = None  # milvus: Milvus Lite file (*.db) or server address
    collection: str | None = None  # milvus: collection name (None: the default, "evdsearch")
    milvus_index: str = "FLAT"  # milvus: FLAT (exact) | IVF_FLAT | HNSW


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


def _milvus_target(cfg: IndexBuildConfig) -> Any:
    """The Milvus target of a `--backend milvus` build, or None for FAISS."""
    if cfg.backend == "faiss":
        return None
    if cfg.backend != "milvus":
        raise InvalidInput(f"--backend must be faiss or milvus, not {cfg.backend!r}")
    if not cfg.milvus_uri:
        raise InvalidInput("--backend milvus needs --milvus-uri (a Milvus Lite file such as index.db, "
                           "or a server address such as http://localhost:19530)")
    from evdsearch.indexer.milvus_backend import DEFAULT_COLLECTION, MilvusTarget, normalise_uri

    return MilvusTarget(normalise_uri(cfg.milvus_uri), cfg.collection or DEFAULT_COLLECTION, cfg.milvus_index)


def make_distributor(cfg: IndexBuildConfig, clip: LoadedClip) -> Distributor:
    """The distributor `cfg.distributed` names; Ray is imported only when asked for."""
    if cfg.distributed == "none":
        return SequentialDistributor(clip)
    if cfg.distributed == "ray":
        from evdsearch.indexer.ray_distributor import RayConfig, RayDistributor

        return RayDistributor(RayConfig(address=cfg.ray_address, workers=cfg.ray_workers,
                                        gpus_per_worker=cfg.gpus_per_worker))
    raise InvalidInput(f"--distributed must be one of {', '.join(DISTRIBUTORS)}, not {cfg.distributed!r}")


def build_index(cfg: IndexBuildConfig, clip: LoadedClip | None = None,
                distributor: Distributor | None = None) -> BuildReport:
    """Embed every readable image of `cfg.source` and write the index folder `cfg.out` atomically.

    Images are embedded shard by shard into a staging folder beside `cfg.out` (by `distributor`,
    default the one `cfg.distributed` names), then assembled with bounded memory. An exception or
    Ctrl-C leaves a previous index at `cfg.out` untouched and the finished shards staged for `--resume`.
    `clip` may be passed pre-loaded (tests, benchmarks); it must match `cfg.model`.
    """
    out = Path(cfg.out)
    if cfg.batch_size < 1:
        raise InvalidInput(f"--batch-size must be at least 1, got {cfg.batch_size}")
    source = collect_images(cfg.source, cfg.split, cfg.images_root)
    _check_out_dir(out, cfg.force)
    specs = plan_shards(source.records, cfg.shard_size)
    clip = clip or load_clip(cfg.model, cfg.pretrained, cfg.device)
    target = _milvus_target(cfg)
    if target is None:  # A factory that cannot work (bad string, too many IVF lists) fails before embedding.
        faiss_backend.check_trainable(faiss_backend.make_index(clip.embed_dim, cfg.factory), cfg.factory,
                                      len(source.records))
    distributor = distributor or make_distributor(cfg, clip)
    start = time.perf_counter()
    staging = open_staging(out, job_key(source.records, cfg.shard_size, clip.identity.fingerprint), cfg.resume)
    done = done_shards(staging, specs)
    todo = [s for s in specs if s.index not in done]
    job = EmbedJob(cfg.model, cfg.pretrained, cfg.device, cfg.batch_size, cfg.workers, clip.preprocess)
    needed = len(source.records) * (clip.embed_dim * 8 + ROW_BYTES)  # embeddings + a Flat index + items
    kept = f"the shards embedded so far stay in {staging} for --resume; {out} is unchanged"
    with explain_disk_errors(staging, needed, kept), \
            tqdm(total=len(source.records), initial=sum(len(specs[i].records) for i in done), unit="img",
                 desc=f"embedding ({distributor.name})", disable=not cfg.progress) as bar:
        distributor.embed(job, todo, staging, lambda _index, images: bar.update(images))
    # A new version behind out/current: a server reading the old version keeps it until it reloads.
    with publish_version(out, force=cfg.force, compat_files=(*DATA_FILES, MANIFEST_FILE),
                         needed_bytes=needed) as tmp:
        rows = write_rows(staging, len(specs), source.records, tmp, clip.embed_dim)
        if not rows.count:
            first = rows.skipped[0] if rows.skipped else {"path": "?", "reason": "?"}
            raise InvalidInput(f"none of the {len(source.records)} images could be read "
                               f"(first: {first['path']}: {first['reason']})")
        if target is None:
            build_faiss(tmp, cfg.factory, cfg.device)
        else:
            from evdsearch.indexer.milvus_backend import fill_from_folder

            fill_from_folder(target, tmp, replace=cfg.force)
        identity = clip.identity
        manifest = Manifest(
            model=identity.model, pretrained=identity.pretrained, fingerprint=identity.fingerprint,
            dim=identity.embed_dim, count=rows.count, factory=cfg.factory if target is None else target.index_type,
            created=now_utc(), checksums=checksums(tmp), skipped=rows.skipped, source=source.info,
            backend={"type": "faiss"} if target is None else target.to_backend(),
        )
        write_manifest(tmp, manifest)  # written last: a folder with a manifest is a complete index
    shutil.rmtree(staging, ignore_errors=True)
    return BuildReport(out, rows.count, len(source.records), rows.skipped, time.perf_counter() - start, manifest)
