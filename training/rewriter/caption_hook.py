"""CLIP fine-tuning with the frozen rewriter: a `caption_transform` for training.clip.train.train_clip.

With probability p a training caption is replaced by its rewrite (frozen rewriter + KB evidence,
through engine.rewriting exactly as at query time); captions naming no KB entity stay as written.
Rewrites are cached per caption, and `prepare` fills the cache in batches before training so the
training loop never waits on one-at-a-time generation.
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from pathlib import Path
from typing import Any

CACHE_SIZE = 500_000  # distinct captions kept rewritten (a caption is rewritten once per run)


class RewriteTransform:
    """`transform(caption, rng) -> rewritten caption | None` (None keeps the caption)."""

    def __init__(self, query_rewriter: Any, p: float) -> None:
        if not 0.0 <= p <= 1.0:
            from evdsearch.errors import InvalidInput

            raise InvalidInput(f"--rewrite-prob must be between 0 and 1, not {p}")
        self.rewriter = query_rewriter
        self.p = p
        self.__name__ = f"rewrite(p={p}, rewriter={getattr(query_rewriter.rewriter, 'name', '?')})"

    def prepare(self, captions: Iterable[str], batch_size: int = 64, progress: bool = True) -> int:
        """Rewrite every distinct caption now, in batches; returns how many had KB evidence."""
        from tqdm.auto import tqdm

        unique = list(dict.fromkeys(c.strip() for c in captions))
        with_evidence = 0
        for start in tqdm(range(0, len(unique), batch_size), desc="rewrite captions", unit="batch",
                          disable=not progress):
            results = self.rewriter.rewrite_many(unique[start : start + batch_size])
            with_evidence += sum(bool(r.descriptions) for r in results)
        return with_evidence

    def __call__(self, caption: str, rng: random.Random) -> str | None:
        if rng.random() >= self.p:  # always one draw per caption, so runs replay exactly
            return None
        result = self.rewriter.rewrite(caption)
        return result.rewritten if result.descriptions else None


def make_rewrite_transform(rewriter_dir: str | Path, kb_dir: str | Path, p: float = 0.6, device: str = "auto",
                           max_descriptions: int = 3) -> RewriteTransform:
    """The frozen rewriter (any `create_rewriter` spec: folder, template, none) over the KB, as a transform."""
    from evdsearch.engine.rewriters import create_rewriter
    from evdsearch.engine.rewriting import QueryRewriter
    from evdsearch.indexer.kb import KnowledgeBase

    kb = KnowledgeBase.open(kb_dir, readonly=True)
    rewriter = create_rewriter(str(rewriter_dir), device=device)
    return RewriteTransform(QueryRewriter(kb, rewriter, max_descriptions, cache_size=CACHE_SIZE), p)


def finetune_clip_with_rewriter(cfg: Any, rewriter_dir: str | Path, kb_dir: str | Path, p: float = 0.6) -> Path:
    """train_clip(cfg) with the rewrite transform, its cache filled from the training split first."""
    from evdsearch.datasets import open_dataset
    from evdsearch.training.clip.train import train_clip

    transform = make_rewrite_transform(rewriter_dir, kb_dir, p, device=cfg.device)
    if p > 0:
        images = open_dataset(cfg.data, cfg.images).split(cfg.split)
        transform.prepare(s.raw for im in images for s in im.sentences)
    cfg.extra = {**cfg.extra, "rewriter": str(rewriter_dir), "kb": str(kb_dir), "rewrite_prob": p}
    return train_clip(cfg, caption_transform=transform)
