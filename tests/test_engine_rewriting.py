"""Rewriters (none, template, prompt format, factory) and QueryRewriter over a real KB, with its LRU cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_engine_support import build_kb

from evdsearch.engine.fusion import fuse_queries
from evdsearch.engine.rewriters import create_rewriter
from evdsearch.engine.rewriters.none import NoRewriter
from evdsearch.engine.rewriters.prompt import format_rewriter_input
from evdsearch.engine.rewriters.template import TemplateRewriter, connect, template_rewrite
from evdsearch.engine.rewriting import LRUCache, QueryRewriter
from evdsearch.errors import InvalidInput
from evdsearch.indexer.kb import Description, KnowledgeBase


@pytest.fixture(scope="module")
def kb(tmp_path_factory: pytest.TempPathFactory) -> KnowledgeBase:
    with KnowledgeBase.open(build_kb(tmp_path_factory.mktemp("kb"))) as opened:
        yield opened


def test_template_baseline_text() -> None:
    evidence = {"tomato": [Description("a red round fruit.", "enc", 0.9), Description("green leaves", "enc", 0.8)],
                "school bus": ["is long and yellow"]}
    assert template_rewrite("a tomato next to a school bus.", evidence) == (
        "a tomato next to a school bus, tomato which is a red round fruit and has green leaves, "
        "school bus which is long and yellow")
    assert template_rewrite("a tomato", {}) == "a tomato"
    assert TemplateRewriter().rewrite_batch([("q", {"e": ["spots"]})]) == ["q, e which has spots"]


def test_none_rewriter_keeps_the_query() -> None:
    assert NoRewriter().rewrite("a tomato", {"tomato": ["red"]}) == "a tomato"


def test_prompt_is_one_stable_line() -> None:
    evidence = {"tomato": [Description("a red  round\nfruit.", "enc", 0.9), "glossy skin"], "empty": []}
    assert format_rewriter_input(" a  tomato ", evidence) == "rewrite: a tomato | tomato: a red round fruit; glossy skin"
    assert format_rewriter_input("a dog", {}) == "rewrite: a dog"


def test_create_rewriter_specs(tmp_path: Path) -> None:
    assert create_rewriter("none").name == "none"
    assert create_rewriter("template").name == "template"
    with pytest.raises(InvalidInput, match="unknown rewriter 'fancy'"):
        create_rewriter("fancy")
    with pytest.raises(Exception, match="not a seq2seq rewriter folder"):
        create_rewriter(str(tmp_path))  # a folder without a model in it


def test_query_rewriter_uses_top_descriptions_in_rank_order(kb: KnowledgeBase) -> None:
    rewriter = QueryRewriter(kb, TemplateRewriter(), max_descriptions=2)
    result = rewriter.rewrite("  Two tomatoes beside a red panda ")
    assert result.query == "Two tomatoes beside a red panda"
    assert result.entities == ["tomato", "red panda"]
    assert [d.text for d in result.descriptions["tomato"]] == ["a red round fruit", "green leaves on top"]
    assert result.rewritten == ("Two tomatoes beside a red panda, tomato which is a red round fruit and has "
                                "green leaves on top, red panda which is a small red-brown mammal")
    assert [(m.text, m.start) for m in result.mentions] == [("tomatoes", 4), ("red panda", 22)]


def test_query_without_entities_is_not_rewritten(kb: KnowledgeBase) -> None:
    class Exploding:
        name = "exploding"

        def rewrite_batch(self, items):  # noqa: ANN001, ANN201
            raise AssertionError("the rewriter must not run without evidence")

    result = QueryRewriter(kb, Exploding()).rewrite("a photo of a cat")
    assert result.rewritten == result.query and result.entities == [] and result.descriptions == {}


def test_rewrites_are_cached_and_batched(kb: KnowledgeBase) -> None:
    calls: list[int] = []

    class Counting(TemplateRewriter):
        def rewrite_batch(self, items):  # noqa: ANN001, ANN201
            calls.append(len(items))
            return super().rewrite_batch(items)

    rewriter = QueryRewriter(kb, Counting(), cache_size=8)
    first = rewriter.rewrite_many(["a tomato", "a panda", "a tomato", "a cat"])
    assert calls == [2]  # one batch, duplicates and entity-free queries left out
    again = rewriter.rewrite("a tomato")
    assert calls == [2] and again is first[0]
    assert rewriter.cache.hits == 1


def test_lru_cache_evicts_least_recently_used() -> None:
    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1
    cache.put("c", 3)
    assert cache.get("b") is None and cache.get("a") == 1 and cache.get("c") == 3
    disabled = LRUCache(0)
    disabled.put("a", 1)
    assert disabled.get("a") is None


def test_no_kb_means_no_rewriting() -> None:
    result = QueryRewriter(None, TemplateRewriter()).rewrite("a tomato")
    assert result.rewritten == "a tomato" and result.entities == []


def test_fuse_queries_is_the_weighted_sum() -> None:
    rng = np.random.default_rng(0)
    q, q2 = rng.normal(size=(3, 8)).astype(np.float32), rng.normal(size=(3, 8)).astype(np.float32)
    np.testing.assert_allclose(fuse_queries(q, q2, 0.25), 0.75 * q + 0.25 * q2, rtol=1e-6)
    alphas = np.array([0.0, 0.5, 1.0], dtype=np.float32)
    fused = fuse_queries(q, q2, alphas)
    np.testing.assert_allclose(fused[0], q[0]), np.testing.assert_allclose(fused[2], q2[2])
    with pytest.raises(ValueError):
        fuse_queries(q, q2[:, :4], 0.5)


@pytest.mark.parametrize("description, clause", [
    ("a round red fruit", "is a round red fruit"),
    ("black and white stripes", "has black and white stripes"),
    ("grown in vegetable gardens", "is grown in vegetable gardens"),
    ("carries children to school", "carries children to school"),
    ("looks like a ball", "looks like a ball"),
])
def test_template_connects_descriptions_grammatically(description: str, clause: str) -> None:
    assert connect(description) == clause
