"""`evd select`: the best of several samples by agreement on colour / shape words, no world truth used."""

from __future__ import annotations

import json
from pathlib import Path

from evdsearch.cli import main
from evdsearch.training.evd.agreement import AgreementConfig, agreed_values, select_by_agreement


def _records(entity: str, texts: list[str]) -> list[dict]:
    return [{"entity": entity, "description": t, "source": "llm:test", "score": 1.0, "sample": i}
            for i, t in enumerate(texts)]


def test_majority_colour_wins_and_contradictions_are_dropped() -> None:
    records = _records("tomato", ["a red tomato", "a red tomato", "a round red fruit", "a green tomato",
                                  "grown in gardens", "a red and blue tomato"])
    kept = select_by_agreement(records, AgreementConfig(keep=5, min_votes=2))
    texts = [r["description"] for r in kept]
    assert texts[0] == "a round red fruit" or texts[0] == "a red tomato"
    assert "a green tomato" not in texts  # names a colour the others do not agree on
    assert "grown in gardens" not in texts  # names no attribute: nothing to agree with
    assert "a red and blue tomato" not in texts  # blue is named once: not agreed
    assert all(r["agreement"] > 0 and 0 < r["score"] <= 1 for r in kept)
    assert texts.count("a red tomato") == 1  # duplicates count once


def test_recurring_second_colour_is_agreed() -> None:
    records = _records("zebra", ["a white zebra with black stripes", "a black and white striped horse",
                                 "a white zebra", "a black zebra", "a brown zebra"])
    texts = [r["description"] for r in select_by_agreement(records, AgreementConfig(min_votes=2))]
    assert "a white zebra with black stripes" in texts and "a black and white striped horse" in texts
    assert "a brown zebra" not in texts
    assert agreed_values({"white": 3, "black": 3, "brown": 1}, 2) == {"white", "black"}


def test_entity_name_words_do_not_vote_and_keep_bounds_the_output() -> None:
    records = _records("orange", ["an orange", "an orange", "an orange fruit", "a round orange"])
    assert select_by_agreement(records, AgreementConfig(fallback=False)) == []  # "orange" is the name here
    records = _records("cherry", [f"a small red round cherry number {i}" for i in range(9)])
    assert len(select_by_agreement(records, AgreementConfig(keep=3, min_votes=2))) == 3


def test_fallback_keeps_the_most_voted_when_nothing_agrees() -> None:
    records = _records("kite", ["a blue kite", "a red kite", "a triangular kite"])
    assert select_by_agreement(records, AgreementConfig(fallback=False)) == []
    kept = select_by_agreement(records)
    assert len(kept) == 1 and kept[0]["agreement"] == 1


def test_select_verb_writes_importable_jsonl(tmp_path: Path, capsys) -> None:  # noqa: ANN001
    evds = tmp_path / "evds.jsonl"
    rows = _records("tomato", ["a red tomato", "a red round fruit", "a blue tomato"]) + \
        [{**r, "prompt": "other"} for r in _records("lime", ["a green lime", "a green round fruit"])]
    evds.write_text("".join(json.dumps(r) + "\n" for r in rows))
    out = tmp_path / "kept.jsonl"
    assert main(["evd", "select", "--evds", str(evds), "--out", str(out), "--keep", "2", "--min-votes", "2"]) == 0
    kept = [json.loads(line) for line in out.read_text().splitlines()]
    assert {r["entity"] for r in kept} == {"tomato", "lime"} and len(kept) == 4
    assert f"descriptions: {out}" in capsys.readouterr().out
    assert main(["kb", "import", str(out), "--kb", str(tmp_path / "kb")]) == 0
    assert main(["evd", "select", "--evds", str(evds), "--out", str(out), "--prompts", "other",
                 "--min-votes", "2"]) == 0
    assert {json.loads(line)["entity"] for line in out.read_text().splitlines()} == {"lime"}
    assert main(["evd", "select", "--evds", str(tmp_path / "missing.jsonl"), "--out", str(out)]) == 2


def test_raw_answers_vote_when_given() -> None:
    records = _records("lime", ["a green lime", "a yellow lime"])
    assert [r["description"] for r in select_by_agreement(records, AgreementConfig(fallback=False))] == []
    answers = {"lime": ["a green lime", "a green lime", "a green lime", "a yellow lime"]}
    kept = select_by_agreement(records, AgreementConfig(fallback=False), answers)
    assert [(r["description"], r["agreement"]) for r in kept] == [("a green lime", 3)]


def test_a_colour_and_a_shape_outrank_more_of_the_same() -> None:
    records = _records("cherry", ["a red cherry", "a bright red cherry", "a red fruit", "a round cherry"])
    answers = {"cherry": ["a red cherry"] * 4 + ["a round cherry"] * 3}
    texts = [r["description"] for r in select_by_agreement(records, AgreementConfig(keep=2), answers)]
    assert texts[0] in ("a red cherry", "a red fruit") and texts[1] == "a round cherry"  # not two colour phrasings


def test_select_verb_counts_repeated_answers_from_the_progress_log(tmp_path: Path) -> None:
    evds = tmp_path / "evds.jsonl"
    evds.write_text("".join(json.dumps(r) + "\n" for r in _records("lime", ["a green lime", "a yellow lime"])))
    calls = [{"stage": "describe", "entity": "lime", "prompt": "colour", "sample": i, "raw": raw}
             for i, raw in enumerate(["a green lime", "a green lime", "a yellow lime"])]
    (tmp_path / "evds.progress.jsonl").write_text("".join(json.dumps(c) + "\n" for c in calls))
    out = tmp_path / "kept.jsonl"
    assert main(["evd", "select", "--evds", str(evds), "--out", str(out)]) == 0
    assert [json.loads(line)["description"] for line in out.read_text().splitlines()] == ["a green lime"]
