"""Rewrite latency on CPU: torch (transformers generate) and the ONNX export uncached, with the key/value cache,
and with the cache plus prompt-lookup drafts; per rewrite and per generated token, and whether they agree."""

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
    n: int = 100  # queries timed one at a time (0: every caption of the split that names a KB entity)
    batch_size: int = 16  # also time batches of this size (0: skip)
    threads: int = 2  # CPU threads for every runtime (0: what `serve` uses: the cached decoder 1, the rest the cores)
    clip: str | None = None  # also time the CLIP text tower (checkpoint folder), torch vs onnxruntime
    torch: bool = True  # also time transformers' generate (slow: 15x the ONNX runner)


ONNX_VARIANTS = {  # label -> OnnxSeq2SeqRewriter options
    "onnxruntime": {"cached": False},  # the decoder over the whole prefix each step (format 1)
    "onnxruntime-cached": {"cached": True, "draft_tokens": 0},  # key/value cache, one token per call
    "onnxruntime-cached-draft": {"cached": True},  # + prompt-lookup drafts (one-row calls, the last row of a batch)
}
REFERENCE = "onnxruntime"  # what the other runtimes' rewrites are compared with


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
        if cfg.n and len(out) >= cfg.n:
            break
    return out[: cfg.n] if cfg.n else out


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


def _generated_tokens(runner: Any, items: Sequence[tuple[str, Any]]) -> int:
    """Tokens the rewriter generates for `items` (each rewrite's tokens up to and including EOS)."""
    import numpy as np

    from evdsearch.engine.rewriters.prompt import format_rewriter_input

    total = 0
    for start in range(0, len(items), 64):
        ids = runner.generate_ids([format_rewriter_input(q, e) for q, e in items[start : start + 64]])[:, 1:]
        total += int((np.cumsum(ids == runner.ids.eos, axis=1) - (ids == runner.ids.eos) == 0).sum())
    return total


def run_latency(cfg: LatencyConfig) -> dict[str, Any]:
    """Time every runtime on the same queries; per-token cost from the tokens generated; agreement with the
    uncached ONNX runner (today's rewrites) on every query."""
    import torch

    from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter
    from evdsearch.engine.rewriters.seq2seq import Seq2SeqRewriter

    if cfg.threads > 0:
        torch.set_num_threads(cfg.threads)
    items = _queries(cfg)
    backends: dict[str, Any] = {name: OnnxSeq2SeqRewriter(cfg.rewriter, device="cpu", threads=cfg.threads, **options)
                                for name, options in ONNX_VARIANTS.items()}
    if cfg.torch:
        backends = {"torch": Seq2SeqRewriter(cfg.rewriter, device="cpu"), **backends}
    tokens = _generated_tokens(backends["onnxruntime-cached"], items)
    report: dict[str, Any] = {"benchmark": "rewrite-latency", "config": asdict(cfg), "queries": len(items),
                              "generated_tokens": tokens, "rewriter": {}}
    outputs = {name: backend.rewrite_batch(items) for name, backend in backends.items()}  # also a warm-up
    timed = items[: cfg.n or 100]  # the full list is for the agreement check; timing needs fewer
    timed_tokens = _generated_tokens(backends["onnxruntime-cached"], timed)
    for name, backend in backends.items():
        rows = [_time(backend.rewrite_batch, timed, 1)]
        if cfg.batch_size > 1:
            rows.append(_time(backend.rewrite_batch, timed, cfg.batch_size))
        for row in rows:
            row["ms_per_token"] = round(row["mean_ms"] * row["calls"] / max(1, timed_tokens), 3)
        report["rewriter"][name] = rows
    report["same_rewrites"] = {name: round(sum(a == b for a, b in zip(texts, outputs[REFERENCE], strict=True))
                                           / max(1, len(items)), 4) for name, texts in outputs.items()}
    report["differing"] = {name: [(q, texts[i], outputs[REFERENCE][i]) for i, (q, _) in enumerate(items)
                                  if texts[i] != outputs[REFERENCE][i]][:10] for name, texts in outputs.items()}
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
    timed = min(report["queries"], report["config"]["n"] or 100)
    lines = [f"### Rewrite latency on CPU ({report['config']['threads']} threads, {timed} queries timed)", "",
             "| component | runtime | batch | mean ms per call | p50 ms | p95 ms | ms per token | queries/s |",
             "|---|---|---|---|---|---|---|---|"]
    parts = [("rewriter", report["rewriter"])] + ([("CLIP text", report["clip_text"])] if "clip_text" in report else [])
    for component, runtimes in parts:
        for runtime, rows in runtimes.items():
            for row in rows if isinstance(rows, list) else []:
                lines.append(f"| {component} | {runtime} | {row['batch']} | {row['mean_ms']} | {row['p50_ms']} | "
                             f"{row['p95_ms']} | {row.get('ms_per_token', '')} | {row['queries_per_s']} |")
    same = report["same_rewrites"]
    same = same if isinstance(same, dict) else {"torch": same}
    lines += ["", f"Rewrites identical to the uncached ONNX runner's on {report['queries']} captions naming an entity "
              f"({report.get('generated_tokens', '?')} tokens): "
              + ", ".join(f"{name} {share:.1%}" for name, share in same.items()) + ".", ""]
    return "\n".join(lines)
