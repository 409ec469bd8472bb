"""Image sources and the FAISS backend: folder walk order, source errors, IVF advice, memory-mapped reads."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.indexer import faiss_backend
from evdsearch.indexer.sources import collect_images, walk_images


def test_walk_is_recursive_sorted_and_skips_hidden(tmp_path: Path) -> None:
    for rel in ["b/2.JPG", "b/1.webp", "a.png", "c/d/e.jpeg", ".hidden/x.png", "b/._1.jpg", "notes.txt", "z.gif"]:
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"")
    assert [p.relative_to(tmp_path).as_posix() for p in walk_images(tmp_path)] == [
        "a.png", "b/1.webp", "b/2.JPG", "c/d/e.jpeg"]


def test_source_errors(tmp_path: Path) -> None:
    with pytest.raises(NotFound):
        collect_images(tmp_path / "nowhere")
    with pytest.raises(InvalidInput, match="no images"):
        collect_images(tmp_path)
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(InvalidInput, match="only apply to a Karpathy"):
        collect_images(tmp_path, split="test")
    with pytest.raises(InvalidInput, match="neither an image folder"):
        collect_images(tmp_path / "a.png")


@pytest.mark.parametrize("count, expected", [(65, 1), (1000, 16), (100_000, 1024)])
def test_suggested_ivf_lists(count: int, expected: int) -> None:
    assert faiss_backend.suggest_nlist(count) == expected


@pytest.mark.parametrize("factory", ["Flat", "IVF8,Flat", "HNSW16", "IVF4,SQ8"])
def test_written_index_reads_back_memory_mapped(tmp_path: Path, factory: str) -> None:
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(400, 16)).astype(np.float32)
    vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
    faiss_backend.write(faiss_backend.build(vectors, factory, device="cpu"), tmp_path / "i.faiss")
    index = faiss_backend.read(tmp_path / "i.faiss")
    faiss_backend.set_search_params(index, nprobe=64, ef_search=128)
    scores, ids = index.search(vectors[:3], 1)
    assert ids[:, 0].tolist() == [0, 1, 2]
    np.testing.assert_allclose(scores[:, 0], 1.0, atol=0.02)  # SQ8 is lossy
