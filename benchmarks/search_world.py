"""The search options on a shapes world through the engine: filters, pages on Flat / IVF / HNSW, a score threshold
between absent and present colour-shape pairs, negative terms, dedup of jittered copies, MMR, hostile filters.

The world's split is indexed without the images that hold a few held-out colour-shape pairs (so those pairs are
absent), with a sidecar of per-image fields (objects, first object's colour and shape, whether any is red).
"""

from __future__ import annotations

import json
import random
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.benchmarks.search_world_checks import (
    check_dedup_and_mmr,
    check_filters,
    check_hostile,
    check_pages,
    check_terms,
    check_threshold,
)


@dataclass
class WorldBenchConfig:
    """What the world half of `bench search-features` measures."""

    world: Path  # shapes world folder (dataset_shapes.json, images/)
    clip: Path  # its CLIP checkpoint folder
    workdir: Path  # indexes and copies are built here (reused when present)
    kb: Path | None = None  # knowledge base (rewriting); None: queries are not rewritten
    split: str = "test"  # the split indexed
    held_out: int = 4  # colour-shape pairs removed from the index (their images dropped)
    copies: int = 200  # images copied twice with jitter for dedup and MMR
    k: int = 10  # hits per query (filters, threshold: the present pair's images must be in the top k)
    queries: int = 20  # captions queried for the filter and page checks
    twins: tuple[str, ...] = ("IVF32,Flat", "HNSW16")  # index types built beside Flat from the same embeddings
    seed: int = 0


def _objects_fields(objects: list[dict[str, Any]]) -> dict[str, Any]:
    first = objects[0] if objects else {}
    return {"objects": len(objects), "color1": first.get("color", ""), "shape1": first.get("shape", ""),
            "has_red": any(o.get("color") == "red" for o in objects)}


def prepare(cfg: WorldBenchConfig) -> dict[str, Any]:
    """The subset JSON and sidecar, the Flat index over it and IVF / HNSW twins (same embeddings)."""
    from evdsearch.indexer.build import IndexBuildConfig, build_index

    data = json.loads((cfg.world / "dataset_shapes.json").read_text(encoding="utf-8"))
    images = [img for img in data["images"] if img["split"] == cfg.split]
    pairs: dict[tuple[str, str], int] = {}
    for img in images:
        for pair in {(o["color"], o["shape"]) for o in img.get("objects", [])}:
            pairs[pair] = pairs.get(pair, 0) + 1
    rare = sorted(p for p, n in pairs.items() if 2 <= n <= 6)
    held_out = random.Random(cfg.seed).sample(rare, min(cfg.held_out, len(rare)))
    kept = [img for img in images if not {(o["color"], o["shape"]) for o in img.get("objects", [])} & set(held_out)]
    cfg.workdir.mkdir(parents=True, exist_ok=True)
    subset = cfg.workdir / "dataset_subset.json"
    subset.write_text(json.dumps({**data, "images": kept}), encoding="utf-8")
    sidecar = cfg.workdir / "metadata.jsonl"
    with sidecar.open("w", encoding="utf-8") as out:
        for img in kept:
            path = f"{img.get('filepath', '')}/{img['filename']}".lstrip("/")
            out.write(json.dumps({"path": path, **_objects_fields(img.get("objects", []))}) + "\n")
    flat = cfg.workdir / "index-flat"
    if not flat.exists():
        build_index(IndexBuildConfig(source=subset, out=flat, model=str(cfg.clip), images_root=cfg.world,
                                     split=cfg.split, device="cpu", progress=False, metadata=sidecar))
    indexes = {"Flat": flat}
    for factory in cfg.twins:
        indexes[factory] = _twin(flat, cfg.workdir / f"index-{factory.replace(',', '-').lower()}", factory)
    objects = {img["filename"]: img.get("objects", []) for img in kept}
    return {"indexes": indexes, "held_out": held_out, "objects": objects, "subset": subset,
            "present": {p: n for p, n in pairs.items() if p not in held_out}}


def _twin(flat: Path, out: Path, factory: str) -> Path:
    """A copy of the Flat index folder whose vector index is `factory`, built from the same embeddings."""
    from evdsearch.indexer import faiss_backend
    from evdsearch.indexer.manifest import (
        EMBEDDINGS_FILE,
        INDEX_FILE,
        checksums,
        read_manifest,
        write_manifest,
    )
    from evdsearch.integrity import write_sums
    from evdsearch.versioned import current_version

    if out.exists():
        return out
    shutil.copytree(flat, out, symlinks=True)
    folder = current_version(out)
    vectors = np.load(folder / EMBEDDINGS_FILE)
    (folder / INDEX_FILE).unlink()
    faiss_backend.write(faiss_backend.build(vectors, factory, device="cpu"), folder / INDEX_FILE)
    manifest = read_manifest(folder)
    manifest.factory, manifest.checksums = factory, checksums(folder)
    (folder / "manifest.json").unlink()
    write_manifest(folder, manifest)
    write_sums(folder)  # the copy's files changed: its version's checksum list is rewritten, or loading refuses it
    return out


def open_engine(index: Path, cfg: WorldBenchConfig, kb: Any = None, nprobe: int = 4, ef_search: int = 16) -> Any:
    """An engine over `index` sharing the open knowledge base `kb` (LMDB opens a folder once per process);
    IVF / HNSW search shallow (nprobe 4, efSearch 16) so their approximation shows."""
    from evdsearch.engine.api import EngineConfig
    from evdsearch.engine.search import SearchEngine
    from evdsearch.indexer import faiss_backend

    engine = SearchEngine.open(EngineConfig(index_dir=str(index), kb_dir=str(cfg.kb) if cfg.kb else None,
                                            rewriter="template" if cfg.kb else "none", device="cpu"), kb=kb)
    engine.kb = None  # the caller closes the shared knowledge base
    faiss_backend.set_search_params(engine.store.index, nprobe, ef_search)
    engine.store.nprobe, engine.store.ef_search = nprobe, ef_search
    return engine


def measure(cfg: WorldBenchConfig, progress: Any = print) -> dict[str, Any]:
    prepared = prepare(cfg)
    captions = [img["sentences"][0]["raw"] for img in json.loads(prepared["subset"].read_text())["images"]]
    queries = random.Random(cfg.seed).sample(captions, min(cfg.queries, len(captions)))
    result: dict[str, Any] = {"config": {k: str(v) for k, v in vars(cfg).items()},
                              "held_out": [list(p) for p in prepared["held_out"]]}
    from evdsearch.indexer.kb import KnowledgeBase

    kb = KnowledgeBase.open(cfg.kb) if cfg.kb else None
    engines = {factory: open_engine(path, cfg, kb) for factory, path in prepared["indexes"].items()}
    try:
        result["filters"] = check_filters(engines, queries, cfg.k)
        progress(f"filters: {result['filters']}")
        result["pages"] = check_pages(engines, queries)
        progress(f"pages: {result['pages']}")
        flat = engines["Flat"]
        result["threshold"] = check_threshold(flat, prepared, cfg.k)
        progress(f"threshold: { {k: v for k, v in result['threshold'].items() if k != 'pairs'} }")
        result["terms"] = check_terms(flat, prepared["objects"])
        progress(f"terms: {result['terms']}")
        result["hostile"] = check_hostile(flat)
        progress(f"hostile filters: {result['hostile']}")
        result["dedup"] = check_dedup_and_mmr(cfg, prepared, lambda index: open_engine(index, cfg, kb))
    finally:
        if kb is not None:
            kb.close()
    progress(f"dedup: { {k: v for k, v in result['dedup'].items() if k != 'sweep'} }")
    return result
