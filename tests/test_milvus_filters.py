"""Filters on the Milvus backend (Milvus Lite FLAT, native filter expressions) select exactly what FAISS selects:
same ids for every filter, fields a row lacks compare false also under `not`, quotes and backslashes escaped;
`index add` / `delete` keep the collection's metadata in step."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from test_engine_support import write_images

from evdsearch.engine.api import EngineConfig
from evdsearch.engine.search import SearchEngine
from evdsearch.filter_expr import parse_filter
from evdsearch.indexer.build import IndexBuildConfig, build_index
from evdsearch.indexer.update import add_images, delete_items
from evdsearch.search_api import SearchRequest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

NAMES = ['plain', 'with "quotes"', "back\\slash", "it's", "é ü 中", "or", "a and b", "x == 1", "", "Plain"]
FILTERS = ['name == "with \\"quotes\\""', 'name == "back\\\\slash"', "name == 'it\\'s'", 'name == "é ü 中"',
           'name in ["or", "a and b", "x == 1"]', 'name == ""', 'name < "p"', 'name >= "Plain"',
           "n > 3", "n != 2", "not n != 2", "not n == 2", "not (n < 5 or flag == true)", "flag == false",
           "score <= 1.5", "score in [0.5, 2.5]", 'day >= "2024-01-05"', 'day < "2024-01-03T12:00:00"',
           "id in [0, 11, 5]", "id != 3 and n < 8", "(n in []) or id == 2", "not (n in [])", "n in [1, 2.0]"]


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> dict[str, SearchEngine]:
    root = tmp_path_factory.mktemp("milvusfilters")
    source = write_images(root / "data")
    rows = []
    for i in range(12):
        row = {"path": f"images/{i:03d}.png", "n": i, "flag": i % 3 == 0, "score": i / 2,
               "day": f"2024-01-{i + 1:02d}"}
        if i < len(NAMES):
            row["name"] = NAMES[i]
        if i in (4, 9):  # rows lacking most fields
            row = {"path": row["path"], "name": row.get("name", "")}
        rows.append(row)
    sidecar = root / "meta.jsonl"
    sidecar.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    common = {"source": source, "model": str(tiny_clip_dir), "device": "cpu", "workers": 1, "progress": False,
              "metadata": sidecar}
    build_index(IndexBuildConfig(out=root / "faiss", **common))
    build_index(IndexBuildConfig(out=root / "milvus", backend="milvus", milvus_uri=str(root / "lite.db"),
                                 collection="filters", **common))
    opened = {name: SearchEngine.open(EngineConfig(index_dir=str(root / name), rewriter="none", device="cpu"))
              for name in ("faiss", "milvus")}
    opened["root"] = root
    yield opened
    for name in ("faiss", "milvus"):
        opened[name].close()


def _ids(engine: SearchEngine, expression: str, k: int = 12) -> list[int]:
    return [h.id for h in engine.search(SearchRequest(text="a red picture", k=k, filter=expression)).hits]


@pytest.mark.parametrize("expression", FILTERS)
def test_milvus_selects_what_faiss_selects(engines: dict, expression: str) -> None:
    faiss_ids, milvus_ids = _ids(engines["faiss"], expression), _ids(engines["milvus"], expression)
    assert faiss_ids == milvus_ids
    selected = engines["faiss"].store.select(parse_filter(expression)).count
    assert len(faiss_ids) == selected
    assert _ids(engines["milvus"], expression, k=3) == faiss_ids[:3]


def test_missing_fields_compare_false(engines: dict) -> None:
    assert 4 not in _ids(engines["faiss"], "n != 2") and 4 in _ids(engines["faiss"], "not n == 2")
    assert 4 in _ids(engines["milvus"], "not n == 2")


def test_add_and_delete_keep_milvus_metadata(engines: dict, tmp_path: Path) -> None:
    from PIL import Image

    root = engines["root"]
    extra = tmp_path / "more"
    extra.mkdir()
    Image.new("RGB", (64, 64), "navy").save(extra / "navy.png")
    sidecar = tmp_path / "m.jsonl"
    sidecar.write_text(json.dumps({"path": "navy.png", "n": 100, "name": "navy"}) + "\n", encoding="utf-8")
    add_images(root / "milvus", extra, device="cpu", workers=1, progress=False, metadata=sidecar)
    delete_items(root / "milvus", ids=[1])
    with SearchEngine.open(EngineConfig(index_dir=str(root / "milvus"), rewriter="none", device="cpu")) as engine:
        assert _ids(engine, "n >= 100") == [12] and _ids(engine, 'name == "navy"') == [12]
        assert set(_ids(engine, "n < 3")) == {0, 2}  # 1 was deleted
