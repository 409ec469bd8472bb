"""`evdsearch bench search-features` on tiny inputs: the filter half end to end (recall, plans, tables, plot), the
tie-aware FAISS vs Milvus comparison, the threshold check's arithmetic on a scripted engine, and the world half
through the engine on a tiny shapes world."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from evdsearch.benchmarks.search_features_report import world_tables
from evdsearch.benchmarks.search_filters import TIE_TOLERANCE, tie_gap
from evdsearch.benchmarks.search_world_checks import check_threshold
from evdsearch.cli import main
from evdsearch.search_api import Hit, SearchRequest


def test_filters_part_end_to_end(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out, work = tmp_path / "out", tmp_path / "work"
    code = main(["bench", "search-features", "--part", "filters", "--n", "3000", "--dim", "16", "--queries", "20",
                 "--factories", "Flat;IVF16,Flat;HNSW8", "--seconds", "0.01", "--milvus-rows", "0",
                 "--workdir", str(work), "--out", str(out)])
    assert code == 0
    result = json.loads((out / "search_features.json").read_text())
    cells = result["filters"]["cells"]
    assert len(cells) == 3 * (1 + 3 * 3)  # per index: unfiltered, and 3 paths x 3 selectivities
    for cell in cells:
        assert cell["qps"] > 0
        if cell["factory"] == "Flat" or cell["path"] == "exact":
            assert cell["recall"] == pytest.approx(1.0), cell  # exact search over the kept rows
        if cell["path"] == "exact":
            assert cell["plan"].startswith("exact over")
        if cell["path"] in ("selector", "planned"):  # planned: exact below 20,000 kept rows, so always here
            assert cell["plan"].startswith(cell["path"].replace("planned", "exact") + " over"), cell
    assert {c["rows"] for c in result["filters"]["crossover"]} == {100, 1000, 3000}
    markdown = (out / "search_features.md").read_text()
    assert "--workdir" in markdown and "load average" not in markdown
    assert result["machine"]["text"].endswith(("no GPU", "not used")) and "load_before" not in result["machine"]
    assert (out / "search_features.png").stat().st_size > 0
    assert not work.exists()  # nothing but Milvus (skipped here) and the world write there
    assert "Exact vs selector" in capsys.readouterr().out


def test_tie_gap_tells_ties_from_reorderings() -> None:
    base = np.array([[1.0, 0.0], [1.0, 0.0], [0.6, 0.8], [0.0, 1.0]], dtype=np.float32)  # rows 0 and 1 tie
    query = np.array([1.0, 0.0], dtype=np.float32)
    assert tie_gap([0, 1, 2], [0, 1, 2], base, query) == 0.0
    assert tie_gap([0, 1, 2], [1, 0, 2], base, query) == 0.0  # equal scores traded places
    assert tie_gap([0, 1], [0, 2], base, query) == pytest.approx(0.4)  # a different second hit
    assert tie_gap([0, 2, 3], [0, 3, 2], base, query) > TIE_TOLERANCE
    assert tie_gap([0, 1], [0], base, query) == float("inf")


def test_faiss_and_milvus_agree_up_to_ties(tmp_path: Path) -> None:
    pytest.importorskip("pymilvus")
    pytest.importorskip("milvus_lite")
    from evdsearch.benchmarks.search_filters import FilterBenchConfig, _data, _milvus

    cfg = FilterBenchConfig(n=600, dim=16, queries=10, selectivities=(0.5, 0.05), workdir=str(tmp_path))
    base, queries, bucket = _data(cfg)
    base[1] = base[0]  # an exact tie: FAISS puts the lower id first, Milvus may not
    queries[0] = base[0]
    bucket[:2] = 0
    for row in _milvus(cfg, base, queries, bucket):
        assert row["same_sets"] == 1.0 and row["same_ids_up_to_ties"] == 1.0, row
        assert row["largest_swap_gap"] <= TIE_TOLERANCE


@dataclass
class _Store:
    names: list[str]

    @property
    def count(self) -> int:
        return len(self.names)

    live_count = count

    def item(self, row: int) -> dict[str, Any]:
        return {"uri": f"/images/{self.names[row]}"}


class _ScriptedEngine:
    """Scores per query text from a table (0.1 - 0.01 x row otherwise); search honours k and min_score."""

    def __init__(self, scores: dict[str, dict[int, float]], rows: int) -> None:
        self.scores, self.store = scores, _Store([f"{i}.png" for i in range(rows)])

    def search(self, request: SearchRequest) -> Any:
        table = self.scores.get(request.text, {})
        ranked = sorted(((table.get(r, 0.1 - 0.01 * r), r) for r in range(self.store.count)), reverse=True)
        hits = [Hit(r, f"{r}.png", s, s, s) for s, r in ranked if request.min_score is None or s >= request.min_score]
        return type("Response", (), {"hits": hits[:request.k]})


def test_threshold_check_counts_what_it_says() -> None:
    shapes = [[("red", "circle")], [("red", "circle"), ("blue", "square")], [("blue", "square")],
              [("green", "star")], [("green", "star")], [("yellow", "heart")]]
    objects = {f"{i}.png": [{"color": c, "shape": s} for c, s in obj] for i, obj in enumerate(shapes)}
    engine = _ScriptedEngine({"a purple ring": {0: 0.5},  # the absent pair's best: T = 0.5001
                              "a red circle": {0: 0.9, 1: 0.8},  # whole in the top 2, above T
                              "a blue square": {2: 0.9, 1: 0.45},  # whole in the top 2, one below T
                              "a green star": {3: 0.9, 4: 0.01},  # last of 6: not in the top 2
                              "a yellow heart": {5: 0.7}}, rows=6)
    t = check_threshold(engine, {"objects": objects, "held_out": [("purple", "ring")]}, k=2)
    assert t["threshold"] == pytest.approx(0.5001) and t["absent_answer_empty"]
    assert t["hits_below_threshold"] == 0 and t["threshold_hits"] == 5  # 2 + 1 + 1 + 1 hits at T
    assert (t["present_pairs"], t["present_pairs_in_top_k"], t["present_pairs_all_found"]) == (4, 3, 2)
    assert (t["present_images"], t["present_images_in_top_k"], t["present_images_found"]) == (7, 6, 5)
    last = {p["pair"]: p["last_rank"] for p in t["pairs"]}
    assert last == {"blue square": 2, "green star": 6, "red circle": 2, "yellow heart": 1}


def test_world_part_through_the_engine(tmp_path: Path, tiny_world: Path, tiny_clip_dir: Path) -> None:
    from evdsearch.benchmarks.search_world import WorldBenchConfig, measure

    cfg = WorldBenchConfig(world=tiny_world, clip=tiny_clip_dir, workdir=tmp_path, twins=("IVF4,Flat", "HNSW8"),
                           copies=3, queries=3, held_out=1)
    w = measure(cfg, progress=lambda _: None)
    f = w["filters"]
    assert f["answers"] == 5 * 3 * 3 and f["wrong_hits"] == 0 and f["wrong_counts"] == 0
    assert set(w["pages"]) == {f"{x} {m}" for x in ("Flat", "IVF4,Flat", "HNSW8") for m in ("fused", "original")}
    assert all(p["mismatches"] == 0 and p["duplicates"] == 0 for p in w["pages"].values())
    t = w["threshold"]
    assert t["absent_answer_empty"] and t["hits_below_threshold"] == 0
    assert t["present_pairs_all_found"] <= t["present_pairs_in_top_k"] <= t["present_pairs"] > 0
    assert all(p["images"] <= cfg.k and p["last_rank"] >= p["images"] for p in t["pairs"])
    assert w["terms"]["weight 0 equals plain"] is True
    assert w["dedup"]["copies"] == 6 and w["dedup"]["true_pairs"] == 9 and w["dedup"]["mmr_0_equals_plain"]
    assert w["hostile"] == {"codes": ["INVALID_ARGUMENT"] * 4, "serving": True}
    summary, sweep = world_tables(w)
    assert len(sweep.rows) == len(w["dedup"]["sweep"])
    assert any(row[0].startswith("present pairs (<= k images)") for row in summary.rows)
