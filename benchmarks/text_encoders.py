"""Recall and speed of the CLIP text encoders: 77-token torch, true-length torch / onnxruntime, int8 onnxruntime.

Same split, same image embeddings, same knowledge base; only the text encoder changes. True-length
encoding must give the 77-token Recall@K to 4 decimals; int8 is offered only within 0.5 R@1 points.

    python -m evdsearch.benchmarks.text_encoders --data WORLD --model CKPT --kb KB --out docs/benchmarks/text-encoders
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = ("torch-77", "torch-true-length", "onnx-true-length", "onnx-int8-true-length")
REFERENCE = "torch-77"
SPEED_QUERIES = ("a tomato next to a school bus", "a photo of a zebra", "two small blue circles on a grey ground",
                 "a red square left of a striped triangle on a light gray background")
INT8_MAX_R1_LOSS = 0.005  # the bar: at most 0.5 R@1 points lost


class _Encoder:
    """encode_texts(texts, batch_size=...) over any encoder, for evaluation.retrieval's QueryContext."""

    def __init__(self, clip: Any, encode: Any) -> None:
        self._clip = clip
        self._encode = encode

    def encode_texts(self, texts: list[str], batch_size: int = 256) -> np.ndarray:
        return self._encode(texts)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._clip, name)


def variant_encoder(name: str, clip: Any, export: Path) -> Any:
    from evdsearch.engine.onnx_clip_text import OnnxClipText

    if name == "torch-77":
        full = replace(clip, trim=False)
        return _Encoder(full, full.encode_texts)
    if name == "torch-true-length":
        return _Encoder(clip, clip.encode_texts)
    precision = "int8" if "int8" in name else "fp32"
    onnx = OnnxClipText(export, device="cpu", tokenizer=clip.tokenizer, precision=precision)
    return _Encoder(clip, onnx.encode_texts)


def ms_per_query(encoders: dict[str, Any], repeats: int) -> dict[str, float]:
    """Median milliseconds of one single-query encode (the serving shape) per encoder, over the speed queries;
    encoders take turns query by query, so a slow minute on a shared machine hits each alike."""
    times: dict[str, list[float]] = {name: [] for name in encoders}
    for encoder in encoders.values():  # warm-up: first calls allocate
        encoder.encode_texts([SPEED_QUERIES[0]])
    for _ in range(repeats):
        for text in SPEED_QUERIES:
            for name, encoder in encoders.items():
                start = time.perf_counter()
                encoder.encode_texts([text])
                times[name].append((time.perf_counter() - start) * 1000.0)
    return {name: float(np.median(values)) for name, values in times.items()}


def run(args: argparse.Namespace) -> dict[str, Any]:
    import evdsearch.evaluation.retrieval as retrieval
    from evdsearch.benchmarks.onnx_export import export_text_tower
    from evdsearch.clip_models import load_clip
    clip = load_clip(args.model, device="cpu")
    export = Path(args.work) / "onnx"
    export_text_tower(args.model, export)
    speed_clip, speed_export = None, export
    if args.speed_model:  # speed on the serving model (e.g. ViT-B-32); recall on the trained one
        speed_clip = load_clip(args.speed_model, args.speed_pretrained, device="cpu")
        speed_export = Path(args.speed_onnx or Path(args.work) / "speed-onnx")
        if not args.speed_onnx:
            export_text_tower(args.speed_model, speed_export, args.speed_pretrained)
    rows = []
    for name in VARIANTS:
        encoder = variant_encoder(name, clip, export)
        retrieval.load_clip = lambda *a, _e=encoder, **k: _e  # noqa: ARG005 - only the text encoder changes
        cfg = retrieval.RetrievalConfig(model=args.model, data=args.data, modes=("original", "fused"), kb=args.kb,
                                        device="cpu", cache_dir=str(Path(args.work) / "image-cache"))
        result = retrieval.run_retrieval(cfg)
        row = {"variant": name, "n_captions": result["n_captions"],
               "recall": {mode: result["modes"][mode]["t2i"] for mode in result["modes"]}}
        rows.append(row)
        print(json.dumps(row), flush=True)
    speed = ms_per_query({name: variant_encoder(name, speed_clip or clip, speed_export if speed_clip else export)
                          for name in VARIANTS}, args.repeats)
    for row in rows:
        row["ms_per_query"] = speed[row["variant"]]
    reference = rows[0]["recall"]
    for row in rows:
        row["max_abs_recall_diff"] = max(abs(row["recall"][m][k] - reference[m][k]) for m in reference
                                         for k in reference[m])
        row["r1_loss_points"] = max(reference[m]["R@1"] - row["recall"][m]["R@1"] for m in reference) * 100
        row["same_to_4_decimals"] = all(round(row["recall"][m][k], 4) == round(reference[m][k], 4)
                                        for m in reference for k in reference[m])
    return {"benchmark": "text-encoders", "data": args.data, "model": args.model, "kb": args.kb,
            "speed_model": args.speed_model or args.model, "machine": args.machine, "rows": rows,
            "int8_within_bar": rows[-1]["r1_loss_points"] <= INT8_MAX_R1_LOSS * 100}


def markdown(result: dict[str, Any]) -> str:
    modes = list(result["rows"][0]["recall"])
    ks = list(result["rows"][0]["recall"][modes[0]])
    header = ["text encoder", *[f"{m} {k}" for m in modes for k in ks], "max ΔR vs 77-token", "same to 4 dp",
              "R@1 loss (points)", "ms / query"]
    lines = [f"### Text encoders: recall on {Path(result['data']).name} ({result['rows'][0]['n_captions']} "
             f"captions, model {Path(result['model']).name}), speed of one query on "
             f"{Path(str(result['speed_model'])).name} ({result['machine']})", "",
             "| " + " | ".join(header) + " |", "|---|" + "---:|" * (len(header) - 1)]
    for row in result["rows"]:
        cells = [f"{row['recall'][m][k]:.4f}" for m in modes for k in ks]
        lines.append("| " + " | ".join([row["variant"], *cells, f"{row['max_abs_recall_diff']:.1e}",
                                        "yes" if row["same_to_4_decimals"] else "no", f"{row['r1_loss_points']:.2f}",
                                        f"{row['ms_per_query']:.1f}"]) + " |")
    lines += ["", f"int8 within the 0.5 R@1-point bar: {'yes' if result['int8_within_bar'] else 'no'}.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    from evdsearch.atomic import write_json_atomic, write_text_atomic

    p = argparse.ArgumentParser(prog="python -m evdsearch.benchmarks.text_encoders", description=__doc__.split("\n")[0])
    p.add_argument("--data", required=True, help="shapes world (folder with dataset_*.json)")
    p.add_argument("--model", required=True, help="CLIP checkpoint folder the recall is measured with")
    p.add_argument("--kb", required=True, help="knowledge base for the fused mode")
    p.add_argument("--speed-model", help="CLIP whose single-query encode time is measured (default --model)")
    p.add_argument("--speed-pretrained", help="weights file for --speed-model")
    p.add_argument("--speed-onnx", help="an existing text export of --speed-model (default: export one)")
    p.add_argument("--repeats", type=int, default=5, help="timed passes over the speed queries per variant")
    p.add_argument("--work", default="runs/bench/text-encoders-work", help="exports and image cache")
    p.add_argument("--machine", default="2-core CPU dev box", help="label for the table")
    p.add_argument("--out", default="runs/bench/text-encoders", help="output folder")
    args = p.parse_args(argv)
    result = run(args)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(out / "text_encoders.json", result)
    write_text_atomic(out / "text_encoders.md", markdown(result))
    print(markdown(result))
    print(f"json: {out / 'text_encoders.json'}\nmarkdown: {out / 'text_encoders.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
