"""`build_deqr`: candidates for every training caption with entities, scored by CLIP, best first.

Entity names are found and descriptions chosen exactly as the engine does (engine.rewriting with
the KB), and the rewriter input is engine.rewriters.prompt.format_rewriter_input, so training and
serving see the same text. With `mask_entities`, candidates are scored with every entity name
replaced by "object": training captions only name entities the retriever has seen, and without the
mask it would judge descriptions useless because the name alone already finds the image. Masked
scoring measures what the descriptions themselves convey, which is what unseen entities need.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.atomic import atomic_directory, write_json_atomic
from evdsearch.engine.rewriters.base import description_text
from evdsearch.engine.rewriters.none import NoRewriter
from evdsearch.engine.rewriters.prompt import format_rewriter_input
from evdsearch.errors import InvalidInput
from evdsearch.training.deqr.candidates import EMPTY, build_candidates
from evdsearch.training.deqr.config import FORMAT, FORMAT_VERSION, RECORDS_FILE, STATS_FILE, DeqrConfig
from evdsearch.training.deqr.regimes import MASKED, REGIMES, assign
from evdsearch.training.deqr.scoring import ranking, score_candidates

log = logging.getLogger(__name__)
MASK_WORD = "object"  # what entity names become when candidates are scored with mask_entities


def mask_entities(text: str, matcher: Any) -> str:
    """`text` with every KB entity mention replaced by MASK_WORD."""
    for m in sorted(matcher.find(text), key=lambda m: m.start, reverse=True):
        text = text[: m.start] + MASK_WORD + text[m.end :]
    return text


def select_captions(images: list[Any], rewriter: Any, cfg: DeqrConfig) -> list[tuple[int, int, Any]]:
    """(image row, sentence index, RewriteResult) for captions with KB evidence, from up to max_images images."""
    order = list(range(len(images)))
    random.Random(cfg.seed).shuffle(order)
    chosen, n_images = [], 0
    for row in order:
        found = [(row, j, r) for j, s in enumerate(images[row].sentences)
                 if (r := rewriter.rewrite(s.raw)).descriptions]
        if found:
            chosen += found
            n_images += 1
            if n_images >= cfg.max_images:
                break
    return chosen


def _batches(rows: list[int], size: int, seed: int) -> dict[int, list[int]]:
    """In-batch images: the used images shuffled into batches; image row -> its batch (rows)."""
    rows = sorted(set(rows))
    random.Random(seed + 1).shuffle(rows)
    out: dict[int, list[int]] = {}
    for start in range(0, len(rows), size):
        batch = rows[start : start + size]
        out.update({row: batch for row in batch})
    return out


def _record(image: Any, j: int, result: Any, cands: list[Any], scores: Any, order: list[int],
            regime: str = MASKED) -> dict[str, Any]:
    evidence = {e: [description_text(d) for d in ds] for e, ds in result.descriptions.items()}
    kinds = {e: [getattr(d, "kind", "") for d in ds] for e, ds in result.descriptions.items()}
    return {
        "id": f"{image.imgid}:{j}", "image": image.relpath, "kind": image.sentences[j].kind, "regime": regime,
        "caption": result.query, "entities": result.entities, "evidence": evidence, "evidence_kinds": kinds,
        "input": format_rewriter_input(result.query, result.descriptions),
        "candidates": [{"text": cands[i].text, "phrasing": cands[i].phrasing, "used": cands[i].used,
                        "cosine": round(float(scores.cosine[i]), 5), "rank": int(scores.rank[i]),
                        "margin": round(float(scores.margin[i]), 5)} for i in order],
    }


def build_deqr(cfg: DeqrConfig) -> Path:
    """Write OUT/deqr.jsonl and OUT/stats.json; returns OUT."""
    from evdsearch.clip_models import load_clip
    from evdsearch.datasets import find_dataset_json, open_dataset
    from evdsearch.engine.rewriting import QueryRewriter
    from evdsearch.evaluation.retrieval import RetrievalConfig, cached_image_embeddings
    from evdsearch.indexer.kb import KnowledgeBase

    if cfg.max_candidates < 2 or cfg.batch_images < 2:
        raise InvalidInput("--max-candidates and --batch-images must be at least 2")
    regime = "unmasked" if (cfg.regime == "masked" and not cfg.mask_entities) else cfg.regime
    if regime not in REGIMES:
        raise InvalidInput(f"unknown --regime {cfg.regime!r}; use one of {', '.join(REGIMES)}")
    if not 0.0 <= cfg.stand_in_share <= 1.0:
        raise InvalidInput("--stand-in-share must be between 0 and 1")
    started = time.perf_counter()
    out = Path(cfg.out)
    with atomic_directory(out, force=cfg.force) as tmp:
        dataset = open_dataset(cfg.data, cfg.images)
        images = dataset.split(cfg.split)
        kb = KnowledgeBase.open(cfg.kb, readonly=True)
        rewriter = QueryRewriter(kb, NoRewriter(), max_descriptions=cfg.max_descriptions, cache_size=0)
        chosen = select_captions(images, rewriter, cfg)
        if not chosen:
            raise InvalidInput(f"no {cfg.split} caption of {cfg.data} names an entity of the KB {cfg.kb}")
        weights = {e: w.alpha for e, w in kb.weights().items()}
        taken = set(kb.entities()) | set(kb.display_names().values())
        assigned = assign(chosen, regime, cfg.stand_in_share, weights, cfg.seed, taken)
        used_rows = sorted({row for row, _, _ in chosen})
        clip = load_clip(cfg.clip, device=cfg.device)
        rcfg = RetrievalConfig(model=cfg.clip, data=cfg.data, images=cfg.images, split=cfg.split, device=cfg.device)
        cache = find_dataset_json(cfg.data).parent / ".cache"
        emb, _ = cached_image_embeddings(clip, dataset, [images[r] for r in used_rows], rcfg, cache)
        emb_row = {row: i for i, row in enumerate(used_rows)}
        batches = _batches(used_rows, cfg.batch_images, cfg.seed)

        rng = random.Random(cfg.seed)
        cands = [build_candidates(r.query, r.descriptions, r.mentions, rng, cfg.max_candidates, cfg.max_subset)
                 for _, _, r, _ in assigned]
        # Names are masked only in the masked regime; stand-ins already carry made-up names CLIP never saw.
        flat = [mask_entities(c.text, rewriter.matcher) if label == MASKED else c.text
                for (_, _, _, label), cs in zip(assigned, cands, strict=True) for c in cs]
        log.info("encoding %d candidate rewrites of %d captions", len(flat), len(chosen))
        text_emb = clip.encode_texts(flat)
        stats = _Stats()
        with open(tmp / RECORDS_FILE, "w", encoding="utf-8") as handle:
            offset = 0
            for (row, j, result, label), cs in zip(assigned, cands, strict=True):
                c_emb = text_emb[offset : offset + len(cs)]
                offset += len(cs)
                batch = batches[row]
                scores = score_candidates(c_emb[0], c_emb, emb[[emb_row[r] for r in batch]], batch.index(row),
                                          cfg.alpha)
                order = ranking(scores)
                record = _record(images[row], j, result, cs, scores, order, label)
                stats.add(record)
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        summary = {"format": FORMAT, "format_version": FORMAT_VERSION, "config": cfg.to_json(),
                   "clip": asdict(clip.identity), "n_images": len(used_rows), **stats.summary(),
                   "elapsed_s": round(time.perf_counter() - started, 1)}
        write_json_atomic(tmp / STATS_FILE, summary)
    return out


class _Stats:
    """Running counts for stats.json."""

    def __init__(self) -> None:
        self.n = 0
        self.n_candidates = 0
        self.best_phrasing: Counter[str] = Counter()
        self.best_kinds: Counter[str] = Counter()
        self.rank_empty: list[int] = []
        self.rank_best: list[int] = []
        self.cos_gain: list[float] = []
        self.keep: Counter[str] = Counter()  # regime -> captions whose best candidate is the caption itself
        self.regimes: Counter[str] = Counter()  # regime -> captions

    def add(self, record: dict[str, Any]) -> None:
        cands = record["candidates"]
        best, empty = cands[0], next(c for c in cands if c["phrasing"] == EMPTY)
        self.n += 1
        self.n_candidates += len(cands)
        self.best_phrasing[best["phrasing"]] += 1
        self.regimes[record.get("regime", MASKED)] += 1
        self.keep[record.get("regime", MASKED)] += best["phrasing"] == EMPTY
        for entity, idx in best["used"].items():
            self.best_kinds.update(record["evidence_kinds"][entity][i] or "-" for i in idx)
        self.rank_empty.append(empty["rank"])
        self.rank_best.append(best["rank"])
        self.cos_gain.append(best["cosine"] - empty["cosine"])

    def summary(self) -> dict[str, Any]:
        def r1(ranks: list[int]) -> float:
            return round(float(np.mean(np.asarray(ranks) == 0)), 4) if ranks else 0.0

        return {"n_captions": self.n, "mean_candidates": round(self.n_candidates / max(1, self.n), 2),
                "best_phrasing": dict(self.best_phrasing.most_common()),
                "regimes": {r: {"captions": n, "keep_best": self.keep[r]} for r, n in sorted(self.regimes.items())},
                "best_description_kinds": dict(self.best_kinds.most_common()),
                "in_batch_r1_empty": r1(self.rank_empty), "in_batch_r1_best": r1(self.rank_best),
                "mean_rank_empty": round(float(np.mean(self.rank_empty)), 3) if self.rank_empty else 0.0,
                "mean_rank_best": round(float(np.mean(self.rank_best)), 3) if self.rank_best else 0.0,
                "mean_cosine_gain": round(float(np.mean(self.cos_gain)), 5) if self.cos_gain else 0.0}
