"""The engine's search options over a real tiny index: filters, thresholds, pages, weighted terms, "more like this",
diversity and metadata on hits, on Flat, IVF and HNSW; and each option's bad values refused with a message."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from test_engine_support import COLORS, build_kb, build_metadata_index, open_engine

from evdsearch.engine.search import SearchEngine
from evdsearch.errors import InvalidInput, NotFound
from evdsearch.indexer.filtered_search import FilteredSearchConfig
from evdsearch.search_api import MAX_DEPTH, SearchRequest, WeightedText

QUERY = "a red tomato next to a school bus"


@pytest.fixture(scope="module", params=["Flat", "IVF2,Flat", "HNSW8"])
def engine(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> SearchEngine:
    root = tmp_path_factory.mktemp("features")
    with open_engine(build_metadata_index(root, tiny_clip_dir, request.param), build_kb(root / "kb")) as opened:
        yield opened


def _ids(engine: SearchEngine, **fields: object) -> list[int]:
    return [h.id for h in engine.search(SearchRequest(**fields)).hits]


@pytest.mark.parametrize("selector", [False, True], ids=["exact", "selector"])
def test_filter_keeps_only_matches_and_min_k_of_them(engine: SearchEngine, selector: bool) -> None:
    if selector:
        engine.store.filtered_config = FilteredSearchConfig(exact_rows=0, exact_fraction=0.0)
    try:
        for text, matches in (("rank < 5", {0, 1, 2, 3, 4}), ('color in ["red", "blue"]', {0, 2}),
                              ("rank >= 0", set(range(12)))):
            resp = engine.search(SearchRequest(text=QUERY, k=4, filter=text, explain=True, with_metadata=True))
            assert {h.id for h in resp.hits} <= matches and len(resp.hits) == min(4, len(matches))
            assert resp.explanation.filter_matches == len(matches) and resp.explanation.search_plan
            assert all(h.metadata["rank"] == h.id and h.metadata["color"] == COLORS[h.id] for h in resp.hits)
    finally:
        engine.store.filtered_config = FilteredSearchConfig()


@pytest.mark.parametrize("mode", ["fused", "original"])
@pytest.mark.parametrize("flt", [None, "rank != 3"])
def test_pages_concatenate_to_one_call(engine: SearchEngine, mode: str, flt: str | None) -> None:
    top = _ids(engine, text=QUERY, k=12, mode=mode, filter=flt)
    pages = [_ids(engine, text=QUERY, k=3, offset=offset, mode=mode, filter=flt) for offset in range(0, 15, 3)]
    assert sum(pages, []) == top and len(set(top)) == len(top)


def test_thresholds(engine: SearchEngine) -> None:
    hits = engine.search(SearchRequest(text=QUERY, k=12)).hits
    cut = hits[4].score
    kept = engine.search(SearchRequest(text=QUERY, k=12, min_score=cut)).hits
    assert [h.id for h in kept] == [h.id for h in hits if h.score >= cut] and all(h.score >= cut for h in kept)
    assert engine.search(SearchRequest(text=QUERY, k=12, min_score=2.0)).hits == []  # fewer than k is an answer
    relative = engine.search(SearchRequest(text=QUERY, k=12, min_relative=0.98)).hits
    assert relative and all(h.score >= hits[0].score - 0.02 * abs(hits[0].score) - 1e-7 for h in relative)
    assert len(engine.search(SearchRequest(text=QUERY, k=12, min_relative=0.0)).hits) == len(hits) or hits[0].score < 0


def test_weighted_terms(engine: SearchEngine) -> None:
    plain = engine.search(SearchRequest(text="a red circle", k=12))
    zero = engine.search(SearchRequest(terms=[WeightedText("a red circle", 1.0), WeightedText("tomato", 0.0)], k=12))
    assert [(h.id, h.score, h.original_score) for h in zero.hits] == [(h.id, h.score, h.original_score)
                                                                      for h in plain.hits]
    mixed = engine.search(SearchRequest(terms=[WeightedText("a red circle", 1.0), WeightedText("tomato", -0.5)],
                                        k=12, explain=True, mode="original"))
    alone = {h.id: h.original_score for h in engine.search(SearchRequest(text="tomato", k=12, mode="original")).hits}
    base = {h.id: h.original_score for h in engine.search(SearchRequest(text="a red circle", k=12,
                                                                        mode="original")).hits}
    for hit in mixed.hits:
        assert hit.score == pytest.approx(base[hit.id] - 0.5 * alone[hit.id], abs=1e-5)
    terms = mixed.explanation.terms
    assert [(t.text, t.weight) for t in terms] == [("a red circle", 1.0), ("tomato", -0.5)]
    assert "tomato" in terms[1].entities and terms[1].alpha is not None


def test_more_like_this_excludes_the_image(engine: SearchEngine) -> None:
    hits = engine.search(SearchRequest(like_id=3, k=11)).hits
    assert len(hits) == 11 and 3 not in {h.id for h in hits}
    by_vector = [h.id for h in engine.search(SearchRequest(embedding=engine.store.embeddings[3], k=12)).hits]
    assert [h.id for h in hits] == [i for i in by_vector if i != 3]
    with pytest.raises(NotFound, match="no image 99"):
        engine.search(SearchRequest(like_id=99))


def test_diversity(engine: SearchEngine) -> None:
    plain = engine.search(SearchRequest(text=QUERY, k=6))
    same = engine.search(SearchRequest(text=QUERY, k=6, diversity=0.0))
    assert [(h.id, h.score) for h in same.hits] == [(h.id, h.score) for h in plain.hits]
    diverse = engine.search(SearchRequest(text=QUERY, k=6, diversity=0.9)).hits
    assert len({h.id for h in diverse}) == 6 and diverse[0].id == plain.hits[0].id
    vectors = np.asarray(engine.store.embeddings)
    spread = [float(np.mean(vectors[[h.id for h in hits]] @ vectors[[h.id for h in hits]].T)) for hits in
              (plain.hits, diverse)]
    assert spread[1] <= spread[0] + 1e-6


@pytest.mark.parametrize("fields, message", [
    ({"text": "x", "filter": "rank <"}, "expected a value"),
    ({"text": "x", "filter": "(" * 100 + "rank == 1" + ")" * 100}, "nests deeper"),
    ({"text": "x", "filter": "a == 1 " * 200_000}, "characters long"),
    ({"text": "x", "filter": "colour == 1"}, "unknown field 'colour'"),
    ({"text": "x", "filter": 'rank == "two"'}, "field 'rank' is int"),
    ({"text": "x", "min_relative": 1.5}, "min_relative"),
    ({"text": "x", "min_score": float("nan")}, "min_score"),
    ({"text": "x", "offset": -1}, "offset"),
    ({"text": "x", "offset": MAX_DEPTH, "k": 1}, "deepest page"),
    ({"text": "x", "diversity": 0.5, "offset": 250, "k": 10}, "pool"),
    ({"text": "x", "diversity": 2.0}, "diversity"),
    ({"terms": [WeightedText("x", 0.0)]}, "every term has weight 0"),
    ({"terms": [WeightedText("", 1.0)]}, "term 0"),
    ({"terms": [WeightedText("x", 1e9)]}, "weights lie in"),
    ({"text": "x", "terms": [WeightedText("y", 1.0)]}, "exactly one of"),
    ({"like_id": -2}, "like_id"),
])
def test_bad_options_are_refused(engine: SearchEngine, fields: dict, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        engine.search(SearchRequest(**fields))
