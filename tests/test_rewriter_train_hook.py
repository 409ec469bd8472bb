"""The caption_transform for CLIP fine-tuning with a frozen rewriter: probability, evidence, caching."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from evdsearch.training.rewriter.caption_hook import make_rewrite_transform


@pytest.fixture()
def kb_dir(tmp_path: Path) -> Path:
    from evdsearch.indexer.kb import KnowledgeBase

    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records([{"entity": "tomato", "description": "a red round fruit", "source": "enc", "score": 1.0}])
    return tmp_path / "kb"


def test_rewrites_entity_captions_with_probability_p(kb_dir: Path) -> None:
    transform = make_rewrite_transform("template", kb_dir, p=0.6, device="cpu")
    assert transform.prepare(["a tomato on a table", "a blue square"], progress=False) == 1
    rng = random.Random(0)
    outs = [transform("a tomato on a table", rng) for _ in range(2000)]
    rewritten = [o for o in outs if o is not None]
    assert set(rewritten) == {"a tomato on a table, tomato which is a red round fruit"}
    assert 0.55 < len(rewritten) / len(outs) < 0.65
    assert all(transform("a blue square", rng) is None for _ in range(50))  # no entity: kept as written
    assert transform.rewriter.cache.hits > 1000  # rewritten once, then served from the cache


def test_probability_bounds(kb_dir: Path) -> None:
    from evdsearch.training.rewriter.caption_hook import RewriteTransform

    always = make_rewrite_transform("template", kb_dir, p=1.0)
    never = RewriteTransform(always.rewriter, p=0.0)
    rng = random.Random(1)
    assert never("a tomato", rng) is None and always("a tomato", rng) is not None
    assert "rewrite(p=1.0, rewriter=template)" == always.__name__
    with pytest.raises(Exception, match="between 0 and 1"):
        RewriteTransform(always.rewriter, p=1.5)
