"""The distributor seam: one interface that embeds a build's shards, run in-process (default) or on Ray."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from evdsearch.clip_models import LoadedClip
from evdsearch.indexer.embed import embed_images
from evdsearch.indexer.shards import Shard, ShardSpec, write_shard

DISTRIBUTORS = ("none", "ray")  # --distributed choices; "none" is the sequential in-process path


@dataclass
class EmbedJob:
    """How to embed: what every distributor needs to build its own CLIP and batches."""

    model: str  # open_clip name or checkpoint folder (workers load it themselves)
    pretrained: str | None  # tag or weights file for `model`
    device: str  # auto | cpu | cuda for the encoder
    batch_size: int  # images per forward pass
    decode_workers: int = 0  # sequential: image decoding threads (0: min(8, CPUs))
    preprocess: Any = None  # the CLIP's eval transform when the caller has it loaded (Ray ships it to tasks)


class Distributor(Protocol):
    """Embeds shards and stages each one with `write_shard`; it knows nothing of indexes or manifests."""

    name: str

    def embed(self, job: EmbedJob, shards: list[ShardSpec], staging: Path,
              on_shard: Callable[[int, int], None]) -> None:
        """Embed `shards` into `staging`; call on_shard(shard index, images in it) after each is written."""
        ...


def embed_shard(clip: LoadedClip, spec: ShardSpec, batch_size: int, decode_workers: int) -> Shard:
    """One shard in this process: decode in a thread pool, encode batch by batch."""
    result = embed_images(clip, [r.path for r in spec.records], batch_size, decode_workers, progress=False)
    return Shard(result.embeddings, [spec.start + i for i in result.kept],
                 [spec.records[i].uri for i in result.kept],
                 [(spec.start + i, reason) for i, reason in result.skipped])


class SequentialDistributor:
    """The default: shards embedded one after another in this process, with an already loaded CLIP."""

    name = "none"

    def __init__(self, clip: LoadedClip) -> None:
        self.clip = clip  # loaded once by the build; reused for every shard

    def embed(self, job: EmbedJob, shards: list[ShardSpec], staging: Path,
              on_shard: Callable[[int, int], None]) -> None:
        for spec in shards:
            write_shard(staging, spec.index, embed_shard(self.clip, spec, job.batch_size, job.decode_workers))
            on_shard(spec.index, len(spec.records))
