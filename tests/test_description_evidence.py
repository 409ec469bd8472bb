"""Description ranking: evidence from captioned images or, without any, agreement between descriptions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evdsearch.errors import UserError
from evdsearch.evaluation.description_evidence import description_evidence, percentiles
from evdsearch.indexer.kb import Description, KnowledgeBase

DIM = 16


def record(entity: str, text: str, source: str, score: float) -> dict[str, object]:
    return {"entity": entity, "description": text, "source": source, "score": score}


def unit(v: np.ndarray) -> np.ndarray:
    return v / np.linalg.norm(v, axis=-1, keepdims=True)


def clustered_images(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """200 images in 4 clusters around 4 orthogonal directions; returns (images, cluster of each)."""
    cluster = np.repeat(np.arange(4), 50)
    centres = np.eye(DIM)[:4]
    return unit(centres[cluster] + 0.3 * rng.standard_normal((200, DIM))), cluster


def test_percentiles_rank_each_row() -> None:
    p = percentiles(np.array([[0.1, 0.9, 0.5], [3.0, 1.0, 2.0]]))
    assert p.tolist() == [[0.0, 1.0, 0.5], [1.0, 0.0, 0.5]]


def test_captioned_images_pick_the_description_that_finds_them() -> None:
    rng = np.random.default_rng(0)
    images, cluster = clustered_images(rng)
    own = np.flatnonzero(cluster == 2)[:5].tolist()  # the entity's captioned images sit in cluster 2
    texts = unit(np.stack([np.eye(DIM)[1], np.eye(DIM)[2], rng.standard_normal(DIM)]))
    evidence, method = description_evidence(texts, images, own, top_k=10)
    assert method == "captions" and int(np.argmax(evidence)) == 1
    assert evidence[1] > 0.75 > evidence[0] and 0.0 <= evidence.min()  # its cluster is the top quarter


def test_without_captions_agreement_demotes_a_fact_and_a_lone_mistake() -> None:
    """Two looks of the entity point at cluster 0, a mistake at cluster 3, a fact at no cluster at all."""
    rng = np.random.default_rng(1)
    images, _ = clustered_images(rng)
    look = np.eye(DIM)[0]
    texts = unit(np.stack([look + 0.2 * np.eye(DIM)[5], look + 0.2 * np.eye(DIM)[6],
                           np.eye(DIM)[3] + 0.3 * look, np.eye(DIM)[9]]))
    evidence, method = description_evidence(texts, images, [], top_k=10)
    assert method == "consensus"
    assert set(np.argsort(-evidence)[:2].tolist()) == {0, 1}  # both looks first
    assert int(np.argmin(evidence)) == 3  # the fact last
    one, _ = description_evidence(texts[:1], images, [], top_k=10)
    assert one.tolist() == [0.0]  # a lone description has nothing to agree with


def test_kb_ranks_by_evidence_and_keeps_it_across_imports(tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records([record("tomato", t, "enc", s)
                           for t, s in [("grown in gardens", 0.9), ("a red circle", 0.5), ("a blue square", 0.7)]])
        assert [d.text for d in kb.get("tomato")] == ["grown in gardens", "a blue square", "a red circle"]
        assert kb.set_evidence({"tomato": {"a red circle": 2.0, "a blue square": 0.4, "grown in gardens": 0.1}}) == 3
        assert [d.text for d in kb.get("tomato")] == ["a red circle", "a blue square", "grown in gardens"]
        assert kb.get("tomato")[0] == Description("a red circle", "enc", 0.5, "", 2.0)
        kb.import_records([record("tomato", "juicy", "llm", 1.0)])
        # measured descriptions stay first; a new one waits for the next calibration, behind them
        assert [d.text for d in kb.get("tomato")] == ["a red circle", "a blue square", "grown in gardens", "juicy"]
    with KnowledgeBase.open(tmp_path / "kb") as kb:
        assert kb.get("tomato")[0].evidence == 2.0


def test_set_evidence_refuses_unknown_entities_and_read_only(tmp_path: Path) -> None:
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as kb:
        kb.import_records([record("tomato", "a red circle", "enc", 1.0)])
        with pytest.raises(UserError, match="not in the knowledge base"):
            kb.set_evidence({"penguin": {"black and white": 1.0}})
    with KnowledgeBase.open(tmp_path / "kb") as kb, pytest.raises(UserError, match="read-only"):
        kb.set_evidence({"tomato": {"a red circle": 1.0}})
