"""Scale-out benchmark: Ray vs sequential indexing, resume after kill, FAISS vs Milvus Lite, add/delete round trip."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 256  # requests per search_batch call (the engine's limit)


@dataclass
class ScaleOutConfig:
    """What `evdsearch bench scale-out` runs."""

    source: Path  # Karpathy JSON of a shapes world (dataset_shapes.json)
    model: str  # CLIP checkpoint folder
    out: Path  # working folder (indexes, Milvus Lite file) and results
    split: str = "test"  # split indexed and queried
    add_split: str = "train"  # split whose first `add_count` images are added (then deleted) in the round trip
    add_count: int = 100  # images added in the round trip
    shard_size: int = 128  # images per shard
    ray_workers: int = 2  # embedding actors of the Ray build
    batch_size: int = 64  # images per forward pass
    k: int = 10  # hits per query
    latency_queries: int = 200  # single-query calls timed per backend


def _build(cfg: ScaleOutConfig, out: Path, **kw: Any) -> Any:
    from evdsearch.indexer.build import IndexBuildConfig, build_index

    return build_index(IndexBuildConfig(source=cfg.source, out=out, model=cfg.model, split=cfg.split, device="cpu",
                                        batch_size=cfg.batch_size, shard_size=cfg.shard_size, progress=False,
                                        force=True, **kw))


def indexing(cfg: ScaleOutConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Sequential and Ray builds of the same images: images/s and the equality check."""
    from evdsearch.indexer.store import IndexStore

    out: dict[str, Any] = {}
    for name, kw in (("sequential", {}), ("ray", {"distributed": "ray", "ray_workers": cfg.ray_workers})):
        start = time.perf_counter()
        report = _build(cfg, cfg.out / name, **kw)
        seconds = time.perf_counter() - start
        out[name] = {"images": report.candidates, "seconds": seconds, "images_per_s": report.candidates / seconds}
        log(f"{name}: {report.candidates} images in {seconds:.1f} s ({report.candidates / seconds:.1f} img/s)")
    seq, ray = IndexStore.open(cfg.out / "sequential"), IndexStore.open(cfg.out / "ray")
    out["same_ids"] = [seq.item(i)["uri"] for i in range(seq.count)] == [ray.item(i)["uri"] for i in range(ray.count)]
    out["max_abs_diff"] = float(np.max(np.abs(np.asarray(seq.embeddings) - np.asarray(ray.embeddings))))
    log(f"ray == sequential: same ids {out['same_ids']}, max |vector diff| {out['max_abs_diff']:.2e}")
    return out


def resume_after_kill(cfg: ScaleOutConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """`evdsearch index` killed (SIGKILL) once two shards are staged, then rerun with --resume."""
    from evdsearch.indexer.shards import staging_dir

    target = cfg.out / "resumed"
    shutil.rmtree(target, ignore_errors=True)
    shutil.rmtree(staging_dir(target), ignore_errors=True)
    cmd = [sys.executable, "-m", "evdsearch", "index", str(cfg.source), "--split", cfg.split, "--out", str(target),
           "--model", cfg.model, "--device", "cpu", "--shard-size", str(cfg.shard_size), "--no-progress"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staged = staging_dir(target)
    while proc.poll() is None and len(list(staged.glob("shard-*.npz"))) < 2:
        time.sleep(0.2)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    kept = sorted(p.name for p in staged.glob("shard-*.npz"))
    log(f"killed after {len(kept)} staged shards")
    start = time.perf_counter()
    done = subprocess.run([*cmd, "--resume"], capture_output=True, text=True, check=True)
    seconds = time.perf_counter() - start
    log(done.stdout.strip())
    from evdsearch.indexer.store import IndexStore

    same = np.allclose(np.asarray(IndexStore.open(target).embeddings),
                       np.asarray(IndexStore.open(cfg.out / "sequential").embeddings), atol=1e-5)
    return {"shards_staged_at_kill": len(kept), "resume_seconds": seconds, "equal_to_fresh_build": bool(same),
            "resume_output": done.stdout.strip()}


def milvus_folder(faiss_folder: Path, out: Path, db: Path) -> None:
    """A Milvus-backed copy of a built FAISS folder: the same embeddings loaded into a Milvus Lite FLAT
    collection (what `index --backend milvus` does after embedding; the benchmark skips re-embedding)."""
    from evdsearch.indexer.manifest import INDEX_FILE, checksums, read_manifest, write_manifest
    from evdsearch.indexer.milvus_backend import MilvusTarget, fill_from_folder, normalise_uri

    shutil.rmtree(out, ignore_errors=True)
    shutil.copytree(faiss_folder, out)
    (out / INDEX_FILE).unlink()
    target = MilvusTarget(normalise_uri(str(db)), "shapes", "FLAT")
    fill_from_folder(target, out, replace=True)
    manifest = read_manifest(out)
    manifest.backend, manifest.factory, manifest.checksums = target.to_backend(), "FLAT", checksums(out)
    write_manifest(out, manifest)


def faiss_vs_milvus(cfg: ScaleOutConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Recall@1/5/10 over every caption of the split, and single-query latency, through the search engine."""
    from evdsearch.engine.api import EngineConfig
    from evdsearch.engine.search import SearchEngine
    from evdsearch.karpathy import load_karpathy
    from evdsearch.search_api import SearchRequest

    milvus_folder(cfg.out / "sequential", cfg.out / "milvus", cfg.out / "milvus.db")
    dataset = load_karpathy(cfg.source)
    pairs = [(s.raw, str(dataset.image_path(img).resolve())) for img in dataset.split(cfg.split) for s in img.sentences]
    out: dict[str, Any] = {"queries": len(pairs)}
    ranked = {}
    for name, folder in (("faiss", cfg.out / "sequential"), ("milvus", cfg.out / "milvus")):
        with SearchEngine.open(EngineConfig(index_dir=str(folder), rewriter="none", device="cpu")) as engine:
            requests = [SearchRequest(text=c, k=cfg.k) for c, _ in pairs]
            responses = [r for i in range(0, len(requests), BATCH)
                         for r in engine.search_batch(requests[i:i + BATCH])]
            ranked[name] = [[h.id for h in r.hits] for r in responses]
            uris = [[h.uri for h in r.hits] for r in responses]
            recall = {f"R@{k}": float(np.mean([t in u[:k] for u, (_, t) in zip(uris, pairs, strict=True)]))
                      for k in (1, 5, 10)}
            latencies = []
            for caption, _ in pairs[: cfg.latency_queries]:
                start = time.perf_counter()
                engine.search(SearchRequest(text=caption, k=cfg.k))
                latencies.append((time.perf_counter() - start) * 1000)
            out[name] = {**recall, "p50_ms": float(np.percentile(latencies, 50)),
                         "p99_ms": float(np.percentile(latencies, 99))}
            log(f"{name}: {out[name]}")
    out["same_top_k_ids"] = ranked["faiss"] == ranked["milvus"]
    return out


def add_delete(cfg: ScaleOutConfig, log: Callable[[str], None]) -> dict[str, Any]:
    """Add another split to a copy of the FAISS index, add it again (idempotent), delete it by URI."""
    from evdsearch.indexer.manifest import read_manifest
    from evdsearch.indexer.update import add_images, delete_items
    from evdsearch.karpathy import load_karpathy

    folder = cfg.out / "updated"
    shutil.rmtree(folder, ignore_errors=True)
    shutil.copytree(cfg.out / "sequential", folder)
    out: dict[str, Any] = {"start_count": read_manifest(folder).count}
    dataset = load_karpathy(cfg.source)
    uris = [str(dataset.image_path(img).resolve()) for img in dataset.split(cfg.add_split)][: cfg.add_count]
    new = cfg.out / "new_images"  # links to the first add_count images of add_split (URIs resolve to them)
    shutil.rmtree(new, ignore_errors=True)
    new.mkdir()
    for uri in uris:
        (new / Path(uri).name).symlink_to(uri)
    for step in ("add", "add_again"):
        report = add_images(folder, new, device="cpu", progress=False)
        out[step] = {"added": report.added, "unchanged": report.unchanged, "seconds": report.seconds,
                     "live": report.live}
        log(f"{step}: {out[step]}")
    report = delete_items(folder, uris=uris)
    out["delete"] = {"deleted": report.deleted, "seconds": report.seconds, "live": report.live}
    log(f"delete: {out['delete']}")
    return out


def run_scale_out(cfg: ScaleOutConfig, log: Callable[[str], None] = print) -> dict[str, Any]:
    cfg.out.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    result: dict[str, Any] = {"benchmark": "scale-out", "machine": "2-core CPU dev box", "config": asdict(cfg)}
    result["config"] = {k: str(v) for k, v in result["config"].items()}
    result["indexing"] = indexing(cfg, log)
    result["resume"] = resume_after_kill(cfg, log)
    result["faiss_vs_milvus"] = faiss_vs_milvus(cfg, log)
    result["add_delete"] = add_delete(cfg, log)
    return result
