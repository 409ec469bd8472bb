"""Serving speed pieces: no q' work in original mode, the embedding cache, cross-request batching, thread budget."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import grpc
import numpy as np
import pytest
from test_engine_support import open_engine

from evdsearch.engine.api import DeadlineExceeded
from evdsearch.engine.batcher import BatchConfig, MicroBatcher
from evdsearch.errors import InvalidInput
from evdsearch.search_api import SearchRequest

QUERY = "two tomatoes next to a school bus"


class CountingClip:
    """Wraps a clip and records every list of texts sent to the text encoder."""

    def __init__(self, clip: object) -> None:
        self._clip = clip
        self.calls: list[list[str]] = []

    def encode_texts(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        return self._clip.encode_texts(texts)

    def __getattr__(self, name: str) -> object:
        return getattr(self._clip, name)


def counting(engine, capacity: int = 0) -> CountingClip:  # noqa: ANN001
    from evdsearch.engine.embedding_cache import CachedTextEncoder

    clip = CountingClip(engine.clip)
    engine.encoder = CachedTextEncoder(clip, capacity)
    return clip


def test_original_mode_encodes_only_the_query(parts: tuple[Path, Path]) -> None:
    with open_engine(*parts, embedding_cache_size=0) as engine:
        clip = counting(engine)
        fused = engine.search(SearchRequest(text=QUERY, k=3))
        assert [len(call) for call in clip.calls] == [2]  # q and q' in one encoder call
        original = engine.search(SearchRequest(text=QUERY, k=3, mode="original"))
        assert clip.calls[-1] == [QUERY]  # no rewrite, no q'
        assert all(h.rewritten_score == h.original_score for h in original.hits)
        assert [h.score for h in original.hits] == pytest.approx([h.original_score for h in original.hits], abs=1e-5)
        assert len(fused.hits) == 3
        explained = engine.search(SearchRequest(text=QUERY, k=3, mode="original", explain=True))
        assert len(clip.calls[-1]) == 2 and explained.explanation.rewritten_query != QUERY  # explain needs q'
        assert [h.id for h in explained.hits] == [h.id for h in original.hits]


def test_the_embedding_cache_answers_repeated_texts(parts: tuple[Path, Path]) -> None:
    with open_engine(*parts, embedding_cache_size=8) as engine:
        clip = counting(engine, capacity=8)
        first = engine.search(SearchRequest(text=QUERY, k=3))
        again = engine.search(SearchRequest(text=QUERY, k=3))
        assert len(clip.calls) == 1  # the second search encoded nothing
        assert [(h.id, h.score) for h in again.hits] == [(h.id, h.score) for h in first.hits]
        info = engine.info()
        assert (info.text_cache_hits, info.text_cache_misses, info.text_cache_size, info.text_cache_capacity) \
            == (2, 2, 2, 8)
        for i in range(10):  # LRU: the capacity holds
            engine.encoder.encode_texts([f"query {i}"])
        assert engine.info().text_cache_size == 8


def test_the_cache_key_is_the_encoders_fingerprint(parts: tuple[Path, Path]) -> None:
    from evdsearch.engine.embedding_cache import CachedTextEncoder

    with open_engine(*parts) as engine:
        clip = CountingClip(engine.clip)
        cache = CachedTextEncoder(clip, 4)
        cache.encode_texts(["a zebra"])
        clip.text_precision = "int8"  # another encoder of the same weights gives other vectors
        cache.encode_texts(["a zebra"])
        assert len(clip.calls) == 2 and cache.stats().hits == 0


class GatedEngine:
    """Delegates to a real engine; search_batch waits on a gate so a test can pile up requests."""

    def __init__(self, engine) -> None:  # noqa: ANN001
        self.engine = engine
        self.gate = threading.Event()
        self.batches: list[int] = []

    def search_batch(self, reqs, deadline=None):  # noqa: ANN001, ANN201
        self.gate.wait(10)
        self.batches.append(len(reqs))
        return self.engine.search_batch(reqs, deadline=deadline)

    def search(self, req, deadline=None):  # noqa: ANN001, ANN201
        return self.engine.search(req, deadline=deadline)


def run_concurrently(batcher: MicroBatcher, reqs: list[SearchRequest], deadline: float | None = None) -> list:
    results: list = [None] * len(reqs)

    def one(i: int) -> None:
        try:
            results[i] = batcher.search(reqs[i], deadline=deadline)
        except Exception as err:  # noqa: BLE001
            results[i] = err

    threads = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
    for thread in threads:
        thread.start()
        time.sleep(0.01)
    return threads, results


def test_concurrent_searches_share_one_engine_call(parts: tuple[Path, Path]) -> None:
    with open_engine(*parts) as engine:
        gated = GatedEngine(engine)
        batcher = MicroBatcher(gated, BatchConfig(window_ms=50, max_batch=8))
        reqs = [SearchRequest(text=f"{QUERY} {i}", k=2 + i % 3, mode=("fused", "original")[i % 2]) for i in range(6)]
        threads, results = run_concurrently(batcher, reqs)
        gated.gate.set()
        for thread in threads:
            thread.join(10)
        batcher.close()
        assert sum(gated.batches) == 6 and len(gated.batches) < 6  # gathered, not one call each
        for req, got in zip(reqs, results, strict=True):
            expected = engine.search(req)
            assert [h.id for h in got.hits] == [h.id for h in expected.hits] and len(got.hits) == req.k


def test_a_bad_request_fails_alone(parts: tuple[Path, Path]) -> None:
    with open_engine(*parts) as engine:
        gated = GatedEngine(engine)
        batcher = MicroBatcher(gated, BatchConfig(window_ms=50, max_batch=8))
        reqs = [SearchRequest(text=QUERY, k=2), SearchRequest(text="", k=2), SearchRequest(text=QUERY, k=0)]
        threads, results = run_concurrently(batcher, reqs)
        gated.gate.set()
        for thread in threads:
            thread.join(10)
        batcher.close()
        assert len(results[0].hits) == 2
        assert isinstance(results[1], InvalidInput) and isinstance(results[2], InvalidInput)


def test_each_request_keeps_its_deadline(parts: tuple[Path, Path]) -> None:
    with open_engine(*parts) as engine:
        gated = GatedEngine(engine)
        batcher = MicroBatcher(gated, BatchConfig(window_ms=1, max_batch=8))
        threads, blocked = run_concurrently(batcher, [SearchRequest(text=QUERY, k=2)])  # holds the batch thread
        threads2, late = run_concurrently(batcher, [SearchRequest(text=QUERY, k=2)], deadline=time.monotonic() + 0.1)
        time.sleep(0.3)
        gated.gate.set()
        for thread in threads + threads2:
            thread.join(10)
        batcher.close()
        assert len(blocked[0].hits) == 2
        assert isinstance(late[0], DeadlineExceeded)


def test_batching_flags_are_checked() -> None:
    with pytest.raises(InvalidInput, match="--max-batch"):
        MicroBatcher(object(), BatchConfig(max_batch=0))
    with pytest.raises(InvalidInput, match="--batch-window-ms"):
        MicroBatcher(object(), BatchConfig(window_ms=-1))


def test_grpc_search_through_the_batcher(parts: tuple[Path, Path]) -> None:
    from evdsearch.engine.grpc_server.server import build_server
    from evdsearch.proto.evdsearch.v1 import search_pb2 as pb
    from evdsearch.proto.evdsearch.v1 import search_pb2_grpc

    with open_engine(*parts) as engine:
        batcher = MicroBatcher(engine, BatchConfig(window_ms=5, max_batch=4))
        running = build_server(engine, port=0, batcher=batcher)
        running.start()
        try:
            with grpc.insecure_channel(running.address) as channel:
                stub = search_pb2_grpc.SearchServiceStub(channel)
                answer = stub.Search(pb.SearchRequest(text=QUERY, k=3), timeout=10)
                assert len(answer.hits) == 3
                with pytest.raises(grpc.RpcError) as err:
                    stub.Search(pb.SearchRequest(text="", k=3), timeout=10)
                assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
                info = stub.Info(pb.InfoRequest(), timeout=10)
                assert info.text_cache_misses >= 2 and info.text_cache_capacity == 4096
        finally:
            running.stop(0)
            batcher.close()
        assert batcher.stats.requests >= 1


def test_thread_budget_sizes_torch_faiss_and_onnxruntime() -> None:
    import faiss
    import torch

    from evdsearch.engine import threads

    before = torch.get_num_threads()
    try:
        assert threads.apply_thread_budget(1) == 1
        assert torch.get_num_threads() == 1 and faiss.omp_get_max_threads() == 1
        assert threads.session_threads() == 1
        with pytest.raises(InvalidInput, match="--threads"):
            threads.apply_thread_budget(-2)
    finally:
        threads.apply_thread_budget(0)
        torch.set_num_threads(before)
        faiss.omp_set_num_threads(before)


def test_serve_refuses_bad_speed_flags_before_loading(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from evdsearch.cli import main

    argv = ["serve", "--index", str(tmp_path / "missing")]
    for flags, message in ((["--max-batch", "0"], "--max-batch must be in 1..256"),
                           (["--batch-window-ms", "-1"], "--batch-window-ms must be 0 or more"),
                           (["--threads", "-1"], "--threads must be 0 or positive"),
                           (["--embedding-cache", "-5"], "--embedding-cache must be 0 or positive")):
        assert main([*argv, *flags]) == 2
        assert message in capsys.readouterr().err


def test_cached_queries_skip_the_batch_queue(parts: tuple[Path, Path]) -> None:
    with open_engine(*parts) as engine:
        gated = GatedEngine(engine)
        gated.cached_text_query = engine.cached_text_query
        batcher = MicroBatcher(gated, BatchConfig(window_ms=1, max_batch=8))
        assert not engine.cached_text_query(SearchRequest(text=QUERY, k=2))
        engine.search(SearchRequest(text=QUERY, k=2))  # fills the rewrite and embedding caches
        assert engine.cached_text_query(SearchRequest(text=QUERY, k=2))
        assert engine.cached_text_query(SearchRequest(text=f" {QUERY} ", k=2, mode="original"))
        threads, blocked = run_concurrently(batcher, [SearchRequest(text="a zebra", k=2)])  # holds the batch thread
        started = time.monotonic()
        answer = batcher.search(SearchRequest(text=QUERY, k=2))  # answered although the gate is shut
        assert len(answer.hits) == 2 and time.monotonic() - started < 5 and batcher.stats.cached == 1
        gated.gate.set()
        for thread in threads:
            thread.join(10)
        batcher.close()
        assert len(blocked[0].hits) == 2


def test_closing_on_shutdown_fails_queued_requests_instead_of_running_them(parts: tuple[Path, Path]) -> None:
    with open_engine(*parts) as engine:
        gated = GatedEngine(engine)
        batcher = MicroBatcher(gated, BatchConfig(window_ms=1, max_batch=1))
        threads, results = run_concurrently(batcher, [SearchRequest(text=f"{QUERY} {i}", k=2) for i in range(3)])
        closer = threading.Thread(target=batcher.close, kwargs={"answer_queued": False})
        closer.start()
        time.sleep(0.2)
        gated.gate.set()
        closer.join(10)
        for thread in threads:
            thread.join(10)
        assert len(results[0].hits) == 2  # the batch already running finishes
        assert all(isinstance(r, DeadlineExceeded) for r in results[1:]) and gated.batches == [1]


def test_requests_of_two_engine_generations_never_share_a_batch(parts: tuple[Path, Path]) -> None:
    """After a hot reload, calls holding the old engine and calls holding the new one batch separately."""
    with open_engine(*parts) as engine:
        old, new = GatedEngine(engine), GatedEngine(engine)
        new.gate.set()
        old.gate.set()
        batcher = MicroBatcher(old, BatchConfig(window_ms=100, max_batch=8))
        reqs = [SearchRequest(text=f"{QUERY} {i}", k=3) for i in range(6)]
        results: list = [None] * len(reqs)

        def one(i: int) -> None:
            results[i] = batcher.search(reqs[i], engine=(old, new)[i % 2])

        threads = [threading.Thread(target=one, args=(i,)) for i in range(len(reqs))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(10)
        batcher.close()
        assert sum(old.batches) == 3 and sum(new.batches) == 3  # each request ran on the engine its call held
        for req, got in zip(reqs, results, strict=True):
            assert [h.id for h in got.hits] == [h.id for h in engine.search(req).hits]
