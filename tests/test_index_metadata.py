"""Per-image metadata: built-in fields and a sidecar written beside the index, typed, updated by add / delete,
filters evaluated over it, older folders without metadata still open."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from test_engine_support import COLORS, write_images

from evdsearch.errors import IncompatibleArtifact, InvalidInput
from evdsearch.filter_expr import parse_filter
from evdsearch.indexer.build import IndexBuildConfig, build_index
from evdsearch.indexer.metadata import METADATA_DIR
from evdsearch.indexer.store import IndexStore
from evdsearch.indexer.update import add_images, delete_items
from evdsearch.versioned import current_version


def _sidecar(folder: Path, rows: list[dict]) -> Path:
    path = folder / "meta.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("meta")
    source = write_images(root / "data")
    os.utime(root / "data" / "images" / "000.png", (1_700_000_000, 1_700_000_000))
    sidecar = _sidecar(root, [{"path": f"images/{i:03d}.png", "color": c, "rank": i, "score": i / 4,
                               "even": i % 2 == 0, "taken": f"2024-01-{i + 1:02d}"}
                              for i, c in enumerate(COLORS) if i != 5] + [{"path": "images/missing.png", "rank": 1}])
    out = root / "index"
    report = build_index(IndexBuildConfig(source=source, out=out, model=str(tiny_clip_dir), device="cpu",
                                          workers=1, progress=False, metadata=sidecar))
    assert report.metadata_unmatched == 1
    assert "color:str" in report.metadata_fields and "taken:datetime" in report.metadata_fields
    return out, root


def _ids(store: IndexStore, text: str) -> list[int]:
    return np.flatnonzero(store.select(parse_filter(text)).rows).tolist()


def test_schema_and_rows(built: tuple[Path, Path]) -> None:
    store = IndexStore.open(built[0])
    schema = {f.name: f.type for f in store.metadata.schema.fields}
    assert schema == {"split": "str", "folder": "str", "mtime": "datetime", "color": "str", "rank": "int",
                      "score": "float", "even": "bool", "taken": "datetime"}
    row = store.metadata.row(0)
    assert row["split"] == "test" and row["folder"] == "images" and row["mtime"].isoformat() == "2023-11-14T22:13:20+00:00"
    assert row["color"] == "red" and row["rank"] == 0 and row["even"] is True
    assert row["taken"].isoformat() == "2024-01-01T00:00:00+00:00"
    assert "color" not in store.metadata.row(5)  # the sidecar had no row for it


@pytest.mark.parametrize("text, expected", [
    ('color == "red"', [0]),
    ("rank >= 9", [9, 10, 11]),
    ("rank in [1, 3, 99]", [1, 3]),
    ("not rank < 10", [5, 10, 11]),  # 5 has no rank: the comparison is false, its negation true
    ("rank != 1 and rank < 4", [0, 2, 3]),
    ("even == true and (rank < 3 or rank > 9)", [0, 2, 10]),
    ('taken >= "2024-01-11"', [10, 11]),
    ("score > 2.6", [11]),
    ('color < "c" and split == "test"', [2, 7, 10]),
    ("id in [0, 4] or id > 10", [0, 4, 11]),
    ('folder == "images" and mtime < "2024-01-01"', [0]),
])
def test_filters_select_rows(built: tuple[Path, Path], text: str, expected: list[int]) -> None:
    assert _ids(IndexStore.open(built[0]), text) == expected


@pytest.mark.parametrize("text, message", [
    ('colour == "red"', "unknown field 'colour'"),
    ('rank == "one"', "field 'rank' is int"),
    ("color == 3", "field 'color' is str"),
    ("even < true", "field 'even' is bool"),
    ('taken > "yesterday"', "field 'taken' is a datetime"),
    ("id == 1.5", "not an integer"),
])
def test_bad_filters_name_the_problem(built: tuple[Path, Path], text: str, message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        IndexStore.open(built[0]).select(parse_filter(text))


def test_add_and_delete_keep_metadata(built: tuple[Path, Path], tiny_clip_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "index"
    shutil.copytree(built[0], out, symlinks=True)
    extra = tmp_path / "more"
    extra.mkdir()
    from PIL import Image

    Image.new("RGB", (64, 64), "teal").save(extra / "new.png")
    sidecar = _sidecar(tmp_path, [{"path": "new.png", "color": "teal", "rating": 5}])
    report = add_images(out, extra, device="cpu", workers=1, progress=False, metadata=sidecar)
    assert report.added == 1
    store = IndexStore.open(out)
    assert _ids(store, 'color == "teal"') == [12] and _ids(store, "rating == 5") == [12]
    assert store.metadata.row(12)["folder"] == "" and "split" not in store.metadata.row(12)
    delete_items(out, ids=[0, 12])
    store = IndexStore.open(out)
    assert _ids(store, 'color in ["red", "teal"]') == []  # deleted rows are never selected
    assert store.metadata.row(1)["color"] == "green"
    bad = _sidecar(tmp_path, [{"path": "new.png", "rank": "high"}])
    with pytest.raises(InvalidInput, match="'rank' is int"):
        add_images(out, extra, device="cpu", workers=1, progress=False, metadata=bad)


def test_folders_without_metadata_still_open(built: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "old"
    shutil.copytree(built[0], out, symlinks=True)
    shutil.rmtree(current_version(out) / METADATA_DIR)
    store = IndexStore.open(out)
    assert store.metadata.schema.fields == [] and _ids(store, "id < 2") == [0, 1]
    with pytest.raises(InvalidInput, match="no metadata"):
        store.select(parse_filter('color == "red"'))
    with pytest.raises(IncompatibleArtifact, match="before metadata"):
        add_images(out, built[1] / "data" / "images", metadata=_sidecar(tmp_path, [{"path": "x.png", "a": 1}]))


def test_csv_sidecar_types(tmp_path: Path) -> None:
    from evdsearch.indexer.metadata_sources import read_sidecar, user_schema

    path = tmp_path / "m.csv"
    path.write_text("path,n,x,flag,day,name\na.png,1,1.5,true,2024-02-03,ann\nb.png,2,2,false,,bob\n")
    rows = read_sidecar(path)
    fields = {f.name: f.type for f in user_schema([{k: v for k, v in r.items() if k != "path" and v is not None}
                                                   for r in rows])}
    assert fields == {"n": "int", "x": "float", "flag": "bool", "day": "datetime", "name": "str"}
    path.write_text("path,id\na.png,1\n")
    with pytest.raises(InvalidInput, match="not allowed"):
        user_schema([{k: v for k, v in r.items() if k != "path"} for r in read_sidecar(path)])
