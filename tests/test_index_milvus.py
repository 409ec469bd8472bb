"""The Milvus backend (Milvus Lite): same answers as FAISS Flat on a shapes world, serve by folder, errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from evdsearch.engine.api import EngineConfig
from evdsearch.engine.search import SearchEngine
from evdsearch.errors import IncompatibleArtifact, InvalidInput, UserError
from evdsearch.indexer.build import IndexBuildConfig, build_index
from evdsearch.indexer.manifest import read_manifest
from evdsearch.karpathy import load_karpathy
from evdsearch.search_api import SearchRequest

pytest.importorskip("pymilvus")
pytest.importorskip("milvus_lite")

K = 10


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, tiny_world: Path, tiny_clip_dir: Path) -> dict[str, Path]:
    """The tiny world's test split indexed twice: FAISS Flat and Milvus Lite FLAT."""
    root = tmp_path_factory.mktemp("milvus")
    source = tiny_world / "dataset_shapes.json"
    common = {"source": source, "model": str(tiny_clip_dir), "split": "test", "device": "cpu", "workers": 1,
              "progress": False, "shard_size": 16}
    build_index(IndexBuildConfig(out=root / "faiss", **common))
    build_index(IndexBuildConfig(out=root / "milvus", backend="milvus", milvus_uri=str(root / "lite.db"),
                                 collection="shapes", **common))
    return {"faiss": root / "faiss", "milvus": root / "milvus", "db": root / "lite.db", "source": source}


def captions(source: Path) -> list[tuple[str, str]]:
    """(caption, image uri) of every test caption."""
    dataset = load_karpathy(source)
    return [(s.raw, str(dataset.image_path(img).resolve())) for img in dataset.split("test") for s in img.sentences]


def recall(hits: list[list[str]], truth: list[str], k: int) -> float:
    return float(np.mean([t in h[:k] for h, t in zip(hits, truth, strict=True)]))


def test_manifest_names_backend_and_collection(built: dict[str, Path]) -> None:
    manifest = read_manifest(built["milvus"])
    assert manifest.backend == {"type": "milvus", "uri": str(built["db"].resolve()), "collection": "shapes",
                                "index_type": "FLAT"}
    assert not (built["milvus"] / "index.faiss").exists() and (built["milvus"] / "items.jsonl").is_file()
    assert read_manifest(built["faiss"]).backend_type == "faiss"


def test_milvus_answers_like_faiss(built: dict[str, Path]) -> None:
    pairs = captions(built["source"])
    results = {}
    for name in ("faiss", "milvus"):
        with SearchEngine.open(EngineConfig(index_dir=str(built[name]), rewriter="none", device="cpu")) as engine:
            responses = engine.search_batch([SearchRequest(text=c, k=K) for c, _ in pairs])
            results[name] = [[(h.id, h.uri, h.original_score) for h in r.hits] for r in responses]
    assert [[h[0] for h in r] for r in results["faiss"]] == [[h[0] for h in r] for r in results["milvus"]]
    np.testing.assert_allclose([[h[2] for h in r] for r in results["faiss"]],
                               [[h[2] for h in r] for r in results["milvus"]], atol=1e-6)  # exact per-hit scores
    truth = [uri for _, uri in pairs]
    for k in (1, 5, 10):
        got = {name: recall([[h[1] for h in r] for r in results[name]], truth, k) for name in results}
        assert round(got["faiss"], 4) == round(got["milvus"], 4)


def test_serve_side_uri_override_and_backend_check(built: dict[str, Path], tmp_path: Path) -> None:
    from evdsearch.indexer.store import IndexStore

    store = IndexStore.open(built["milvus"], backend="milvus", backend_uri=str(built["db"]))
    assert store.search(np.asarray(store.embeddings[:2]), 3)[1][:, 0].tolist() == [0, 1]
    with pytest.raises(IncompatibleArtifact, match="is a faiss index, not milvus"):
        IndexStore.open(built["faiss"], backend="milvus")
    with pytest.raises(InvalidInput, match="only applies to a Milvus-backed index"):
        IndexStore.open(built["faiss"], backend_uri=str(built["db"]))
    with pytest.raises(UserError, match="does not exist"):
        IndexStore.open(built["milvus"], backend_uri=str(tmp_path / "empty.db"))


def test_milvus_build_needs_a_uri(tiny_world: Path, tiny_clip_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(InvalidInput, match="needs --milvus-uri"):
        build_index(IndexBuildConfig(source=tiny_world / "dataset_shapes.json", out=tmp_path / "x",
                                     model=str(tiny_clip_dir), backend="milvus", progress=False))
