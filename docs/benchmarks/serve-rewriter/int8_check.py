"""int8 (onnxruntime dynamic quantisation) of a rewriter's cached graphs: speed and agreement with fp32.

    [PC=1] .venv/bin/python docs/benchmarks/serve-rewriter/int8_check.py REWRITER_DIR WORK_DIR KB_DIR WORLD_DIR

PC=1: per-channel weights. The numbers in docs/rewriter.md: an SFT rewriter (dev_rewriter.sh's runs/rwdev/sft,
exported with `evdsearch train export-onnx --rewriter`), runs/rwdev/kb_cal, runs/s7311/world.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic

from evdsearch.benchmarks.rewrite_latency import LatencyConfig, _queries
from evdsearch.engine.rewriters.onnx_seq2seq import OnnxSeq2SeqRewriter


def median_ms(rewriter: OnnxSeq2SeqRewriter, items: list, batch: int) -> float:
    times = []
    for _ in range(2):
        for start in range(0, 96, batch):
            t0 = time.perf_counter()
            rewriter.rewrite_batch(items[start : start + batch])
            times.append(time.perf_counter() - t0)
    return round(1000 * float(np.median(times)), 2)


def main() -> None:
    src, work, kb_dir, data = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], sys.argv[4]
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(src, work)
    for name in ("encoder_kv.onnx", "decoder_past.onnx"):
        quantize_dynamic(str(src / "onnx" / name), str(work / "onnx" / name), weight_type=QuantType.QInt8,
                         per_channel=os.environ.get("PC") == "1")
    items = _queries(LatencyConfig(rewriter=str(src), kb=kb_dir, data=data, n=0))
    fp32 = OnnxSeq2SeqRewriter(src, device="cpu", threads=2)
    int8 = OnnxSeq2SeqRewriter(work, device="cpu", threads=2)
    same = sum(a == b for a, b in zip(fp32.rewrite_batch(items), int8.rewrite_batch(items), strict=True)) / len(items)
    print(json.dumps({"captions": len(items), "same_rewrites": round(same, 4),
                      "fp32_ms": {b: median_ms(fp32, items, b) for b in (1, 16)},
                      "int8_ms": {b: median_ms(int8, items, b) for b in (1, 16)}}))


if __name__ == "__main__":
    main()
