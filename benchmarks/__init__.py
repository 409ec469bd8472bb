"""Benchmarks: recall@K, serving latency and index scale."""
