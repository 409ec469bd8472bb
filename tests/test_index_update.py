"""`index add` / `index delete`: idempotent adds keyed by URI + content, stable ids, FAISS and Milvus Lite."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_index_build import write_images

from evdsearch import cli
from evdsearch.indexer.manifest import read_manifest
from evdsearch.indexer.store import IndexStore


def index_cmd(*args: str) -> int:
    return cli.main(["index", *args, "--no-progress", "--device", "cpu", "--workers", "1"])


def uris(store: IndexStore) -> list[str]:
    return [store.item(i)["uri"] for i in range(store.count)]


def top1(store: IndexStore, rows: list[int]) -> list[int]:
    return store.search(np.asarray(store.embeddings[rows]), 1)[1][:, 0].tolist()


@pytest.mark.parametrize("backend", ["faiss", "milvus"])
def test_add_delete_round_trip(tmp_path: Path, tiny_clip_dir: Path, backend: str,
                               capsys: pytest.CaptureFixture[str]) -> None:
    if backend == "milvus":
        pytest.importorskip("milvus_lite")
    extra = ["--backend", "milvus", "--milvus-uri", str(tmp_path / "m.db")] if backend == "milvus" else []
    write_images(tmp_path / "a", 10)
    out = str(tmp_path / "index")
    assert index_cmd(str(tmp_path / "a"), "--out", out, "--model", str(tiny_clip_dir), *extra) == 0
    first = uris(IndexStore.open(out))
    # New images: a second folder; adding it twice changes nothing the second time.
    write_images(tmp_path / "b", 4, seed=1)
    assert index_cmd("add", str(tmp_path / "b"), "--out", out) == 0
    assert "added 4 images" in capsys.readouterr().out
    assert index_cmd("add", str(tmp_path / "b"), "--out", out) == 0
    assert "added 0 images to" in (printed := capsys.readouterr().out) and "(4 already indexed" in printed
    store = IndexStore.open(out)
    assert store.count == 14 and uris(store)[:10] == first  # old ids unchanged
    assert top1(store, [0, 12]) == [0, 12]
    # Changed content under the same URI replaces the row: old id tombstoned, new id appended.
    changed = tmp_path / "b" / "001.png"
    Image.fromarray(np.full((20, 20, 3), 200, np.uint8)).save(changed)
    assert index_cmd("add", str(tmp_path / "b"), "--out", out) == 0
    assert "added 1 images" in capsys.readouterr().out
    store = IndexStore.open(out)
    assert store.count == 15 and store.item(11).get("deleted") and store.item(14)["uri"] == str(changed.resolve())
    # Delete by id and by URI; deleted rows never come back from search, the rest keep their ids.
    assert index_cmd("delete", "--out", out, "--ids", "0") == 0
    assert index_cmd("delete", "--out", out, "--uris", first[1]) == 0
    store = IndexStore.open(out)
    manifest = read_manifest(out)
    assert manifest.count == 15 and manifest.deleted == 3
    _, ids = store.search(np.asarray(store.embeddings[:]), 15)
    returned = set(ids[ids >= 0].tolist())
    assert returned == set(range(15)) - {0, 1, 11}
    assert top1(store, [2, 14]) == [2, 14]
    assert index_cmd("delete", "--out", out, "--ids", "0") == 0  # already deleted: a no-op
    assert "deleted 0 items" in capsys.readouterr().out


def test_update_errors(tmp_path: Path, tiny_clip_dir: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_images(tmp_path / "a", 3)
    out = str(tmp_path / "index")
    assert index_cmd(str(tmp_path / "a"), "--out", out, "--model", str(tiny_clip_dir)) == 0
    assert index_cmd("delete", "--out", out) == 2
    assert index_cmd("delete", "--out", out, "--ids", "7") == 2
    assert index_cmd("delete", "--out", out, "--uris", "/nowhere.png") == 2
    assert index_cmd("add", "--out", out) == 2
    assert index_cmd(str(tmp_path / "a"), "--out", str(tmp_path / "other")) == 2  # a build needs --model
    err = capsys.readouterr().err
    assert "needs --ids or --uris" in err and "no item 7" in err and "not in index" in err
    assert "required to build an index: --model" in err
    assert all(line.startswith("evdsearch: error: ") for line in err.strip().splitlines())
