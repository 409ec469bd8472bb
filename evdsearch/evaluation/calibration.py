"""`kb calibrate`: a fusion weight per entity, from its captioned images or, without any, a zero-shot signal.

Entities named in captions of the chosen splits get the weight from a grid that maximises the mean
reciprocal rank of their captions' own images (text->image against the splits' images), with each
caption rewritten exactly as the engine rewrites it. Every entity also gets a zero-shot familiarity:
how highly CLIP's embedding of "a photo of a NAME" ranks the images that its descriptions alone
retrieve (1: those images are the name's best matches, 0.5: the name says nothing). A decreasing
isotonic fit from familiarity to weight, learnt on the calibrated entities plus stand-ins for
unknown names (the same captions with the name replaced by a made-up word), gives the weight of
entities without captions — so calibrating from training captions alone, where no unseen entity is
named, still gives unseen entities a high weight when CLIP does not know their names.

First, though, every entity's descriptions are ranked by measured evidence (description_evidence), so
the engine — and these captions' rewrites — hand on the descriptions CLIP ties to the entity.
"""

from __future__ import annotations

import logging
import random
from collections import defaultdict
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput
from evdsearch.evaluation.fusion_fit import (
    Familiarity,
    apply_fit,
    captions_or_prior,
    isotonic_decreasing,
    nonce_name,
    reciprocal_ranks,
)

log = logging.getLogger(__name__)
DEFAULT_GRID = tuple(round(i / 10, 1) for i in range(11))  # candidate weights of the rewritten query
FORBIDDEN_SPLITS = ("test",)  # never calibrate on the split results are reported on


@dataclass
class CalibrationConfig:
    """One `evdsearch kb calibrate` run."""

    kb: str  # knowledge base folder; the weights are written into it
    data: str  # shapes world folder or a Karpathy JSON
    model: str  # CLIP checkpoint folder or open_clip architecture name (the one the index is built with)
    pretrained: str | None = None  # hub tag or weights file for an architecture name
    images: str | None = None  # image root when it is not the JSON's folder
    splits: tuple[str, ...] = ("train", "val")  # captioned splits to calibrate on; test is refused
    rewriter: str = "template"  # rewriter the captions are rewritten with (none | template | folder)
    grid: tuple[float, ...] = DEFAULT_GRID  # candidate weights
    max_captions: int = 40  # captions per entity (random, seeded) scored for its weight
    top_k: int = 10  # images the descriptions retrieve, for the familiarity signal
    max_descriptions: int = 3  # descriptions per entity handed to the rewriter (as the engine's default)
    seed: int = 0  # caption sampling and made-up names
    rank_descriptions: bool = True  # measure each description's evidence first, so the engine hands on the best
    template_ensemble: bool = True  # a trained rewriter's q' averaged with the template's, as the engine serves it
    prefer_prior: bool = True  # captions override the familiarity fit's weight only when better by > 1 SE
    device: str = "auto"  # auto | cpu | cuda
    cache_dir: str | None = None  # image-embedding cache (default: the data folder's .cache)


@dataclass
class _Item:
    """One scored caption: which entity it calibrates and where its image is."""

    entity: str  # normalised entity the caption names (exactly one per caption)
    text: str  # caption as given (name replaced by a made-up word for stand-ins)
    evidence: dict[str, Any]  # entity key -> descriptions handed to the rewriter
    target: int  # row of its image in the calibration images
    origin: str = ""  # for a stand-in: the real entity whose name it replaced


def check_splits(splits: tuple[str, ...]) -> tuple[str, ...]:
    """The splits, with test (or an empty list) refused."""
    if not splits:
        raise InvalidInput("--splits is empty: give e.g. train,val")
    bad = [s for s in splits if s in FORBIDDEN_SPLITS]
    if bad:
        raise InvalidInput(f"refusing to calibrate on --splits {','.join(bad)}: results are reported on the test "
                           "split, so weights must come from train / val captions only")
    return splits


def calibrate(cfg: CalibrationConfig) -> dict[str, Any]:
    """Rank every entity's descriptions, then compute its weight with the ranked ones, and write both into a
    new KB version; returns a summary (also stored in the KB)."""
    from evdsearch.clip_models import load_clip
    from evdsearch.datasets import find_dataset_json, open_dataset
    from evdsearch.engine.rewriters import create_rewriter
    from evdsearch.engine.rewriting import QueryRewriter
    from evdsearch.evaluation.description_evidence import rank_descriptions
    from evdsearch.evaluation.retrieval import RetrievalConfig, cached_image_embeddings
    from evdsearch.indexer.kb_publish import update_new_version

    check_splits(cfg.splits)
    if not cfg.grid or any(not 0.0 <= a <= 1.0 for a in cfg.grid):
        raise InvalidInput("the weight grid must hold values in [0, 1]")
    dataset = open_dataset(cfg.data, cfg.images)
    clip = load_clip(cfg.model, cfg.pretrained, cfg.device)
    cache = find_dataset_json(cfg.data).parent / ".cache" if cfg.cache_dir is None else cfg.cache_dir
    images, embs = [], []
    for split in cfg.splits:
        split_images = dataset.split(split)
        if not split_images:
            raise InvalidInput(f"{cfg.data} has no {split!r} images")
        rcfg = RetrievalConfig(model=cfg.model, data=cfg.data, images=cfg.images, split=split, device=cfg.device)
        emb, _ = cached_image_embeddings(clip, dataset, split_images, rcfg, Path(cache))
        images += split_images
        embs.append(emb)
    image_emb = np.concatenate(embs).astype(np.float32)

    def write(kb: Any) -> dict[str, Any]:
        """Rank descriptions, then weigh entities with the ranked ones, in one new KB version."""
        rewriter = QueryRewriter(kb, create_rewriter(cfg.rewriter, cfg.device),
                                 max_descriptions=cfg.max_descriptions, cache_size=0,
                                 template_ensemble=cfg.template_ensemble)
        by_entity = _captions_by_entity(images, rewriter.matcher)
        ranked = None
        if cfg.rank_descriptions:
            ranked = rank_descriptions(clip, image_emb, kb, {e: sorted({row for row, _, _ in found})
                                                             for e, found in by_entity.items()}, cfg.top_k)
        info, weights = _weigh(kb, rewriter, by_entity, clip, image_emb, cfg)
        info["descriptions_ranked"] = ranked
        kb.set_weights(weights, info)
        return {**info, "weights": {e: asdict(w) for e, w in weights.items()}}

    # a new KB version, swapped in: a server reading the current one never sees its pages written
    return update_new_version(cfg.kb, write)


def _weigh(kb: Any, rewriter: Any, by_entity: dict[str, list[tuple[int, str, Any]]], clip: Any,
           image_emb: np.ndarray, cfg: CalibrationConfig) -> tuple[dict[str, Any], dict[str, Any]]:
    """(calibration info, entity -> EntityWeight): caption grid search where captions exist, else the fit."""
    from evdsearch.engine.encoding import encode_rewrites
    from evdsearch.engine.rewriters.base import description_text
    from evdsearch.indexer.kb import EntityWeight

    names = kb.display_names()
    descriptions = {e: [description_text(d) for d in rewriter.evidence(names[e]).descriptions.get(e, [])]
                    for e in names}
    real, stand_in = _select_items(by_entity, rewriter, cfg, set(names) | set(names.values()))
    items = real + stand_in
    log.info("calibrating on %d captions (%d stand-ins for unknown names)", len(real), len(stand_in))
    texts = [it.text for it in items]
    q = clip.encode_texts(texts) if items else np.zeros((0, image_emb.shape[1]), np.float32)
    q_rw = encode_rewrites(clip, rewriter.rewrite_items([(it.text, it.evidence) for it in items])) if items else q
    rr = reciprocal_ranks(q, q_rw, image_emb, np.array([it.target for it in items], dtype=np.int64), cfg.grid)

    familiarity = Familiarity(clip, image_emb, cfg.top_k)
    entity_keys = sorted(names)
    fam = dict(zip(entity_keys, familiarity([names[e] for e in entity_keys],
                                            [descriptions[e] for e in entity_keys]), strict=True))
    per_entity = _best_alphas(real, rr[: len(real)], cfg.grid)
    per_stand_in = _best_alphas(stand_in, rr[len(real) :], cfg.grid)
    stand_names = sorted(per_stand_in)
    stand_fam = dict(zip(stand_names, familiarity(stand_names, [descriptions[_origin(stand_in, n)]
                                                                  for n in stand_names]), strict=True))
    points_x = [fam[e] for e in per_entity] + [stand_fam[n] for n in stand_names]
    points_y = [per_entity[e][0] for e in per_entity] + [per_stand_in[n][0] for n in stand_names]
    if not points_x:
        raise InvalidInput(f"no caption of the {','.join(cfg.splits)} split(s) names an entity of the KB {cfg.kb}: "
                           "nothing to calibrate on")
    knots = isotonic_decreasing(np.array(points_x), np.array(points_y))

    weights: dict[str, EntityWeight] = {}
    rows = _rows_by_entity(real)
    kept_prior = 0
    for e in entity_keys:
        if e in per_entity:
            alpha = captions_or_prior(rr[rows[e]], cfg.grid, apply_fit(knots, fam[e])) if cfg.prefer_prior \
                else per_entity[e][0]
            kept_prior += alpha != per_entity[e][0]
            weights[e] = EntityWeight(alpha=float(alpha), method="captions", evidence=per_entity[e][1],
                                      familiarity=round(fam[e], 4))
        else:
            weights[e] = EntityWeight(alpha=round(apply_fit(knots, fam[e]), 4), method="zero-shot", evidence=0,
                                      familiarity=round(fam[e], 4))
    info = {"splits": list(cfg.splits), "data": str(cfg.data), "model": asdict(clip.identity),
            "rewriter": cfg.rewriter, "template_ensemble": rewriter.template_ensemble, "grid": list(cfg.grid),
            "captions": len(real), "stand_ins": len(stand_in), "calibrated_entities": len(per_entity),
            "captions_kept_the_fit": kept_prior, "zero_shot_entities": len(entity_keys) - len(per_entity),
            "fit": {"familiarity": [round(float(v), 4) for v in knots[0]],
                    "alpha": [round(float(v), 4) for v in knots[1]]}}
    return info, weights


def _origin(stand_in: list[_Item], nonce: str) -> str:
    """The real entity a stand-in name replaced."""
    return next(it.origin for it in stand_in if it.entity == nonce)


def _rows_by_entity(items: list[_Item]) -> dict[str, list[int]]:
    rows: dict[str, list[int]] = defaultdict(list)
    for i, it in enumerate(items):
        rows[it.entity].append(i)
    return rows


def _best_alphas(items: list[_Item], rr: np.ndarray, grid: tuple[float, ...]) -> dict[str, tuple[float, int]]:
    """Entity -> (grid weight with the best mean reciprocal rank, captions); ties go to the smaller weight."""
    return {e: (grid[int(np.argmax(rr[idx].mean(axis=0)))], len(idx)) for e, idx in _rows_by_entity(items).items()}


def _captions_by_entity(images: list[Any], matcher: Any) -> dict[str, list[tuple[int, str, Any]]]:
    """Entity -> (image row, caption, mentions) of every caption naming exactly that one KB entity."""
    by_entity: dict[str, list[tuple[int, str, Any]]] = defaultdict(list)
    for row, image in enumerate(images):
        for sentence in image.sentences:
            mentions = matcher.find(sentence.raw)
            if mentions and len({m.entity for m in mentions}) == 1:
                by_entity[mentions[0].entity].append((row, sentence.raw, mentions))
    return by_entity


def _select_items(by_entity: dict[str, list[tuple[int, str, Any]]], rewriter: Any, cfg: CalibrationConfig,
                  taken: set[str]) -> tuple[list[_Item], list[_Item]]:
    """At most max_captions captions per entity (seeded), and their stand-ins."""
    rng = random.Random(cfg.seed)
    taken = {t.lower() for t in taken}
    real, stand_in = [], []
    for entity in sorted(by_entity):
        found = by_entity[entity]
        picked = rng.sample(found, min(cfg.max_captions, len(found)))
        evidence = rewriter.evidence(picked[0][1]).descriptions
        if not evidence:
            continue
        nonce = nonce_name(rng, taken)
        for row, caption, mentions in picked:
            real.append(_Item(entity, caption, evidence, row))
            text = caption
            for m in sorted(mentions, key=lambda m: m.start, reverse=True):
                text = text[: m.start] + nonce + text[m.end :]
            stand_in.append(_Item(nonce, text, {nonce: evidence[entity]}, row, origin=entity))
    return real, stand_in
