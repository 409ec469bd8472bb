"""Parsing LLM output: judge answers (malformed ones counted), FuDD contrast answers; world-truth verdicts."""

from __future__ import annotations

import pytest

from evdsearch.training.descriptions.ex2_inspect import (
    Verdict,
    agreement,
    breakdown,
    parse_judge,
    world_verdict,
)


@pytest.mark.parametrize(("answer", "informative", "visual"), [
    ("informative, visual", True, True),
    ("Spurious, non-visual", False, False),
    ("  INFORMATIVE | NON VISUAL.", True, False),
    ("Answer: spurious; visual", False, True),
    ("1. informative\n2. not visual", True, False),
    ("uninformative, visual", False, True),
    ('{"informative": true, "visual": false}', True, False),
])
def test_well_formed_answers(answer: str, informative: bool, visual: bool) -> None:
    verdict = parse_judge(answer)
    assert (verdict.informative, verdict.visual) == (informative, visual)
    assert not verdict.malformed


@pytest.mark.parametrize("answer", [
    "", "I cannot tell.", "informative", "visual or non-visual, informative",
    "informative and spurious, visual", '{"informative": "yes", "visual": true}', "[1, 2]", None,
])
def test_malformed_answers_are_flagged_not_raised(answer: str) -> None:
    assert parse_judge(answer).malformed


def test_breakdown_counts_malformed_apart_and_agreement_skips_them() -> None:
    judge = [parse_judge(a) for a in ("informative, visual", "spurious, non-visual", "???", "informative, visual")]
    truth = [world_verdict("visual_correct"), world_verdict("non_visual"), world_verdict("visual_wrong"),
             world_verdict("visual_vague")]
    b = breakdown(judge)
    assert b["malformed"] == 1 and b["n"] == 4
    assert b["counts"]["informative/visual"] == 2 and b["counts"]["spurious/non-visual"] == 1
    agree = agreement(judge, truth)
    assert agree["n"] == 3
    assert agree["informative"] == pytest.approx(2 / 3, abs=1e-4) and agree["visual"] == pytest.approx(2 / 3, abs=1e-4)
    assert agreement([Verdict(None, None)], [truth[0]])["n"] == 0


def test_world_verdicts() -> None:
    assert world_verdict("visual_correct").cell == "informative/visual"
    assert world_verdict("visual_wrong").cell == "spurious/visual"
    assert world_verdict("visual_vague").cell == "spurious/non-visual"
    assert world_verdict("non_visual").cell == "spurious/non-visual"


def test_fudd_answer_split_into_the_two_classes(tmp_path) -> None:  # noqa: ANN001
    from evdsearch.training.descriptions.fudd import PairCache, ambiguous_sets, needed_pairs, split_contrast

    assert split_contrast("A lime is small and green, while a tennis ball is fuzzy.") == (
        "A lime is small and green.", "A tennis ball is fuzzy.")
    assert split_contrast("A lime is green.") == ("A lime is green.", "A lime is green.")
    cache = PairCache(tmp_path / "pairs.jsonl")
    cache.add("apple", "tangerine", "A tangerine is orange, while an apple is red and round.")
    assert cache.sides("apple", "tangerine") == ("An apple is red and round.", "A tangerine is orange.")
    assert PairCache(tmp_path / "pairs.jsonl").items == cache.items  # reloaded from disk
    import numpy as np

    sets = ambiguous_sets(np.array([[0.1, 0.9, 0.5], [0.8, 0.1, 0.7]]), 2)
    assert sets.tolist() == [[1, 2], [0, 2]] and needed_pairs(sets) == [(0, 2), (1, 2)]


def test_fudd_predict_reranks_within_the_ambiguous_set() -> None:
    import numpy as np

    from evdsearch.training.descriptions.fudd import fudd_predict

    images = np.array([[1.0, 0.0], [0.0, 1.0]])
    sets = np.array([[0, 1], [0, 1]])  # both images ambiguous between classes 0 and 1
    pair_emb = {(0, 1): np.array([1.0, 0.0]), (1, 0): np.array([0.0, 1.0])}
    assert fudd_predict(images, sets, pair_emb).tolist() == [0, 1]
    prior = np.array([[0.0, 1.0], [1.0, 0.0]]) * 10  # a strong opposite prior flips both
    assert fudd_predict(images, sets, pair_emb, prior=prior).tolist() == [1, 0]


def test_fudd_pairs_ask_only_for_uncached_pairs_in_batches(tmp_path) -> None:  # noqa: ANN001
    from evdsearch.training.descriptions.fudd import FuDDConfig, PairCache, describe_pairs
    from evdsearch.training.llm.base import ChatResult

    class EchoLLM:
        def __init__(self) -> None:
            self.batches: list[int] = []

        def chat_batch(self, requests):  # noqa: ANN001, ANN202
            self.batches.append(len(requests))
            for r in requests:
                a, b = r.messages[0]["content"].split(" looks different from a ")
                yield ChatResult(f"A {a.split()[-1]} is red, while a {b.rstrip('.')} is blue.", 0, 0)

    cache = PairCache(tmp_path / "pairs.jsonl")
    cache.add("apple", "cherry", "An apple is big, while a cherry is small.")
    pairs = [("apple", "cherry"), ("apple", "lime"), ("cherry", "lime"), ("lime", "tomato")]
    cfg = FuDDConfig(data="", model="", out="", batch_size=2)
    llm = EchoLLM()
    assert describe_pairs(llm, pairs, cache, cfg) == 3
    assert llm.batches == [2, 1]
    assert cache.sides("cherry", "lime") == ("A cherry is red.", "A lime is blue.")
    assert describe_pairs(llm, pairs, PairCache(tmp_path / "pairs.jsonl"), cfg) == 0  # all cached on disk now
