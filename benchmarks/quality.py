"""`bench quality`: recall by caption kind through the serving path, over several worlds, with CIs and paired tests.

Every test caption of every world is a `SearchRequest` answered by `SearchEngine.search_batch` (entity
finding, rewriting, encoding, adaptive or fixed fusion, FAISS) against a FAISS index of that world's
test images built with `evdsearch.indexer`. A caption is a hit at K when its own image is among the
first K hits. Rows are (rewriter, fusion) settings; the table averages recall over the worlds, with a
bootstrap 95 % interval (captions resampled within each world) and an exact McNemar test of R@1
against the `original` row on the same captions.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput
from evdsearch.evaluation.paired_stats import mcnemar
from evdsearch.search_api import DEFAULT_ALPHA

log = logging.getLogger(__name__)
KINDS = ("attribute", "seen_entity", "unseen_entity", "all")  # table columns; "all" pools every caption
KS = (1, 5)  # recall cut-offs reported
BASELINE = "original"  # row every other row is tested against


@dataclass
class WorldSpec:
    """One world: its data, the CLIP its index is built with, and the KBs (one per calibration)."""

    name: str  # label in the report
    data: str  # shapes world folder (or a Karpathy JSON)
    clip: str  # CLIP checkpoint folder
    kbs: dict[str, str]  # KB label -> KB folder; the first is used by fixed-alpha rows
    rewriters: dict[str, str]  # rewriter label -> none | template | rewriter folder
    index: str  # index folder of the test images (built when missing)
    alone: tuple[str, ...] = ()  # rewriter labels encoded on their own, without the template ensemble


@dataclass
class Row:
    """One setting of the table."""

    label: str  # row name
    mode: str  # original | fused
    rewriter: str  # rewriter label ("" for original)
    kb: str  # KB label whose calibration it uses ("" for fixed / original)
    alpha: float | None  # fixed weight, or None for adaptive


@dataclass
class QualityConfig:
    """One `evdsearch bench quality` run."""

    worlds: list[WorldSpec]  # worlds to average over
    out: str  # report folder: quality.md / quality.json / quality.png
    alpha: float = DEFAULT_ALPHA  # the fixed weight rows compare against (EvdCLIP)
    split: str = "test"  # split searched
    bootstrap: int = 1000  # bootstrap resamples for the 95 % intervals
    batch: int = 256  # requests per search_batch call
    device: str = "auto"  # auto | cpu | cuda
    seed: int = 0  # bootstrap seed
    machine: str = ""  # label for the plot (e.g. "2-core CPU dev box")
    extra: dict[str, Any] = field(default_factory=dict)  # notes copied into the JSON


def rows_for(world: WorldSpec, alpha: float) -> list[Row]:
    """original; each rewriter fused at the fixed alpha; each rewriter with each KB's adaptive weights."""
    rows = [Row(BASELINE, "original", "", "", None)]
    for rw in world.rewriters:
        rows.append(Row(f"fused a={alpha:g} + {rw}", "fused", rw, next(iter(world.kbs)), alpha))
    for kb in world.kbs:
        for rw in world.rewriters:
            rows.append(Row(f"fused adaptive[{kb}] + {rw}", "fused", rw, kb, None))
    return rows


def ensure_index(world: WorldSpec, split: str, device: str) -> Path:
    """The world's test-split index: reused when its manifest names this CLIP, else built."""
    from evdsearch.clip_models import load_clip
    from evdsearch.datasets import find_dataset_json
    from evdsearch.indexer.build import IndexBuildConfig, build_index
    from evdsearch.indexer.manifest import read_manifest

    out = Path(world.index)
    clip = load_clip(world.clip, device=device)
    if (out / "manifest.json").is_file():
        if read_manifest(out).fingerprint == clip.identity.fingerprint:
            return out
        log.info("index %s was built with another CLIP: rebuilding", out)
    build_index(IndexBuildConfig(source=find_dataset_json(world.data), out=out, model=world.clip, split=split,
                                 device=device, force=True, progress=False), clip=clip)
    return out


def _targets(store: Any, images: list[Any], dataset: Any) -> dict[str, int]:
    """Image path -> index row."""
    rows = {str(Path(item["uri"]).resolve()): int(item["id"]) for item in store.items}
    out = {}
    for image in images:
        key = str(dataset.image_path(image).resolve())
        if key not in rows:
            raise InvalidInput(f"test image {key} is not in the index {store.directory}; rebuild it")
        out[image.relpath] = rows[key]
    return out


def search_world(world: WorldSpec, rows: list[Row], cfg: QualityConfig) -> dict[str, Any]:
    """Per row: rank hits (R@1, R@5 booleans per caption) and the kinds, for one world."""
    from evdsearch.clip_models import load_clip
    from evdsearch.datasets import open_dataset
    from evdsearch.engine.api import EngineConfig
    from evdsearch.engine.rewriters import create_rewriter
    from evdsearch.engine.rewriting import QueryRewriter
    from evdsearch.engine.search import SearchEngine
    from evdsearch.indexer.kb import KnowledgeBase
    from evdsearch.indexer.store import IndexStore
    from evdsearch.search_api import SearchRequest

    index_dir = ensure_index(world, cfg.split, cfg.device)
    store = IndexStore.open(index_dir, device=cfg.device)
    clip = load_clip(world.clip, device=cfg.device)
    store.check_model(clip.identity)
    dataset = open_dataset(world.data)
    images = dataset.split(cfg.split)
    targets = _targets(store, images, dataset)
    captions = [(s.raw, targets[im.relpath], s.kind) for im in images for s in im.sentences]
    kbs = {label: KnowledgeBase.open(path) for label, path in world.kbs.items()}
    first_kb = next(iter(kbs))
    # one model per spec: "PRO" and "PRO alone" name the same folder and share it
    loaded = {spec: create_rewriter(spec, device=cfg.device) for spec in dict.fromkeys(world.rewriters.values())}
    models = {label: loaded[spec] for label, spec in world.rewriters.items()}
    # One QueryRewriter per (rewriter, KB), caching every caption: each KB's calibration also ranked its
    # descriptions, so a row rewrites with the descriptions of the KB whose weights it uses. Trained rewriters
    # are ensembled with the template as the engine serves them, unless listed in `alone`.
    rewriters = {(rw, kb): QueryRewriter(kbs[kb], model, cache_size=1 << 20, template_ensemble=rw not in world.alone)
                 for rw, model in models.items() for kb in kbs}
    no_rewrite = QueryRewriter(kbs[first_kb], create_rewriter("none"), cache_size=1 << 20)
    out: dict[str, Any] = {"kinds": [k for _, _, k in captions], "rows": {}, "alpha_mean": {}, "seconds": {}}
    try:
        for row in rows:
            started = time.perf_counter()
            kb = kbs[row.kb or first_kb]
            rewriter = rewriters[row.rewriter, row.kb or first_kb] if row.rewriter else no_rewrite
            config = EngineConfig(index_dir=str(index_dir), kb_dir=world.kbs.get(row.kb, ""), device=cfg.device,
                                  alpha=row.alpha if row.alpha is not None else cfg.alpha,
                                  adaptive_alpha=row.alpha is None)
            engine = SearchEngine(store, clip, rewriter, config, kb=kb)
            ranks, alphas = [], []
            for start in range(0, len(captions), cfg.batch):
                chunk = captions[start : start + cfg.batch]
                reqs = [SearchRequest(text=text, k=max(KS), mode=row.mode, explain=True) for text, _, _ in chunk]
                for (_, target, _), resp in zip(chunk, engine.search_batch(reqs), strict=True):
                    ids = [h.id for h in resp.hits]
                    ranks.append(ids.index(target) if target in ids else max(KS))
                    if resp.explanation is not None and resp.explanation.descriptions:
                        alphas.append(resp.explanation.alpha)
            out["rows"][row.label] = np.asarray(ranks, dtype=np.int64)
            out["alpha_mean"][row.label] = round(float(np.mean(alphas)), 4) if alphas and row.mode == "fused" else None
            out["seconds"][row.label] = round(time.perf_counter() - started, 1)
            log.info("%s / %s: R@1 %.3f (%.0f s)", world.name, row.label, float(np.mean(np.asarray(ranks) == 0)),
                     out["seconds"][row.label])
    finally:
        for kb in kbs.values():
            kb.close()
    return out


def _mask(kinds: np.ndarray, kind: str) -> np.ndarray:
    return np.ones(len(kinds), dtype=bool) if kind == "all" else kinds == kind


def summarise(per_world: list[dict[str, Any]], rows: list[Row], cfg: QualityConfig) -> dict[str, Any]:
    """Mean over worlds, bootstrap 95 % CI and McNemar p vs original, per row, kind and K."""
    table: dict[str, Any] = {}
    kinds_per_world = [np.asarray(w["kinds"]) for w in per_world]

    def boot(world: int, kind: str, n: int) -> np.ndarray:
        """Resampled caption indices (bootstrap, n); the same for every row, so intervals are paired."""
        rng = np.random.default_rng([cfg.seed, world, KINDS.index(kind)])
        return rng.integers(0, n, size=(cfg.bootstrap, n), dtype=np.int32)

    for row in rows:
        cells: dict[str, Any] = {}
        for kind in KINDS:
            cell: dict[str, Any] = {"n": int(sum(_mask(k, kind).sum() for k in kinds_per_world))}
            for K in KS:
                hits = [w["rows"][row.label][_mask(kk, kind)] < K for w, kk in zip(per_world, kinds_per_world,
                                                                                    strict=True)]
                mean = float(np.mean([h.mean() for h in hits])) if all(len(h) for h in hits) else math.nan
                samples = np.mean([h[boot(i, kind, len(h))].mean(axis=1) for i, h in enumerate(hits)], axis=0)
                lo, hi = np.percentile(samples, [2.5, 97.5])
                cell[f"R@{K}"] = {"mean": round(mean, 4), "ci": [round(float(lo), 4), round(float(hi), 4)],
                                  "per_world": [round(float(h.mean()), 4) for h in hits]}
                if K == 1 and row.label != BASELINE:
                    base = [w["rows"][BASELINE][_mask(kk, kind)] < 1
                            for w, kk in zip(per_world, kinds_per_world, strict=True)]
                    cell["R@1"]["delta"] = round(mean - float(np.mean([b.mean() for b in base])), 4)
                    cell["R@1"]["p_vs_original"] = mcnemar(np.concatenate(hits), np.concatenate(base))["p"]
            cells[kind] = cell
        table[row.label] = {"row": asdict(row), "by_kind": cells,
                            "alpha_mean": [w["alpha_mean"].get(row.label) for w in per_world]}
    return table


def paired(per_world: list[dict[str, Any]], a: str, b: str, kind: str = "all") -> dict[str, Any]:
    """McNemar test of R@1 between two rows on the same captions (e.g. PRO vs SFT)."""
    masks = [_mask(np.asarray(w["kinds"]), kind) for w in per_world]
    ha = np.concatenate([w["rows"][a][m] < 1 for w, m in zip(per_world, masks, strict=True)])
    hb = np.concatenate([w["rows"][b][m] < 1 for w, m in zip(per_world, masks, strict=True)])
    return {"a": a, "b": b, "kind": kind, "r1_a": round(float(ha.mean()), 4), "r1_b": round(float(hb.mean()), 4),
            **mcnemar(ha, hb)}


def run_quality(cfg: QualityConfig, comparisons: list[tuple[str, str]] = ()) -> dict[str, Any]:
    """Search every world, summarise, write quality.{md,json,png} into cfg.out; returns the report."""
    from evdsearch.atomic import write_json_atomic, write_text_atomic
    from evdsearch.benchmarks.quality_report import markdown, plot

    if not cfg.worlds:
        raise InvalidInput("give at least one world")
    rows = rows_for(cfg.worlds[0], cfg.alpha)
    labels = [r.label for r in rows]
    for world in cfg.worlds[1:]:
        if [r.label for r in rows_for(world, cfg.alpha)] != labels:
            raise InvalidInput("every world needs the same rewriter and KB labels")
    per_world = [search_world(world, rows, cfg) for world in cfg.worlds]
    report = {"benchmark": "quality", "split": cfg.split, "worlds": [asdict(w) for w in cfg.worlds],
              "alpha": cfg.alpha, "bootstrap": cfg.bootstrap, "machine": cfg.machine,
              "table": summarise(per_world, rows, cfg),
              "paired": [paired(per_world, a, b, kind) for a, b in comparisons if a in labels and b in labels
                         for kind in KINDS],
              "seconds": [w["seconds"] for w in per_world], **cfg.extra}
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "quality.json", report)
    write_text_atomic(out / "quality.md", markdown(report))
    plot(report, out / "quality.png")
    return report
