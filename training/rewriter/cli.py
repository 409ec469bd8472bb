"""Rewriter verbs: train deqr|rewriter|rewriter-pro|export-onnx|clip-rewrite (their benchmarks: benchmarks/).

The pipeline, in order (each verb documents its flags with --help):
  evdsearch train deqr --data WORLD --kb KB --clip CLIP --out runs/rw/deqr
  evdsearch train rewriter --deqr runs/rw/deqr --out runs/rw/sft            (SFT; --base scratch|t5-small|DIR)
  evdsearch train rewriter-pro --deqr runs/rw/deqr --base runs/rw/sft --out runs/rw/pro
  evdsearch train export-onnx --rewriter runs/rw/pro [--clip CLIP --clip-out DIR]
  evdsearch train clip-rewrite --data WORLD --model CLIP --rewriter runs/rw/pro --kb KB --out runs/rw/clip-ft
  evdsearch bench rewriters --data WORLD --kb KB --clip CLIP --sft ... --pro ... --finetuned-clip ... --out DIR
    (or: evdsearch bench retrieval ... --modes original,fused --rewriter template --rewriter PRO=DIR
         --finetuned-model CKPT --out DIR, the same table in the issue's command form)
  evdsearch bench rewrite-latency --rewriter runs/rw/pro --kb KB --data WORLD --out DIR [--n 0 --no-torch]
"""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.search_api import DEFAULT_ALPHA


def register(tree: Any) -> None:
    _deqr(tree.add("train", "deqr", "DEQR data: candidate rewrites of training captions ranked by CLIP"))
    _sft(tree.add("train", "rewriter", "train the T5 query rewriter on DEQR best candidates (SFT)"))
    _pro(tree.add("train", "rewriter-pro", "align an SFT rewriter with PRO on DEQR candidate rankings"))
    _export(tree.add("train", "export-onnx", "export a rewriter (and optionally a CLIP text tower) to ONNX"))
    _clip(tree.add("train", "clip-rewrite", "fine-tune CLIP with captions rewritten by a frozen rewriter"))


def _deqr(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="shapes world folder (or a Karpathy JSON)")
    p.add_argument("--kb", required=True, help="knowledge base folder (`evdsearch kb import`)")
    p.add_argument("--clip", required=True, help="CLIP checkpoint folder that scores the candidates")
    p.add_argument("--out", required=True, help="output folder (deqr.jsonl + stats.json)")
    p.add_argument("--split", default="train")
    p.add_argument("--max-images", type=int, default=3000, help="images with entity captions to use (default 3000)")
    p.add_argument("--max-candidates", type=int, default=12, help="candidates per caption incl. the empty rewrite")
    p.add_argument("--batch-images", type=int, default=128, help="in-batch images for the rank (default 128)")
    p.add_argument("--alpha", type=float, default=DEFAULT_ALPHA,
                   help=f"fusion weight for scoring (default {DEFAULT_ALPHA:g}; 1.0: rewrite alone)")
    p.add_argument("--no-mask-entities", dest="mask_entities", action="store_false",
                   help="score candidates with entity names left in (same as --regime unmasked)")
    p.add_argument("--regime", default="masked", choices=("masked", "unmasked", "both"),
                   help="masked: every name masked (rewriting always wins); unmasked: names as written; both: "
                        "names as written plus a share of made-up-name stand-ins for entities CLIP does not know, "
                        "and names masked where the KB's calibrated weight says CLIP does not know them")
    p.add_argument("--stand-in-share", type=float, default=0.5,
                   help="--regime both: share of captions whose entity names become made-up words (default 0.5)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--force", action="store_true", help="replace an existing output folder")
    p.set_defaults(run=run_deqr)


def _stage_flags(p: argparse.ArgumentParser, steps: int, batch: int, lr: float) -> None:
    p.add_argument("--deqr", required=True, help="DEQR folder (`evdsearch train deqr`)")
    p.add_argument("--out", required=True, help="rewriter folder to write")
    p.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")
    p.add_argument("--batch-size", type=int, default=batch, help=f"captions per step (default {batch})")
    p.add_argument("--lr", type=float, default=lr, help=f"peak learning rate (default {lr})")
    p.add_argument("--warmup", type=int, default=min(100, steps // 10), help="linear warmup steps")
    p.add_argument("--max-minutes", type=float, default=10.0, help="stop the loop after this long (default 10)")
    p.add_argument("--limit", type=int, help="read at most N DEQR records")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: torch's default)")
    p.add_argument("--force", action="store_true", help="replace an existing output folder")


def _sft(p: argparse.ArgumentParser) -> None:
    _stage_flags(p, 2000, 32, 1e-3)
    p.add_argument("--base", default="scratch",
                   help="scratch (small T5 + tokenizer trained here), a T5 name (t5-small, google/flan-t5-base; "
                        "needs the model hub) or a local transformers folder")
    p.add_argument("--d-model", type=int, default=128, help="scratch T5: hidden size (default 128)")
    p.add_argument("--layers", type=int, default=3, help="scratch T5: encoder and decoder layers (default 3)")
    p.add_argument("--vocab-size", type=int, default=4000, help="scratch T5: BPE vocabulary (default 4000)")
    p.set_defaults(run=run_sft)


def _pro(p: argparse.ArgumentParser) -> None:
    _stage_flags(p, 600, 16, 1e-4)
    p.add_argument("--base", required=True, help="the SFT rewriter folder to start from")
    p.add_argument("--list-size", type=int, default=4, help="candidates per PRO list (default 4)")
    p.add_argument("--beta", type=float, default=1.0, help="weight of the SFT NLL on the best candidate")
    p.set_defaults(run=run_pro)


def _export(p: argparse.ArgumentParser) -> None:
    p.add_argument("--rewriter", help="rewriter folder; the export goes to its onnx/ sub-folder")
    p.add_argument("--clip", help="also export this CLIP checkpoint's text tower")
    p.add_argument("--clip-out", help="folder for clip_text.onnx (default: CLIP/onnx, where `serve` finds it)")
    p.add_argument("--clip-pretrained", help="weights file when --clip is an open_clip architecture name")
    p.add_argument("--no-check", dest="check", action="store_false", help="skip the torch-vs-ONNX agreement check")
    p.set_defaults(run=run_export)


def _clip(p: argparse.ArgumentParser) -> None:
    p.add_argument("--data", required=True, help="shapes world folder")
    p.add_argument("--model", required=True, help="CLIP checkpoint folder to fine-tune")
    p.add_argument("--out", required=True, help="checkpoint folder to write")
    p.add_argument("--rewriter", required=True, help="frozen rewriter: folder (or template)")
    p.add_argument("--kb", required=True, help="knowledge base folder")
    p.add_argument("--rewrite-prob", type=float, default=0.6, help="probability a caption is rewritten (0.6)")
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    p.add_argument("--threads", type=int, default=2, help="torch CPU threads (0: torch's default)")
    p.add_argument("--force", action="store_true")
    p.set_defaults(run=run_clip)


def run_deqr(args: argparse.Namespace) -> int:
    import json

    from evdsearch.training.deqr.build import build_deqr
    from evdsearch.training.deqr.config import DeqrConfig
    from evdsearch.training.deqr.io import read_stats

    cfg = DeqrConfig(data=args.data, kb=args.kb, clip=args.clip, out=args.out, split=args.split,
                     max_images=args.max_images, max_candidates=args.max_candidates, batch_images=args.batch_images,
                     alpha=args.alpha, mask_entities=args.mask_entities, regime=args.regime,
                     stand_in_share=args.stand_in_share, seed=args.seed, device=args.device,
                     force=args.force)
    out = build_deqr(cfg)
    stats = {k: v for k, v in read_stats(out).items() if k not in ("config", "clip")}
    print(json.dumps(stats, indent=2))
    print(f"deqr: {out}")
    return 0


def _stage_kwargs(args: argparse.Namespace) -> dict[str, Any]:
    return {k: getattr(args, k) for k in ("deqr", "out", "base", "steps", "batch_size", "lr", "warmup", "max_minutes",
                                          "limit", "seed", "device", "threads", "force")}


def run_sft(args: argparse.Namespace) -> int:
    from evdsearch.training.rewriter.config import SftConfig
    from evdsearch.training.rewriter.model import ScratchT5Config
    from evdsearch.training.rewriter.sft import train_sft

    scratch = ScratchT5Config(vocab_size=args.vocab_size, d_model=args.d_model, d_ff=4 * args.d_model,
                              d_kv=max(16, args.d_model // 4), num_layers=args.layers, num_decoder_layers=args.layers)
    print(f"rewriter: {train_sft(SftConfig(**_stage_kwargs(args), scratch=scratch))}")
    return 0


def run_pro(args: argparse.Namespace) -> int:
    from evdsearch.training.rewriter.config import ProConfig
    from evdsearch.training.rewriter.pro import train_pro

    cfg = ProConfig(**_stage_kwargs(args), list_size=args.list_size, beta=args.beta)
    print(f"rewriter: {train_pro(cfg)}")
    return 0


def run_export(args: argparse.Namespace) -> int:
    from pathlib import Path

    from evdsearch.errors import InvalidInput, UserError

    if not args.rewriter and not args.clip:
        raise InvalidInput("give --rewriter DIR and/or --clip CKPT to export")
    if args.rewriter:
        from evdsearch.training.deqr.io import read_records
        from evdsearch.training.export.rewriter_onnx import check_agreement, export_rewriter

        print(f"rewriter onnx: {export_rewriter(args.rewriter)}")
        if args.check:
            agreement = check_agreement(args.rewriter, _check_prompts(args.rewriter, read_records))
            print(f"agreement on {agreement.prompts} prompts: same tokens {agreement.same_tokens}, "
                  f"max |logit diff| {agreement.max_abs_logit_diff:.2e}")
            if not agreement.same_tokens:
                raise UserError("ONNX and torch generations differ; the export is not usable")
    if args.clip:
        from evdsearch.training.export.clip_text import export_clip_text, text_agreement

        if not args.clip_out and not Path(args.clip).is_dir():
            raise UserError(f"--clip {args.clip} is not a checkpoint folder; say where the export goes with --clip-out")
        folder = export_clip_text(args.clip, args.clip_out or Path(args.clip) / "onnx", pretrained=args.clip_pretrained)
        print(f"clip text onnx: {folder}")
        if args.check:
            diff = text_agreement(args.clip, folder, args.clip_pretrained)
            print(f"clip text agreement: max |torch - onnx| = {diff:.2e}")
            if diff > 1e-3:
                raise UserError(f"ONNX and torch text embeddings differ by {diff:.2e}; the export is not usable")
    return 0


def _check_prompts(folder: str, read_records: Any) -> list[str]:
    """Prompts for the agreement check: from the rewriter's own DEQR data when recorded, else fixed ones."""
    import json
    from pathlib import Path

    from evdsearch.artifacts import REWRITER_META as META_FILE

    meta_path = Path(folder) / META_FILE
    meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {}
    deqr = (meta.get("config") or {}).get("deqr")  # a shipped rewriter's DEQR folder stayed where it was trained
    if deqr and Path(deqr).is_dir():
        return [r["input"] for r in read_records(deqr, limit=8)]
    return ["rewrite: a tomato on a table | tomato: a red round fruit",
            "rewrite: two zorblaxes near a cube | zorblax: a small blue striped triangle"]


def run_clip(args: argparse.Namespace) -> int:
    from evdsearch.training.clip.config import ClipTrainConfig
    from evdsearch.training.rewriter.caption_hook import finetune_clip_with_rewriter

    cfg = ClipTrainConfig(data=args.data, out=args.out, model=args.model, steps=args.steps,
                          batch_size=args.batch_size, lr=args.lr, warmup=args.warmup, seed=args.seed,
                          device=args.device, threads=args.threads, force=args.force)
    print(f"checkpoint: {finetune_clip_with_rewriter(cfg, args.rewriter, args.kb, args.rewrite_prob)}")
    return 0
