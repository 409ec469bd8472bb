"""DEQR: candidate rewrites, their ranking by retriever feedback, and a whole build on a tiny world."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest

from evdsearch.training.deqr.candidates import EMPTY, Mention, build_candidates, description_subsets
from evdsearch.training.deqr.scoring import ranking, score_candidates

EVIDENCE = {"tomato": ["a red round fruit", "has a green stem"]}


def test_candidates_start_with_the_empty_rewrite_and_are_distinct() -> None:
    caption = "A tomato on a table."
    cands = build_candidates(caption, EVIDENCE, [Mention("tomato", 2, 8)], random.Random(0), max_candidates=50)
    assert cands[0].phrasing == EMPTY and cands[0].text == "A tomato on a table"
    texts = [c.text for c in cands]
    assert len(texts) == len(set(texts))
    assert "a red round fruit on a table" in texts  # replace: the article before the name is dropped
    assert "A tomato on a table, tomato which is a red round fruit and has a green stem" in texts
    assert len(build_candidates(caption, EVIDENCE, [], random.Random(0), max_candidates=3)) == 3
    assert len(description_subsets({"a": [1, 2, 3], "b": [1]}, max_size=2)) == 4 + 6


def _unit(v: list[float]) -> np.ndarray:
    v = np.asarray(v, dtype=np.float32)
    return v / np.linalg.norm(v)


def test_ranking_orders_by_in_batch_rank_then_cosine() -> None:
    images = np.stack([_unit([1, 0, 0]), _unit([0, 1, 0]), _unit([0, 0, 1])])  # own image is row 0
    original = _unit([0.5, 1, 0])  # the caption alone prefers image 1
    candidates = np.stack([original,                 # empty rewrite: rank 1
                           _unit([1, 0.2, 0]),       # strongly towards the own image: rank 0, high cosine
                           _unit([0, 0, 1]),         # towards another image: rank 2
                           _unit([1, 0.3, 0])])      # rank 0 with fusion, lower cosine than candidate 1
    scores = score_candidates(original, candidates, images, own=0, alpha=0.5)
    assert scores.rank.tolist() == [1, 0, 2, 0]
    assert ranking(scores) == [1, 3, 0, 2]
    alone = score_candidates(original, candidates, images, own=0, alpha=1.0)
    assert alone.rank.tolist() == [1, 0, 2, 0] and alone.cosine[2] == pytest.approx(0.0, abs=1e-6)
    assert np.all(scores.margin[[1, 3]] > 0) and np.all(scores.margin[[0]] < 0)


@pytest.fixture()
def tiny_world(tmp_path: Path) -> tuple[Path, Path]:
    """Four coloured images with entity captions, and a KB describing the entities."""
    from PIL import Image

    from evdsearch.indexer.kb import KnowledgeBase
    from evdsearch.karpathy import KarpathyDataset, KarpathyImage, Sentence, write_karpathy

    colours = {"zorblax": (220, 30, 30), "quibble": (30, 30, 220), "flarn": (30, 200, 30), "mip": (240, 240, 0)}
    (tmp_path / "images").mkdir()
    images = []
    for i, (name, rgb) in enumerate(colours.items()):
        Image.new("RGB", (64, 64), rgb).save(tmp_path / "images" / f"{i}.png")
        sentences = [Sentence(f"a {name} on the ground", extra={"kind": "seen_entity", "entities": [name]}),
                     Sentence("a coloured square", extra={"kind": "attribute", "entities": []})]
        images.append(KarpathyImage(f"{i}.png", "train", sentences, filepath="images"))
    write_karpathy(KarpathyDataset("shapes", images, tmp_path), tmp_path / "dataset_shapes.json")
    records = [{"entity": n, "description": d, "source": "encyclopedia", "score": s, "kind": k}
               for n in colours for d, s, k in ((f"a {n[:3]} coloured square", 1.0, "visual"),
                                                 ("found in old books", 0.5, "non_visual"))]
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records(records)
    return tmp_path, tmp_path / "kb"


def test_build_deqr_ranks_every_caption(tiny_world: tuple[Path, Path], tiny_clip_dir: Path, tmp_path: Path) -> None:
    from evdsearch.training.deqr.build import build_deqr
    from evdsearch.training.deqr.config import DeqrConfig
    from evdsearch.training.deqr.io import read_records, read_stats

    world, kb = tiny_world
    out = build_deqr(DeqrConfig(data=str(world), kb=str(kb), clip=str(tiny_clip_dir), out=str(tmp_path / "deqr"),
                                batch_images=3, max_candidates=6, device="cpu"))
    stats = read_stats(out)
    records = list(read_records(out))
    assert stats["n_captions"] == len(records) == 4  # attribute captions name no entity: left out
    for record in records:
        assert record["input"].startswith("rewrite: a ") and record["entities"]
        cands = record["candidates"]
        assert len(cands) == 6 and sum(c["phrasing"] == EMPTY for c in cands) == 1
        keys = [(c["rank"], -c["cosine"]) for c in cands]
        assert keys == sorted(keys)  # best first
        assert all(0 <= c["rank"] <= 2 for c in cands)  # batches of 3 images: at most 2 above
    assert json.loads((out / "stats.json").read_text())["format_version"] == 1
    with pytest.raises(Exception, match="already exists"):
        build_deqr(DeqrConfig(data=str(world), kb=str(kb), clip=str(tiny_clip_dir), out=str(out), device="cpu"))
