"""`evdsearch bench rewriters|rewrite-latency`: unseen-entity recall per rewriter, and rewrite latency on CPU
(torch, the ONNX export uncached, cached and cached with drafts)."""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.search_api import DEFAULT_ALPHA


def register(tree: Any) -> None:
    p = tree.add("bench", "rewriters", "unseen-entity recall: original vs template vs SFT vs PRO rewriters")
    p.add_argument("--data", required=True, help="shapes world folder")
    p.add_argument("--kb", required=True, help="knowledge base folder")
    p.add_argument("--clip", required=True, help="CLIP checkpoint folder")
    p.add_argument("--sft", help="SFT rewriter folder")
    p.add_argument("--pro", help="PRO rewriter folder")
    p.add_argument("--finetuned-clip", help="CLIP fine-tuned with the frozen rewriter")
    p.add_argument("--control-clip", help="CLIP fine-tuned the same way with --rewrite-prob 0 (control)")
    p.add_argument("--out", required=True, help="report folder (rewriter_results.md/.json/.png)")
    p.add_argument("--split", default="test")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.set_defaults(run=run_rewriters)

    p = tree.add("bench", "rewrite-latency",
                 "rewrite latency on CPU: torch, ONNX uncached, cached, cached + drafts (per rewrite and token)")
    p.add_argument("--rewriter", required=True, help="rewriter folder with an ONNX export")
    p.add_argument("--kb", required=True)
    p.add_argument("--data", required=True, help="shapes world folder (queries: its captions naming entities)")
    p.add_argument("--clip", help="also time this CLIP checkpoint's text tower")
    p.add_argument("--n", type=int, default=100,
                   help="queries (default 100; 0: every caption of --split naming a KB entity, for the agreement "
                        "check; the first 100 are timed)")
    p.add_argument("--split", default="test", help="split the queries come from (default test)")
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--threads", type=int, default=2,
                   help="CPU threads for every runtime (default 2; 0: what `serve` uses, the cached decoder 1)")
    p.add_argument("--no-torch", dest="torch", action="store_false", help="skip transformers' generate (slow)")
    p.add_argument("--out", help="write latency.json / latency.md here")
    p.set_defaults(run=run_latency)


def run_rewriters(args: argparse.Namespace) -> int:
    from evdsearch.evaluation.rewriters import EvalConfig, evaluate, markdown

    cfg = EvalConfig(data=args.data, kb=args.kb, clip=args.clip, out=args.out, sft=args.sft, pro=args.pro,
                     finetuned_clip=args.finetuned_clip, control_clip=args.control_clip, split=args.split,
                     alpha=args.alpha, device=args.device)
    print(markdown(evaluate(cfg)))
    print(f"report: {args.out}/rewriter_results.md (.json, .png)")
    return 0


def run_latency(args: argparse.Namespace) -> int:
    from evdsearch.benchmarks.rewrite_latency import LatencyConfig, markdown, run_latency

    cfg = LatencyConfig(rewriter=args.rewriter, kb=args.kb, data=args.data, out=args.out, n=args.n,
                        split=args.split, batch_size=args.batch_size, threads=args.threads, clip=args.clip,
                        torch=args.torch)
    print(markdown(run_latency(cfg)))
    return 0
