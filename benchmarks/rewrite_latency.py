"""Rewrite latency on CPU, torch (transformers generate) vs onnxruntime (the exported rewriter)."""

from __future__ import annotations

import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from evdsearch.atomic import write_json_atomic, write_text_atomic


@dataclass
class LatencyConfig:
    """What to time; queries are the split's captions that name a KB entity."""

    rewriter: str  # rewriter folder with an ONNX export (`evdsearch train export-onnx`)
    kb: str  # knowledge base folder (evidence for the queries)
    data: str  # shapes world folder (queries come from its captions)
    out: str | None = None  # write latency.{json,md} here
    split: str = "test"  # split the queries come from
    n: int = 100  # queries timed one at a time
    batch_size: int = 16  # also time batches of this size (0: skip)
    threads: int = 2  # CPU threads for both runtimes
    clip: str | None = None  # also time the CLIP text tower (checkpoint folder), torch vs onnxruntime


def _queries(cfg: LatencyConfig) -> list[tuple[str, Any]]:
    from evdsearch.datasets import open_dataset
    from evdsearch.engine.rewriters.none import NoRewriter
    from evdsearch.engine.rewriting import QueryRewriter
    from evdsearch.indexer.kb import KnowledgeBase

    kb = KnowledgeBase.open(cfg.kb, readonly=True)
    evidence = QueryRewriter(kb, NoRewriter(), cache_size=0)
    out = []
    for image in open_dataset(cfg.data).split(cfg.split):
        for sentence in image.sentences:
            result = evidence.rewrite(sentence.raw)
            if result.descriptions:
                out.append((result.query, result.descriptions))
        if len(out) >= cfg.n:
            break
    return out[: cfg.n]


def _time(fn: Callable[[list[Any]], Any], items: Sequence[Any], batch: int) -> dict[str, float]:
    fn(list(items[: max(1, batch)]))  # warm-up (graph / kernel set-up)
    per_call = []
    for start in range(0, len(items), batch):
        t0 = time.perf_counter()
        fn(list(items[start : start + batch]))
        per_call.append((time.perf_counter() - t0) * 1000)
    ordered = sorted(per_call)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return {"batch": batch, "calls": len(per_call), "mean_ms": round(statistics.fmean(per_call), 2),
            "p50_ms": round(ordered[len(ordered) // 2], 2), "p95_ms": round(p95, 2),
            "queries_per_s": round(len(items) / (sum(per_call) / 1000), 1)}


def run_latency(cfg: LatencyConfig) -> dict[str, Any]:
    """Time both runtimes on the same queries; also report how often their rewrites agree."""
    import torch

    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter
    from evdsearch.engine.rewriters.seq2seq import Seq2SeqRewriter

    torch.set_num_threads(cfg.threads)
    items = _queries(cfg)
    backends = {"torch": Seq2SeqRewriter(cfg.rewriter, device="cpu"),
                "onnxruntime": OnnxSeq2SeqRewriter(cfg.rewriter, device="cpu", threads=cfg.threads)}
    report: dict[str, Any] = {"benchmark": "rewrite-latency", "config": asdict(cfg), "queries": len(items),
                              "rewriter": {}}
    outputs = {}
    for name, backend in backends.items():
        rows = [_time(backend.rewrite_batch, items, 1)]
        if cfg.batch_size > 1:
            rows.append(_time(backend.rewrite_batch, items, cfg.batch_size))
        report["rewriter"][name] = rows
        outputs[name] = backend.rewrite_batch(items)
    report["same_rewrites"] = round(sum(a == b for a, b in zip(outputs["torch"], outputs["onnxruntime"],
                                                              strict=True)) / max(1, len(items)), 4)
    if cfg.clip:
        report["clip_text"] = _clip_latency(cfg, [q for q, _ in items])
    if cfg.out:
        write_json_atomic(Path(cfg.out) / "latency.json", report)
        write_text_atomic(Path(cfg.out) / "latency.md", markdown(report))
    return report


def _clip_latency(cfg: LatencyConfig, texts: list[str]) -> dict[str, Any]:
    import numpy as np

    from evdsearch.benchmarks.onnx_export import export_text_tower
    from evdsearch.clip_models import load_clip
    from evdsearch.engine.onnx_clip_text import OnnxClipText

    clip = load_clip(cfg.clip, device="cpu")
    with tempfile.TemporaryDirectory() as tmp:
        onnx = OnnxClipText(export_text_tower(cfg.clip, tmp, check=False), device="cpu", threads=cfg.threads)
        out = {"torch": [_time(clip.encode_texts, texts, 1)], "onnxruntime": [_time(onnx.encode_texts, texts, 1)]}
        out["max_abs_diff"] = float(np.abs(clip.encode_texts(texts) - onnx.encode_texts(texts)).max())
    return out


def markdown(report: dict[str, Any]) -> str:
    """Latency table (ms per call) for the rewriter and, when timed, the CLIP text tower."""
    lines = [f"### Rewrite latency on CPU ({report['config']['threads']} threads, {report['queries']} queries)", "",
             "| component | runtime | batch | mean ms | p50 ms | p95 ms | queries/s |", "|---|---|---|---|---|---|---|"]
    parts = [("rewriter", report["rewriter"])] + ([("CLIP text", report["clip_text"])] if "clip_text" in report else [])
    for component, runtimes in parts:
        for runtime in ("torch", "onnxruntime"):
            for row in runtimes[runtime]:
                lines.append(f"| {component} | {runtime} | {row['batch']} | {row['mean_ms']} | {row['p50_ms']} | "
                             f"{row['p95_ms']} | {row['queries_per_s']} |")
    lines += ["", f"torch and onnxruntime rewrites identical for {report['same_rewrites']:.1%} of queries.", ""]
    return "\n".join(lines)
