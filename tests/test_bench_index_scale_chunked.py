"""`bench index-scale --chunk-size`: the chunked brute force equals the in-memory one; a tiny chunked run."""

from __future__ import annotations

import numpy as np

from evdsearch.benchmarks.index_scale import IndexScaleConfig
from evdsearch.benchmarks.index_scale_chunked import RunningTopK, bench_chunked, chunks, queries_for
from evdsearch.benchmarks.synthetic_vectors import exact_topk


def test_running_top_k_equals_exact_and_chunks_are_reproducible() -> None:
    cfg = IndexScaleConfig(n=1000, dim=32, queries=20, clusters=10, latent_dim=8)
    base = np.concatenate([v for _, v in chunks(cfg, 300)])
    again = np.concatenate([v for _, v in chunks(cfg, 300)])
    np.testing.assert_array_equal(base, again)
    queries = queries_for(cfg)
    running = RunningTopK(queries, 5)
    for start, vectors in chunks(cfg, 300):
        running.update(start, vectors)
    assert (running.ids == exact_topk(base, queries, 5)).all()


def test_tiny_chunked_flat_run_has_full_recall() -> None:
    cfg = IndexScaleConfig(n=900, dim=16, queries=30, clusters=5, latent_dim=4, min_batch_seconds=0.01,
                           single_seconds=0.01)
    result = bench_chunked("Flat", cfg, chunk=200, train_n=100, truth_queries=10, log=lambda _: None)
    assert result.points[0].recall == 1.0 and result.truth_queries == 10
    assert result.bytes_per_image > 16 * 4 - 1 and result.peak_rss_mb > 0
