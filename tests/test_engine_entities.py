"""Entity extraction: longest match of KB names over normalised words, plurals, spans."""

from __future__ import annotations

import pytest

from evdsearch.engine.entities import EntityMatcher, distinct_entities
from evdsearch.indexer.kb import normalize_entity

NAMES = ["tomato", "school bus", "red panda", "panda", "stop sign", "t-rex", "new york city", "new york"]


@pytest.fixture(scope="module")
def matcher() -> EntityMatcher:
    return EntityMatcher([normalize_entity(n) for n in NAMES])


def found(matcher: EntityMatcher, query: str) -> list[tuple[str, str]]:
    return [(m.entity, m.text) for m in matcher.find(query)]


def test_single_and_multi_word(matcher: EntityMatcher) -> None:
    assert found(matcher, "a tomato next to a school bus") == [("tomato", "tomato"), ("school bus", "school bus")]


def test_longest_match_wins(matcher: EntityMatcher) -> None:
    assert found(matcher, "a red panda and a panda") == [("red panda", "red panda"), ("panda", "panda")]
    assert found(matcher, "streets of New York City at night") == [("new york city", "New York City")]
    assert found(matcher, "new york") == [("new york", "new york")]


def test_plurals_case_and_punctuation(matcher: EntityMatcher) -> None:
    assert found(matcher, "Three TOMATOES, two School Buses.") == [("tomato", "TOMATOES"),
                                                                  ("school bus", "School Buses")]
    assert found(matcher, "a T-Rex (roaring)") == [("t rex", "T-Rex")]


def test_spans_point_into_the_query(matcher: EntityMatcher) -> None:
    query = "Look: (tomatoes), a stop-sign and stop signs!"
    mentions = matcher.find(query)
    assert [query[m.start:m.end] for m in mentions] == [m.text for m in mentions]
    # punctuation separates words, as in the KB's normalize_entity: "stop-sign" is "stop sign"
    assert [m.text for m in mentions] == ["tomatoes", "stop-sign", "stop signs"]


def test_no_partial_or_substring_matches(matcher: EntityMatcher) -> None:
    assert found(matcher, "a school of fish near a bus") == []
    assert found(matcher, "tomatoesque pandas") == [("panda", "pandas")]


def test_distinct_entities_keep_first_mention_order(matcher: EntityMatcher) -> None:
    mentions = matcher.find("panda, tomato, panda again")
    assert distinct_entities(mentions) == ["panda", "tomato"]


def test_empty_matcher_and_query() -> None:
    assert EntityMatcher([], normalize_entity).find("a tomato") == []
    assert EntityMatcher(["tomato"], normalize_entity).find("   ") == []
