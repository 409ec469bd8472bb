"""Knowledge base: entity normalisation, import / get / ranking, de-duplication, all-or-nothing, read-only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from evdsearch.errors import InvalidInput, NotFound, UserError
from evdsearch.indexer.kb import Description, KnowledgeBase, normalize_entity


@pytest.mark.parametrize("name, key", [
    ("tomatoes", "tomato"), ("buses", "bus"), ("cherries", "cherry"), ("boxes", "box"),
    ("glasses", "glass"), ("bus", "bus"), ("octopus", "octopus"), ("grass", "grass"), ("tennis", "tennis"),
    ("houses", "house"), ("shoes", "shoe"), ("potatoes", "potato"), ("knives", "knife"), ("people", "person"),
    ("series", "series"), ("Stop Signs", "stop sign"), ("  stop \t signs ", "stop sign"),
    ("STOP-SIGNS!", "stop sign"), ("school_buses", "school bus"), ("McDonald's", "mcdonald"),
    ("Golden Retrievers", "golden retriever"), ("", ""),
])
def test_normalize_entity(name: str, key: str) -> None:
    assert normalize_entity(name) == key


def test_normalisation_is_word_by_word() -> None:
    """What lets the engine normalise query words once and match multi-word names on them."""
    for name in ["red stop signs", "two school buses, parked", "glasses of cherries"]:
        assert normalize_entity(name) == " ".join(normalize_entity(w) for w in name.split()).strip()


def rec(entity: str, text: str, score: float, source: str = "encyclopedia", **kw) -> dict:
    return {"entity": entity, "description": text, "source": source, "score": score, **kw}


@pytest.fixture
def kb(tmp_path: Path) -> Iterator[KnowledgeBase]:
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as writable:
        writable.import_records([
            rec("Tomatoes", "a round red fruit", 0.5, kind="visual"),
            rec("tomato", "native to South America", 0.1, kind="non_visual"),
            rec("tomato", "smooth shiny skin", 0.9, kind="visual"),
            rec("tomato", "about fist sized", 0.5, source="llm", kind="visual"),
            rec("Stop Signs", "a red octagon with white letters", 1.0),
        ])
    with KnowledgeBase.open(tmp_path / "kb") as readonly:
        yield readonly


def test_get_ranks_by_score_with_ties_in_import_order(kb: KnowledgeBase) -> None:
    assert kb.get("TOMATOES") == [
        Description("smooth shiny skin", "encyclopedia", 0.9, "visual"),
        Description("a round red fruit", "encyclopedia", 0.5, "visual"),
        Description("about fist sized", "llm", 0.5, "visual"),
        Description("native to South America", "encyclopedia", 0.1, "non_visual"),
    ]
    assert kb.get("stop sign") == [Description("a red octagon with white letters", "encyclopedia", 1.0)]
    assert kb.get("unicorn") == []
    assert "stop-signs" in kb and "unicorn" not in kb


def test_entities_stats_and_display_names(kb: KnowledgeBase) -> None:
    assert kb.entities() == ["stop sign", "tomato"]
    assert kb.display_names() == {"stop sign": "Stop Signs", "tomato": "Tomatoes"}
    assert kb.display_name("tomato") == "Tomatoes"
    stats = kb.stats()
    assert (stats.entities, stats.descriptions, len(kb)) == (2, 5, 2)
    assert stats.sources == {"encyclopedia": 4, "llm": 1}
    assert stats.kinds == {"visual": 3, "non_visual": 1, "": 1}


def test_reimport_deduplicates_and_keeps_tie_order(tmp_path: Path, kb: KnowledgeBase) -> None:
    kb.close()
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as writable:
        report = writable.import_records([
            rec("tomato", "smooth shiny skin", 0.2, kind="visual"),  # same (entity, text, source): skipped
            rec("tomato", "smooth shiny skin", 0.2, source="llm"),  # other source: kept
            rec("tomato", "green leafy stem", 0.5),  # ties with stored 0.5s: ranks after them
            rec("bus", "long yellow vehicle", 0.7),
            rec("buses", "long yellow vehicle", 0.7),  # repeat inside one import
        ])
        assert (report.records, report.added, report.duplicates, report.new_entities) == (5, 3, 2, 1)
        assert [d.text for d in writable.get("tomato")] == [
            "smooth shiny skin", "a round red fruit", "about fist sized", "green leafy stem",
            "smooth shiny skin", "native to South America"]
        assert writable.stats().descriptions == 8 and writable.stats().entities == 3


def test_export_round_trips(tmp_path: Path, kb: KnowledgeBase) -> None:
    exported = list(kb.export())
    assert len(exported) == 5
    assert exported[0] == {"entity": "Stop Signs", "description": "a red octagon with white letters",
                           "source": "encyclopedia", "score": 1.0, "kind": ""}
    with KnowledgeBase.open(tmp_path / "copy", readonly=False) as copy:
        copy.import_records(exported)
        assert list(copy.export()) == exported
        assert copy.get("tomato") == kb.get("tomato")


@pytest.mark.parametrize("bad, message", [
    ({"entity": "x", "description": "d", "source": "s"}, "'score' must be a finite number"),
    ({"entity": "x", "description": "d", "source": "s", "score": "high"}, "'score'"),
    ({"entity": "x", "description": "d", "source": "s", "score": True}, "'score'"),
    ({"entity": "x", "description": "", "source": "s", "score": 1}, "'description' must be a non-empty"),
    ({"entity": "!!!", "description": "d", "source": "s", "score": 1}, "no letters or digits"),
    ({"description": "d", "source": "s", "score": 1}, "missing field 'entity'"),
    (["not", "an", "object"], "expected a JSON object"),
])
def test_bad_record_fails_whole_import(tmp_path: Path, kb: KnowledgeBase, bad: object, message: str) -> None:
    kb.close()
    with KnowledgeBase.open(tmp_path / "kb", readonly=False) as writable:
        before = list(writable.export())
        with pytest.raises(InvalidInput, match=f"record 2: .*{message}"):
            writable.import_records([rec("zebra", "black and white stripes", 1.0), bad])
        assert list(writable.export()) == before and "zebra" not in writable


def test_readonly_cannot_write(kb: KnowledgeBase) -> None:
    with pytest.raises(UserError, match="read-only"):
        kb.import_records([rec("zebra", "stripes", 1.0)])
    assert "zebra" not in kb


def test_open_missing_readonly_is_not_found(tmp_path: Path) -> None:
    with pytest.raises(NotFound, match="no knowledge base"):
        KnowledgeBase.open(tmp_path / "nope")
    assert not (tmp_path / "nope").exists()


def test_opening_an_open_kb_again_is_a_clear_error(kb: KnowledgeBase) -> None:
    with pytest.raises(UserError, match="cannot open the knowledge base"):
        KnowledgeBase.open(kb.path)


def test_map_grows_when_full(tmp_path: Path) -> None:
    records = [rec(f"entity {i}", "x" * 2000, 1.0) for i in range(200)]  # ~400 KB into a 64 KiB map
    with KnowledgeBase.open(tmp_path / "kb", readonly=False, map_size=64 * 1024) as writable:
        assert writable.import_records(records).added == 200
    with KnowledgeBase.open(tmp_path / "kb") as readonly:
        assert readonly.stats().descriptions == 200 and readonly.get("entity 199")[0].text == "x" * 2000
