"""Larger than RAM: the FAISS index file is really memory-mapped at open, and items are parsed lazily."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from evdsearch.indexer import faiss_backend
from evdsearch.indexer.items import ItemStore

pytestmark = pytest.mark.skipif(not Path("/proc/self/maps").exists(), reason="needs Linux /proc/self/maps")


def mapped_files() -> set[str]:
    """Paths of the files this process has memory-mapped now."""
    with open("/proc/self/maps") as handle:
        return {line.split(maxsplit=5)[5].strip() for line in handle if len(line.split(maxsplit=5)) == 6}


@pytest.mark.parametrize("factory, with_ids", [("Flat", False), ("IVF8,Flat", False), ("IVF4,PQ4", False),
                                               ("HNSW16", False), ("Flat", True)])
def test_index_file_is_memory_mapped(tmp_path: Path, factory: str, with_ids: bool) -> None:
    import faiss

    vectors = np.random.default_rng(0).normal(size=(400, 16)).astype(np.float32)
    index = faiss_backend.build(vectors, factory, device="cpu")
    if with_ids:  # the IDMap2 wrapper `index add/delete` writes
        index = faiss.IndexIDMap2(faiss_backend.make_index(16, factory))
        index.add_with_ids(vectors, np.arange(400) * 2)
    path = tmp_path / "index.faiss"
    faiss_backend.write(index, path)
    assert str(path) not in mapped_files()
    opened = faiss_backend.read(path)
    assert str(path) in mapped_files(), f"{factory}: read into memory instead of mapped"
    assert opened.ntotal == 400
    del opened


def test_full_read_fallback_is_not_silent(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    vectors = np.random.default_rng(0).normal(size=(50, 8)).astype(np.float32)
    faiss_backend.write(faiss_backend.build(vectors, "Flat", device="cpu"), tmp_path / "i.faiss")
    real = faiss_backend._faiss()

    class NoMmapFaiss:  # a faiss build (or index type) that cannot map: every mapped read fails
        def __getattr__(self, name: str):
            return getattr(real, name)

        def read_index(self, path: str, flag: int = 0):
            if flag:
                raise RuntimeError("Error in read_index at impl/io.cpp:1: mmap not supported")
            return real.read_index(path, flag)

    monkeypatch.setattr(faiss_backend, "_faiss", NoMmapFaiss)
    with caplog.at_level("WARNING"):
        faiss_backend.read(tmp_path / "i.faiss")
    assert "could not be memory-mapped" in caplog.text


def test_items_are_parsed_only_when_asked(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    rows = [{"id": i, "uri": f"/img/{i}.png", "captions": [f"caption {i} ü"]} for i in range(1000)]
    path = tmp_path / "items.jsonl"
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows) + "\n", encoding="utf-8")
    parsed = []
    real = json.loads
    monkeypatch.setattr(sys.modules["evdsearch.indexer.items"].json, "loads",
                        lambda text: parsed.append(1) or real(text))
    items = ItemStore(path)
    assert len(items) == 1000 and parsed == []  # open parses nothing (the trailing blank line is no row)
    assert items[999] == rows[999] and items[0] == rows[0] and len(parsed) == 2
