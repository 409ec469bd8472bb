"""Retrieval benchmark: Recall@K on a Karpathy split, overall and per caption kind, per query mode.

Images are embedded once per (model weights, split) and cached on disk; captions are embedded per
query mode. Modes are a registry (`QUERY_MODES`): `original` encodes captions as written;
`rewritten` and `fused` rewrite them with entity visual descriptions through the same
`engine.rewriting.QueryRewriter` / `engine.fusion.fuse_queries` the server uses, so benchmark
numbers and server rankings agree.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.clip_models import LoadedClip, load_clip
from evdsearch.errors import InvalidInput, ModelUnavailable, NotFound
from evdsearch.evaluation.recall import DEFAULT_KS, recall_at_k, recall_from_ranks, text_to_image_ranks
from evdsearch.karpathy import KarpathyDataset, KarpathyImage
from evdsearch.search_api import DEFAULT_ALPHA

log = logging.getLogger(__name__)
CAPTION_KINDS = ("attribute", "seen_entity", "unseen_entity")  # shapes world; other kinds are listed after


@dataclass
class RetrievalConfig:
    """One benchmark run; the CLI fills it, the JSON report records it."""

    model: str  # open_clip architecture name or checkpoint folder
    data: str  # folder with dataset_*.json, or the Karpathy JSON itself
    images: str | None = None  # image root when it is not the JSON's folder (Flickr30K / COCO images)
    dataset: str = ""  # label: flickr30k | mscoco | karpathy-json | "" (taken from the JSON)
    pretrained: str | None = None  # hub tag or local weights file for an architecture name
    split: str = "test"  # Karpathy split to evaluate
    modes: tuple[str, ...] = ("original",)  # query modes, keys of QUERY_MODES
    alpha: float = DEFAULT_ALPHA  # weight of the rewritten query in `fused` mode (entities without a calibrated weight)
    adaptive_alpha: bool = True  # fused mode uses the KB's calibrated per-entity weights when it has them
    kb: str | None = None  # knowledge base folder for the rewriting modes
    rewriter: str = "template"  # none | template | rewriter folder, for the rewriting modes
    template_ensemble: bool = True  # a trained rewriter's q' averaged with the template's, as `serve` does
    ks: tuple[int, ...] = DEFAULT_KS  # the K of Recall@K
    batch_size: int = 256  # images / captions per encoder batch
    device: str = "auto"  # auto | cpu | cuda
    workers: int = 2  # threads decoding images
    cache_dir: str | None = None  # image-embedding cache (default: the data folder's .cache)
    extra: dict[str, Any] = field(default_factory=dict)  # free-form notes copied into the report


def load_split(cfg: RetrievalConfig) -> tuple[KarpathyDataset, list[KarpathyImage]]:
    """The data set and the images of the chosen split."""
    from evdsearch.datasets import open_dataset

    dataset = open_dataset(cfg.data, cfg.images)
    return dataset, dataset.split(cfg.split)


def _image_key(clip: LoadedClip, dataset: KarpathyDataset, images: list[KarpathyImage], split: str) -> str:
    from evdsearch.datasets import PilTransform

    digest = hashlib.sha1(json.dumps(asdict(clip.identity), sort_keys=True).encode())
    digest.update(f"{split}|{dataset.images_root.resolve()}|{PilTransform.from_preprocess(clip.preprocess).describe()}".encode())
    for image in images:
        try:
            stat = dataset.image_path(image).stat()
        except FileNotFoundError as err:
            raise NotFound(f"image file missing: {dataset.image_path(image)} (wrong --images?)") from err
        digest.update(f"{image.relpath}:{stat.st_size}:{stat.st_mtime_ns};".encode())
    return digest.hexdigest()[:20]


def embed_images(clip: LoadedClip, dataset: KarpathyDataset, images: list[KarpathyImage],
                 batch_size: int = 256, workers: int = 2) -> np.ndarray:
    """L2-normalised image embeddings, decoded and encoded batch by batch (memory stays flat)."""
    import torch

    from evdsearch.datasets import PilTransform, decode_images

    transform = PilTransform.from_preprocess(clip.preprocess)
    mean = torch.tensor(transform.mean).view(1, 3, 1, 1)
    std = torch.tensor(transform.std).view(1, 3, 1, 1)
    out = []
    with torch.inference_mode():
        for start in range(0, len(images), batch_size):
            paths = [dataset.image_path(im) for im in images[start : start + batch_size]]
            pixels = torch.from_numpy(decode_images(paths, transform, workers)).float().div_(255)
            feats = clip.model.encode_image(((pixels - mean) / std).to(clip.device), normalize=True)
            out.append(feats.float().cpu().numpy())
    return np.concatenate(out).astype(np.float32)


def cached_image_embeddings(clip: LoadedClip, dataset: KarpathyDataset, images: list[KarpathyImage],
                            cfg: RetrievalConfig, cache_dir: Path) -> tuple[np.ndarray, str]:
    """Image embeddings from `cache_dir` when this model + split were embedded before; (emb, status)."""
    if clip.identity.fingerprint.endswith(":random"):  # random weights have no identity to key on
        return embed_images(clip, dataset, images, cfg.batch_size, cfg.workers), "off"
    path = cache_dir / f"image-emb-{_image_key(clip, dataset, images, cfg.split)}.npy"
    if path.is_file():
        emb = np.load(path)
        if emb.shape == (len(images), clip.embed_dim):
            return emb, "hit"
    emb = embed_images(clip, dataset, images, cfg.batch_size, cfg.workers)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".{os.getpid()}.tmp.npy")
        np.save(tmp, emb)
        tmp.replace(path)
    except OSError as err:  # read-only data folder: the next run re-embeds
        log.warning("embedding cache not written (%s)", err)
    return emb, "miss"


# ---- query modes: name -> fn(captions, context) -> query embeddings (one row per caption) ----

QueryFn = Callable[[list[str], "QueryContext"], np.ndarray]


@dataclass
class QueryContext:
    """What query modes share: the model, the config, and a lazily built rewriter."""

    clip: LoadedClip
    cfg: RetrievalConfig
    _rewriter: Any = None
    _cache: dict[str, np.ndarray] = field(default_factory=dict)
    _texts: dict[str, list[str]] = field(default_factory=dict)
    _variants: list[list[str]] = field(default_factory=list)  # per caption: rewrites averaged into q'
    stats: dict[str, Any] = field(default_factory=dict)  # reported beside the recalls

    def rewriter(self) -> Any:
        """evdsearch.engine.rewriting.QueryRewriter over the KB, built on first use."""
        if self._rewriter is None:
            try:
                from evdsearch.engine.rewriters import create_rewriter
                from evdsearch.engine.rewriting import QueryRewriter
                from evdsearch.indexer.kb import KnowledgeBase
            except ModuleNotFoundError as err:
                raise ModelUnavailable(f"query rewriting modes need the engine and KB modules ({err})") from err
            kb = KnowledgeBase.open(self.cfg.kb, readonly=True) if self.cfg.kb else None
            self._rewriter = QueryRewriter(kb, create_rewriter(self.cfg.rewriter, self.cfg.device),
                                           cache_size=0,  # every caption is rewritten once here
                                           template_ensemble=self.cfg.template_ensemble)
        return self._rewriter

    def rewritten(self, captions: list[str]) -> list[str]:
        """Captions rewritten with KB descriptions (unchanged when no entity is found); computed once."""
        if "rewritten" not in self._texts:
            results = self.rewriter().rewrite_many(captions)
            self._texts["rewritten"] = [r.rewritten for r in results]
            self._variants = [r.variants for r in results]
            self._texts["entities"] = [list(r.descriptions) for r in results]
            self.stats["rewritten_fraction"] = round(sum(r.rewritten != r.query for r in results) / max(1, len(results)), 4)
        return self._texts["rewritten"]

    def encode(self, name: str, texts: list[str]) -> np.ndarray:
        """Encode once per mode input (fused reuses original and rewritten)."""
        if name not in self._cache:
            self._cache[name] = self.clip.encode_texts(texts, batch_size=self.cfg.batch_size)
        return self._cache[name]


def _original(captions: list[str], ctx: QueryContext) -> np.ndarray:
    return ctx.encode("original", captions)


def _rewritten(captions: list[str], ctx: QueryContext) -> np.ndarray:
    """q' as the engine computes it: each rewrite's embedding, averaged with its variants' (the template ensemble)."""
    rewritten = ctx.rewritten(captions)
    if "rewritten" not in ctx._cache:
        from evdsearch.engine.encoding import encode_rewrites

        ctx._cache["rewritten"] = encode_rewrites(ctx.clip, list(zip(rewritten, ctx._variants, strict=True)),
                                                  batch_size=ctx.cfg.batch_size)
    return ctx._cache["rewritten"]


def _fused(captions: list[str], ctx: QueryContext) -> np.ndarray:
    from evdsearch.engine.alpha import AlphaPolicy
    from evdsearch.engine.fusion import fuse_queries

    rewritten = _rewritten(captions, ctx)
    policy = AlphaPolicy.from_kb(ctx.rewriter().kb, ctx.cfg.alpha, ctx.cfg.adaptive_alpha)
    alphas = np.array([policy.resolve(None, e) for e in ctx._texts["entities"]], dtype=np.float32)
    ctx.stats["alpha"] = "adaptive (KB calibration)" if policy.adaptive else f"fixed {ctx.cfg.alpha:g}"
    return np.asarray(fuse_queries(_original(captions, ctx), rewritten, alphas), dtype=np.float32)


QUERY_MODES: dict[str, QueryFn] = {"original": _original, "rewritten": _rewritten, "fused": _fused}


def _recall_keys(recall: dict[int, float]) -> dict[str, float]:
    return {f"R@{k}": round(v, 4) for k, v in recall.items()}


def score_mode(queries: np.ndarray, image_emb: np.ndarray, owners: np.ndarray, kinds: list[str],
               ks: tuple[int, ...]) -> dict[str, Any]:
    """Overall recall both ways, and text->image recall per caption kind (against all split images)."""
    both = recall_at_k(queries, image_emb, owners, ks)
    result: dict[str, Any] = {"t2i": _recall_keys(both["t2i"]), "i2t": _recall_keys(both["i2t"]), "by_kind": {}}
    ranks = text_to_image_ranks(queries, image_emb, owners)
    kind_arr = np.asarray(kinds)
    present = sorted(set(kinds), key=lambda k: (CAPTION_KINDS.index(k) if k in CAPTION_KINDS else 99, k))
    if present != ["caption"]:  # real data sets carry no kinds
        for kind in present:
            mask = kind_arr == kind
            result["by_kind"][kind] = {"n": int(mask.sum()), "t2i": _recall_keys(recall_from_ranks(ranks[mask], ks))}
    return result


def run_retrieval(cfg: RetrievalConfig) -> dict[str, Any]:
    """Embed, score every mode, and return the report dict (what the JSON file holds)."""
    unknown = [m for m in cfg.modes if m not in QUERY_MODES]
    if unknown:
        raise InvalidInput(f"unknown mode(s) {', '.join(unknown)}; choose from {', '.join(QUERY_MODES)}")
    if set(cfg.modes) - {"original"} and not cfg.kb:
        raise InvalidInput("--modes rewritten / fused need a knowledge base: pass --kb KB_DIR")
    dataset, images = load_split(cfg)
    clip = load_clip(cfg.model, cfg.pretrained, cfg.device)
    from evdsearch.datasets import find_dataset_json

    cache_dir = Path(cfg.cache_dir) if cfg.cache_dir else find_dataset_json(cfg.data).parent / ".cache"
    started = time.perf_counter()
    image_emb, cache_status = cached_image_embeddings(clip, dataset, images, cfg, cache_dir)
    timings = {"images_s": round(time.perf_counter() - started, 2)}
    captions = [s.raw for im in images for s in im.sentences]
    owners = np.array([row for row, im in enumerate(images) for _ in im.sentences], dtype=np.int64)
    kinds = [s.kind for im in images for s in im.sentences]
    ctx = QueryContext(clip, cfg)
    modes = {}
    for mode in cfg.modes:
        started = time.perf_counter()
        modes[mode] = score_mode(QUERY_MODES[mode](captions, ctx), image_emb, owners, kinds, cfg.ks)
        timings[f"{mode}_s"] = round(time.perf_counter() - started, 2)
    return {"benchmark": "retrieval", "model": asdict(clip.identity), "dataset": cfg.dataset or dataset.name,
            "split": cfg.split, "n_images": len(images), "n_captions": len(captions), "ks": list(cfg.ks),
            "modes": modes, "rewriting": ctx.stats, "image_cache": cache_status, "timings": timings,
            "config": {k: v for k, v in asdict(cfg).items() if k != "extra"}, **cfg.extra}
