"""`evdsearch bench retrieval`: Recall@K of a CLIP model on a Karpathy split (shapes world or real).

Given one rewriter it reports every mode of one model. Given several (`--rewriter` repeated,
`[LABEL=]SPEC`), a `--finetuned-model` or `--out`, it writes one comparison table instead, a row per
(model, mode, rewriter), through evdsearch.evaluation.rewriters (Markdown + JSON + bar plot in --out).
"""

from __future__ import annotations

import argparse
from typing import Any

from evdsearch.device import DEVICE_CHOICES
from evdsearch.engine_options import add_ensemble_option
from evdsearch.search_api import DEFAULT_ALPHA

DATASET_NAMES = ("flickr30k", "mscoco", "karpathy-json")


def register(tree: Any) -> None:
    parser = tree.add("bench", "retrieval", "text<->image Recall@1/5/10 of a CLIP model on a Karpathy split")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", help="folder with one dataset_*.json (e.g. a shapes world)")
    source.add_argument("--dataset", nargs=2, metavar=("NAME", "JSON"),
                        help=f"real data: NAME in {'|'.join(DATASET_NAMES)} and its Karpathy JSON "
                             "(e.g. dataset_flickr30k.json); give the image folder with --images")
    parser.add_argument("--images", help="image folder (Flickr30K flickr30k-images/, COCO root holding val2014/)")
    parser.add_argument("--split", default="test", help="Karpathy split (default: test)")
    parser.add_argument("--model", required=True, help="checkpoint folder or open_clip architecture name")
    parser.add_argument("--pretrained", help="pretrained tag (needs the model hub) or a local weights file")
    parser.add_argument("--modes", default="original",
                        help="comma-separated query modes: original, rewritten, fused (default: original)")
    parser.add_argument("--kb", help="knowledge base folder, for the rewritten / fused modes")
    parser.add_argument("--rewriter", action="append", metavar="[LABEL=]SPEC",
                        help="none | template | rewriter folder (default: template); repeat to compare "
                             "rewriters in one table, e.g. --rewriter template --rewriter PRO=runs/rw/pro")
    parser.add_argument("--finetuned-model", action="append", metavar="[LABEL=]CKPT",
                        help="a CLIP fine-tuned with the last --rewriter: adds its original and "
                             "rewriting-mode rows to the table (repeatable, e.g. a control)")
    parser.add_argument("--out", help="write the comparison table here (rewriter_results.md/.json/.png); "
                                      "--json / --markdown are the one-model report's")
    parser.add_argument("--alpha", type=float, default=DEFAULT_ALPHA, metavar="A",
                        help="rewritten-query weight in fused mode for entities without a calibrated weight "
                             f"(default {DEFAULT_ALPHA:g}); --fixed-alpha instead gives every query one weight")
    parser.add_argument("--fixed-alpha", type=float, metavar="A",
                        help="one weight for every query, ignoring the KB's calibrated weights (EvdCLIP)")
    add_ensemble_option(parser)
    parser.add_argument("--json", help="write the report as JSON here")
    parser.add_argument("--markdown", help="write a Markdown table here (default: beside --json)")
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--device", default="auto", choices=DEVICE_CHOICES)
    parser.add_argument("--cache-dir", help="image-embedding cache folder (default: DATA/.cache)")
    parser.set_defaults(run=run)


def labelled(spec: str) -> tuple[str, str]:
    """`LABEL=SPEC` -> (LABEL, SPEC); a bare SPEC is labelled by its folder name."""
    label, sep, value = spec.partition("=")
    if sep and label and value:
        return label, value
    return spec.rstrip("/").rsplit("/", 1)[-1], spec


def _rewriters(args: argparse.Namespace) -> list[tuple[str, str]]:
    return [labelled(spec) for spec in (args.rewriter or ["template"])]


def is_comparison(args: argparse.Namespace) -> bool:
    """Several rewriters, a fine-tuned model or a table folder: the one-table form."""
    return len(args.rewriter or []) > 1 or bool(args.finetuned_model) or bool(args.out)


def comparison_from_args(args: argparse.Namespace) -> Any:
    """Flags -> evdsearch.evaluation.rewriters.EvalConfig with explicit rows (the comparison form)."""
    from evdsearch.errors import InvalidInput
    from evdsearch.evaluation.rewriters import EvalConfig, Setting

    cfg = config_from_args(args)
    if not args.out:
        raise InvalidInput("comparing several rewriters or models writes a table: pass --out DIR")
    if cfg.dataset or cfg.images:
        raise InvalidInput("the comparison form runs on a shapes world folder (--data), not --dataset")
    rewriters = _rewriters(args)
    rewriting = [m for m in cfg.modes if m != "original"]
    models = [("CLIP", args.model)] + [labelled(m) for m in args.finetuned_model or []]
    rows = []
    for index, (name, model) in enumerate(models):
        if "original" in cfg.modes:
            rows.append(Setting(f"{name} original", model, "original", "none"))
        for label, spec in rewriters if index == 0 else rewriters[-1:]:
            prefix = "" if index == 0 else f"{name} + "
            rows += [Setting(f"{prefix}{mode} + {label}", model, mode, spec) for mode in rewriting]
    return EvalConfig(data=cfg.data, kb=cfg.kb or "", clip=args.model, out=args.out, split=cfg.split,
                      alpha=cfg.alpha, adaptive_alpha=cfg.adaptive_alpha, device=cfg.device, rows=rows)


def config_from_args(args: argparse.Namespace) -> Any:
    """Flags -> RetrievalConfig (the first --rewriter when several are given)."""
    from evdsearch.errors import InvalidInput
    from evdsearch.evaluation.retrieval import RetrievalConfig

    name, data = ("", args.data) if args.data else args.dataset
    if name and name not in DATASET_NAMES:
        raise InvalidInput(f"--dataset NAME must be one of {', '.join(DATASET_NAMES)}, not {name!r}")
    modes = tuple(m.strip() for m in args.modes.split(",") if m.strip())
    if not 0.0 <= args.alpha <= 1.0:
        raise InvalidInput("--alpha must be between 0 and 1")
    fixed = getattr(args, "fixed_alpha", None)
    if fixed is not None and not 0.0 <= fixed <= 1.0:
        raise InvalidInput("--fixed-alpha must be between 0 and 1")
    return RetrievalConfig(model=args.model, data=data, images=args.images, dataset=name,
                           pretrained=args.pretrained, split=args.split, modes=modes,
                           alpha=args.alpha if fixed is None else fixed, adaptive_alpha=fixed is None,
                           kb=args.kb, rewriter=_rewriters(args)[0][1], batch_size=args.batch_size,
                           device=args.device, cache_dir=args.cache_dir,
                           template_ensemble=getattr(args, "template_ensemble", True))


def run(args: argparse.Namespace) -> int:
    from pathlib import Path

    from rich.console import Console

    from evdsearch.atomic import write_json_atomic, write_text_atomic
    from evdsearch.benchmarks.report import markdown, plot, rich_table
    from evdsearch.evaluation.retrieval import run_retrieval

    if is_comparison(args):
        from evdsearch.evaluation.rewriters import evaluate
        from evdsearch.evaluation.rewriters import markdown as table

        print(table(evaluate(comparison_from_args(args))))
        print(f"report: {args.out}/rewriter_results.md (.json, .png)")
        return 0
    result = run_retrieval(config_from_args(args))
    console = Console()
    if not console.is_terminal:  # logs and pipes: keep rows on one line instead of 80 columns
        console = Console(width=160)
    console.print(rich_table(result))
    md_path = args.markdown or (str(Path(args.json).with_suffix(".md")) if args.json else None)
    if args.json:
        write_json_atomic(args.json, result)
        print(f"json: {args.json}")
    if md_path:
        write_text_atomic(md_path, markdown(result))
        print(f"markdown: {md_path}")
        print(f"plot: {plot(result, Path(md_path).with_suffix('.png'))}")
    return 0
