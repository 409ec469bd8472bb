"""16 threads search one engine at once (template and seq2seq rewriters, torch and onnxruntime text
encoders): every answer equals the single-thread one."""

from __future__ import annotations

import random
import shutil
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from test_engine_seq2seq import t5_dir  # noqa: F401 - the tiny seq2seq rewriter folder fixture
from test_engine_support import build_index, build_kb, open_engine, png_bytes

from evdsearch.search_api import SearchRequest

THREADS = 16
QUERIES = ["a tomato on a table", "a school bus in the rain", "two tomatoes next to a school bus",
           "a red picture", "a blue square on green"]


@pytest.fixture(scope="module")
def parts(tmp_path_factory: pytest.TempPathFactory, tiny_clip_dir: Path) -> tuple[Path, Path]:
    """An index and KB whose CLIP folder also holds the ONNX text export."""
    from evdsearch.training.export.clip_text import export_clip_text

    root = tmp_path_factory.mktemp("threads")
    clip_dir = root / "clip"
    shutil.copytree(tiny_clip_dir, clip_dir)
    export_clip_text(str(clip_dir), clip_dir / "onnx")
    return build_index(root / "parts", clip_dir), build_kb(root / "kb")


def _requests(dim: int) -> list[SearchRequest]:
    reqs = [SearchRequest(text=q, k=5, mode=mode, explain=True) for q in QUERIES for mode in ("fused", "rewritten")]
    reqs.append(SearchRequest(image_bytes=png_bytes("blue"), k=5))
    reqs.append(SearchRequest(embedding=np.linspace(-1, 1, dim).tolist(), k=5))
    return reqs


def _answer(engine: object, req: SearchRequest) -> tuple:
    resp = engine.search(req)
    rewritten = resp.explanation.rewritten_query if resp.explanation else ""
    return [h.id for h in resp.hits], np.array([h.score for h in resp.hits]), rewritten


@pytest.mark.parametrize(("rewriter", "text_encoder"), [("template", "torch"), ("template", "onnx"),
                                                        ("seq2seq", "torch"), ("seq2seq", "onnx")])
def test_sixteen_threads_get_the_single_thread_answers(parts: tuple[Path, Path], t5_dir: Path,  # noqa: F811
                                                       rewriter: str, text_encoder: str) -> None:
    index, kb = parts
    name = str(t5_dir) if rewriter == "seq2seq" else rewriter
    with open_engine(index, kb, rewriter=name, text_encoder=text_encoder, rewrite_cache_size=0) as engine:
        assert hasattr(engine.clip, "text_encoder") == (text_encoder == "onnx")
        reqs = _requests(engine.dim)
        expected = [_answer(engine, req) for req in reqs]
        jobs = [(i, reqs[i]) for i in range(len(reqs))] * 2
        random.Random(0).shuffle(jobs)
        with ThreadPoolExecutor(THREADS) as pool:
            got = list(pool.map(lambda job: (job[0], _answer(engine, job[1])), jobs))
    assert len(got) == len(jobs)
    for i, (ids, scores, rewritten) in got:
        want_ids, want_scores, want_rewritten = expected[i]
        assert ids == want_ids and rewritten == want_rewritten, reqs[i]
        assert np.allclose(scores, want_scores, atol=1e-5)


class _NotThreadSafeIndex:
    """Stands in for a GPU index: fails if two searches ever overlap."""

    def __init__(self, index: object) -> None:
        import threading

        self._index, self._busy, self.overlaps, self.calls = index, threading.Lock(), 0, 0
        self.ntotal, self.d = index.ntotal, index.d

    def search(self, vectors: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        import time

        if not self._busy.acquire(blocking=False):
            self.overlaps += 1
            self._busy.acquire()
        try:
            self.calls += 1
            time.sleep(0.002)  # widen the window a race would need
            return self._index.search(vectors, k)
        finally:
            self._busy.release()


def test_gpu_indexes_are_searched_one_at_a_time(parts: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: a CPU index wrapped to detect overlap, with `on_gpu` saying yes, as IndexStore.open sees it."""
    from evdsearch.indexer import faiss_backend
    from evdsearch.indexer.store import IndexStore

    index_dir, _ = parts
    assert not faiss_backend.on_gpu(IndexStore.open(index_dir, device="cpu").index)
    real_for_search = faiss_backend.for_search
    monkeypatch.setattr(faiss_backend, "for_search", lambda index, device="auto":
                        _NotThreadSafeIndex(real_for_search(index, "cpu")))
    monkeypatch.setattr(faiss_backend, "on_gpu", lambda index: isinstance(index, _NotThreadSafeIndex))
    store = IndexStore.open(index_dir, device="cpu")
    vectors = np.random.default_rng(0).standard_normal((4, store.dim)).astype(np.float32)
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda _: store.search(vectors, 5)[1].tolist(), range(200)))
    assert store.index.calls == 200 and store.index.overlaps == 0
    assert all(a == answers[0] for a in answers)
