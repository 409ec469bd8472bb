"""Evaluation shared by training and benchmarks: recall, retrieval through the engine's rewriting, zero-shot."""
