"""The distributor seam: Ray Data builds equal sequential ones, interrupted builds resume, dead actors retry."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from test_index_build import write_images

from evdsearch.clip_models import LoadedClip, load_clip
from evdsearch.indexer.build import IndexBuildConfig, build_index
from evdsearch.indexer.distributor import SequentialDistributor
from evdsearch.indexer.shards import staging_dir
from evdsearch.indexer.store import IndexStore

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def clip(tiny_clip_dir: Path) -> LoadedClip:
    return load_clip(str(tiny_clip_dir), device="cpu")


@pytest.fixture(scope="module")
def local_ray():
    """One local Ray for the module (start-up costs seconds on two cores)."""
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


def config(source: Path, out: Path, clip: LoadedClip, **kw) -> IndexBuildConfig:
    return IndexBuildConfig(source=source, out=out, model=clip.identity.model, device="cpu", batch_size=4,
                            workers=2, progress=False, shard_size=8, **kw)


def assert_same_index(a: Path, b: Path) -> None:
    """Same ids (row -> uri) and the same vectors, to float tolerance."""
    sa, sb = IndexStore.open(a), IndexStore.open(b)
    assert [sa.item(i)["uri"] for i in range(sa.count)] == [sb.item(i)["uri"] for i in range(sb.count)]
    np.testing.assert_allclose(np.asarray(sa.embeddings), np.asarray(sb.embeddings), atol=1e-5)
    assert sa.manifest.skipped == sb.manifest.skipped


class Interrupt(SequentialDistributor):
    """Embeds `stop_after` shards, then fails like a Ctrl-C would."""

    def __init__(self, clip: LoadedClip, stop_after: int) -> None:
        super().__init__(clip)
        self.stop_after, self.embedded = stop_after, []

    def embed(self, job, shards, staging, on_shard):
        def count(index: int, images: int) -> None:
            self.embedded.append(index)
            on_shard(index, images)
            if len(self.embedded) == self.stop_after:
                raise KeyboardInterrupt

        super().embed(job, shards, staging, count)


def test_sequential_build_resumes_after_interrupt(tmp_path: Path, clip: LoadedClip) -> None:
    write_images(tmp_path / "images", 20)
    (tmp_path / "images" / "bad.png").write_bytes(b"not an image")
    fresh = build_index(config(tmp_path / "images", tmp_path / "fresh", clip), clip=clip)
    first = Interrupt(clip, stop_after=2)
    with pytest.raises(KeyboardInterrupt):
        build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip, distributor=first)
    assert not (tmp_path / "index").exists() and first.embedded == [0, 1]
    second = Interrupt(clip, stop_after=99)
    report = build_index(config(tmp_path / "images", tmp_path / "index", clip, resume=True), clip=clip,
                         distributor=second)
    assert second.embedded == [2]  # shards 0 and 1 were staged and not embedded again
    assert report.count == fresh.count == 20 and len(report.skipped) == 1
    assert_same_index(tmp_path / "fresh", tmp_path / "index")
    assert not staging_dir(tmp_path / "index").exists()  # removed once the index is in place


def test_without_resume_staged_shards_are_redone(tmp_path: Path, clip: LoadedClip) -> None:
    write_images(tmp_path / "images", 12)
    with pytest.raises(KeyboardInterrupt):
        build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip,
                    distributor=Interrupt(clip, stop_after=1))
    again = Interrupt(clip, stop_after=99)
    build_index(config(tmp_path / "images", tmp_path / "index", clip), clip=clip, distributor=again)
    assert again.embedded == [0, 1]


@pytest.mark.slow  # a Ray actor starts in 20-60 s on two busy cores
def test_ray_build_equals_sequential(tmp_path: Path, clip: LoadedClip, local_ray) -> None:
    write_images(tmp_path / "images", 20)
    (tmp_path / "images" / "bad.png").write_bytes(b"not an image")
    build_index(config(tmp_path / "images", tmp_path / "seq", clip), clip=clip)
    report = build_index(config(tmp_path / "images", tmp_path / "ray", clip, distributed="ray", ray_workers=1),
                         clip=clip)
    assert report.count == 20 and len(report.skipped) == 1
    assert_same_index(tmp_path / "seq", tmp_path / "ray")


class DiesOnce:
    """An embedding actor that kills its own process on its first batch (once per test, via a flag file)."""

    def __init__(self, model: str, pretrained: str | None, device: str, flag: str) -> None:
        from evdsearch.indexer.ray_distributor import ClipEmbedder

        self.inner, self.flag = ClipEmbedder(model, pretrained, device), Path(flag)

    def __call__(self, batch):
        if self.flag.exists():
            self.flag.unlink()
            os._exit(1)  # the worker process dies mid-run, as on a lost node
        return self.inner(batch)


@pytest.mark.slow
def test_ray_resumes_and_retries_a_killed_worker(tmp_path: Path, clip: LoadedClip, local_ray) -> None:
    from ray import cloudpickle

    from evdsearch.indexer.ray_distributor import RayConfig, RayDistributor

    cloudpickle.register_pickle_by_value(__import__(__name__))  # the actor class travels by value
    write_images(tmp_path / "images", 24)
    build_index(config(tmp_path / "images", tmp_path / "seq", clip), clip=clip)
    with pytest.raises(KeyboardInterrupt):
        build_index(config(tmp_path / "images", tmp_path / "ray", clip), clip=clip,
                    distributor=Interrupt(clip, stop_after=1))
    shard0 = staging_dir(tmp_path / "ray") / "shard-00000.npz"
    staged = shard0.stat().st_mtime_ns
    flag = tmp_path / "die-once"
    flag.touch()

    class Embedder(DiesOnce):
        def __init__(self, model, pretrained, device):
            super().__init__(model, pretrained, device, str(flag))

    ray_build = RayDistributor(RayConfig(workers=1), embedder=Embedder)
    build_index(config(tmp_path / "images", tmp_path / "ray", clip, resume=True), clip=clip, distributor=ray_build)
    assert not flag.exists()  # the actor did die once; Ray restarted it and retried its batch
    assert_same_index(tmp_path / "seq", tmp_path / "ray")
    assert not shard0.exists() and staged  # shard 0 was reused (staging removed after success)
