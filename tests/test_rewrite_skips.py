"""Work skipped when the answer cannot change: no rewriter call for α = 0 (fused), original mode or entity-free
queries; model outputs cached by prompt (query + descriptions); the answers equal those of the full path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_engine_support import open_engine

from evdsearch.engine.rewriters.template import TemplateRewriter
from evdsearch.engine.rewriting import QueryRewriter
from evdsearch.indexer.kb import KnowledgeBase
from evdsearch.search_api import SearchRequest

QUERY = "two tomatoes next to a school bus"


class CountingRewriter(TemplateRewriter):
    """The template's rewrites under a model's name, counting the (query, evidence) pairs it is handed."""

    name = "counting-model"

    def __init__(self) -> None:
        self.seen: list[str] = []

    def rewrite_batch(self, items):  # noqa: ANN001, ANN201
        self.seen += [query for query, _ in items]
        return super().rewrite_batch(items)


@pytest.fixture()
def engine(parts: tuple[Path, Path]):  # noqa: ANN201
    with open_engine(*parts, rewrite_cache_size=0) as opened:
        opened.rewriter.rewriter = CountingRewriter()
        yield opened


def test_fused_alpha_zero_and_original_mode_run_no_rewrite(engine) -> None:  # noqa: ANN001
    counting = engine.rewriter.rewriter
    zero = engine.search(SearchRequest(text=QUERY, k=5, mode="fused", alpha=0.0))
    original = engine.search(SearchRequest(text=QUERY, k=5, mode="original"))
    assert counting.seen == []
    assert [h.id for h in zero.hits] == [h.id for h in original.hits]
    assert [h.score for h in zero.hits] == pytest.approx([h.score for h in original.hits], abs=1e-6)
    engine.search(SearchRequest(text=QUERY, k=5, mode="fused", alpha=0.3))
    assert counting.seen == [QUERY]
    engine.search(SearchRequest(text="two tomatoes", k=5, mode="fused", alpha=0.0, explain=True))  # shown: rewritten
    engine.search(SearchRequest(text="a school bus", k=5, mode="rewritten", alpha=0.0))  # searched alone: rewritten
    engine.search(SearchRequest(text="a plain red square", k=5, mode="fused"))  # no entity: nothing to rewrite
    assert counting.seen == [QUERY, "two tomatoes", "a school bus"]


def test_alpha_zero_ranks_like_the_full_path(parts: tuple[Path, Path]) -> None:
    """Skipping q' at α = 0 changes no hit: the same ranking and fused scores as when q' is computed."""
    with open_engine(*parts) as full:
        explained = full.search(SearchRequest(text=QUERY, k=8, mode="fused", alpha=0.0, explain=True))
        skipped = full.search(SearchRequest(text=QUERY + " again", k=8, mode="fused", alpha=0.0))
        plain = full.search(SearchRequest(text=QUERY + " again", k=8, mode="original"))
    assert explained.explanation.rewritten_query != QUERY
    assert [h.id for h in skipped.hits] == [h.id for h in plain.hits]
    np.testing.assert_allclose([h.score for h in skipped.hits], [h.original_score for h in plain.hits], atol=1e-6)


def test_batch_decodes_only_the_queries_whose_q_prime_counts(engine) -> None:  # noqa: ANN001
    counting = engine.rewriter.rewriter
    reqs = [SearchRequest(text=QUERY, k=3, mode="fused", alpha=0.0), SearchRequest(text="two tomatoes", k=3),
            SearchRequest(text="a school bus", k=3, mode="original")]
    answers = engine.search_batch(reqs)
    assert counting.seen == ["two tomatoes"] and len(answers) == 3


def test_model_outputs_are_cached_by_prompt(parts: tuple[Path, Path]) -> None:
    counting = CountingRewriter()
    with KnowledgeBase.open(parts[1]) as kb:
        rewriter = QueryRewriter(kb, counting, cache_size=16)
        first = rewriter.rewrite("two  tomatoes")
        second = rewriter.rewrite("two tomatoes")  # another query text, the same prompt
        third = rewriter.rewrite("two tomato")  # the same entity, another prompt
    assert counting.seen == ["two  tomatoes", "two tomato"]
    assert first.rewritten == second.rewritten and first is not second
    assert third.rewritten != first.rewritten


def test_lookup_then_finish_matches_rewrite_many(parts: tuple[Path, Path]) -> None:
    with KnowledgeBase.open(parts[1]) as kb:
        rewriter = QueryRewriter(kb, CountingRewriter(), cache_size=0, template_ensemble=True)
        looked = rewriter.lookup([QUERY, "a plain square", QUERY])
        assert [item.pending for item in looked] == [True, False, True] and looked[0] is looked[2]
        assert looked[0].result.rewritten == QUERY
        rewriter.finish(looked)
        reference = QueryRewriter(kb, TemplateRewriter(), cache_size=0).rewrite(QUERY)
    assert looked[0].result.rewritten == reference.rewritten and not looked[0].pending
    assert looked[0].result.variants == [reference.rewritten]  # ensembled with the template
