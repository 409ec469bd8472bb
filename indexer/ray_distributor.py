"""The Ray Data distributor: images decoded as Ray tasks, embedded by a pool of CLIP actors, staged as shards.

Ray is imported only here and only when `--distributed ray` is asked for.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import UserError
from evdsearch.indexer.distributor import EmbedJob
from evdsearch.indexer.shards import Shard, ShardSpec, write_shard

MAX_DEFAULT_WORKERS = 8  # actors started when --workers is 0: one per cluster CPU, at most this many


@dataclass
class RayConfig:
    """Where and how wide the Ray build runs."""

    address: str | None = None  # cluster to join ("auto", "ray://host:10001", ...); None: a local Ray
    workers: int = 0  # embedding actors; 0: one per cluster CPU, at most MAX_DEFAULT_WORKERS
    gpus_per_worker: float = 0.0  # GPUs each actor reserves (0: CPU actors)
    local_cpus: int | None = None  # local Ray only: CPUs it may use (None: all)


def decode_batch(batch: dict[str, np.ndarray], preprocess: Any) -> dict[str, np.ndarray]:
    """A Ray task: decode and preprocess images; unreadable ones get zero pixels and a reason."""
    from evdsearch.indexer.embed import _decode_or_reason

    pixels, errors = [], []
    for path in batch["path"].tolist():
        decoded = _decode_or_reason(Path(path), preprocess)
        if isinstance(decoded, str):
            pixels.append(None)
            errors.append(decoded)
        else:
            pixels.append(decoded.numpy())
            errors.append("")
    shape = next((p.shape for p in pixels if p is not None), (3, 1, 1))
    stacked = np.stack([p if p is not None else np.zeros(shape, np.float32) for p in pixels])
    return {"shard": batch["shard"], "pos": batch["pos"], "pixels": stacked, "error": np.asarray(errors, dtype=str)}


class ClipEmbedder:
    """A Ray actor: loads the CLIP once, then encodes batches of preprocessed pixels."""

    def __init__(self, model: str, pretrained: str | None, device: str) -> None:
        from evdsearch.clip_models import load_clip

        self.clip = load_clip(model, pretrained, device)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        from evdsearch.indexer.embed import encode_batch

        ok = batch["error"] == ""
        vectors = np.zeros((len(ok), self.clip.embed_dim), dtype=np.float32)
        if ok.any():
            vectors[ok] = encode_batch(self.clip, list(torch.from_numpy(np.ascontiguousarray(batch["pixels"][ok]))))
        return {"shard": batch["shard"], "pos": batch["pos"], "vector": vectors, "error": batch["error"]}


class RayDistributor:
    """Embeds shards on a Ray cluster (Ray Data `map_batches`: decode tasks, then an actor pool)."""

    name = "ray"

    def __init__(self, config: RayConfig, embedder: type = ClipEmbedder) -> None:
        self.config = config
        self.embedder = embedder  # the actor class (tests pass one that dies once)

    def embed(self, job: EmbedJob, shards: list[ShardSpec], staging: Path,
              on_shard: Callable[[int, int], None]) -> None:
        if not shards:
            return
        ray = _ray()
        started = _connect(ray, self.config)
        try:
            self._run(ray, job, shards, staging, on_shard)
        finally:
            if started:
                ray.shutdown()

    def _run(self, ray: Any, job: EmbedJob, shards: list[ShardSpec], staging: Path,
             on_shard: Callable[[int, int], None]) -> None:
        from evdsearch.clip_models import load_clip

        ctx = ray.data.DataContext.get_current()
        ctx.execution_options.preserve_order = True  # shards complete in order: the driver holds about one
        ctx.enable_progress_bars = False  # the build shows one bar of its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)  # no per-10-s execution summaries
        preprocess = job.preprocess or load_clip(job.model, job.pretrained, "cpu").preprocess
        rows = [{"shard": s.index, "pos": s.start + i, "path": str(r.path)}
                for s in shards for i, r in enumerate(s.records)]
        workers = self.config.workers or min(MAX_DEFAULT_WORKERS, max(1, int(ray.cluster_resources().get("CPU", 1))))
        gpus = self.config.gpus_per_worker
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows) // job.batch_size, 200)))
        ds = ds.map_batches(decode_batch, fn_kwargs={"preprocess": preprocess}, batch_size=job.batch_size,
                            batch_format="numpy")
        ds = ds.map_batches(self.embedder, fn_constructor_args=(job.model, job.pretrained, "cuda" if gpus else "cpu"),
                            batch_size=job.batch_size, batch_format="numpy",
                            compute=ray.data.ActorPoolStrategy(size=workers), num_gpus=gpus or None)
        # Ray Data restarts a dead actor and retries its batch by default (max_restarts=-1, max_task_retries=-1).
        by_index = {s.index: s for s in shards}
        pending: dict[int, list[dict[str, np.ndarray]]] = {}
        seen: dict[int, int] = {}
        for batch in ds.iter_batches(batch_size=None, batch_format="numpy"):
            for shard_index in np.unique(batch["shard"]).tolist():
                mask = batch["shard"] == shard_index
                pending.setdefault(shard_index, []).append({k: v[mask] for k, v in batch.items()})
                seen[shard_index] = seen.get(shard_index, 0) + int(mask.sum())
                spec = by_index[shard_index]
                if seen[shard_index] == len(spec.records):
                    write_shard(staging, shard_index, _shard(spec, pending.pop(shard_index)))
                    on_shard(shard_index, len(spec.records))


def _shard(spec: ShardSpec, parts: list[dict[str, np.ndarray]]) -> Shard:
    """Rows of one shard (any order) as a staged shard, in source order."""
    pos = np.concatenate([p["pos"] for p in parts])
    order = np.argsort(pos, kind="stable")
    pos = pos[order]
    vectors = np.concatenate([p["vector"] for p in parts])[order]
    errors = np.concatenate([p["error"] for p in parts])[order]
    ok = errors == ""
    uris = [spec.records[p - spec.start].uri for p in pos[ok].tolist()]
    skipped = [(int(p), str(e)) for p, e in zip(pos[~ok].tolist(), errors[~ok].tolist(), strict=True)]
    return Shard(vectors[ok], pos[ok], uris, skipped)


def _ray() -> Any:
    try:
        import ray
        import ray.data  # noqa: F401
    except ImportError as err:
        raise UserError("--distributed ray needs Ray Data: pip install 'evdsearch[ray]'") from err
    return ray


def _connect(ray: Any, config: RayConfig) -> bool:
    """Join the cluster, or start a local Ray; True when this call started it (and must shut it down)."""
    if ray.is_initialized():
        return False
    if config.address:
        ray.init(address=config.address, include_dashboard=False, log_to_driver=False)
    else:
        # A private, in-process cluster: no token to manage (Ray 2.60 enables token auth by default),
        # and workers at the driver's priority: they do the work (Ray's default renices them to +15).
        os.environ.setdefault("RAY_AUTH_MODE", "disabled")
        os.environ.setdefault("RAY_worker_niceness", "0")
        ray.init(num_cpus=config.local_cpus, include_dashboard=False, log_to_driver=False)
    return True
