"""`evdsearch train ex2|ift|fudd`: description sets for zero-shot classification and the knowledge base."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from evdsearch.training.descriptions.ex2 import REWARDS
from evdsearch.training.llm.factory import SPEC_HELP


def publish(out: Path, stem: str, result: dict[str, Any], tables_fn: Callable[[dict], list],
            plot_fn: Callable[[dict], Any], extra: dict[str, Path] | None = None) -> None:
    """Write STEM.json / .md / .png into `out`, show the tables, print every path."""
    from evdsearch.plots import print_report, write_bundle

    tables = tables_fn(result)
    paths = write_bundle(out, stem, result, "".join(t.markdown() for t in tables), plot_fn(result))
    print_report(tables, {**(extra or {}), **paths})


def add_inputs(parser: argparse.ArgumentParser, out_help: str, data_help: str = "shapes world (or ImageFolder "
               "with train/val/test)", model_help: str = "CLIP checkpoint folder") -> None:
    """--data, --model, --out and --threads: what every verb here takes."""
    parser.add_argument("--data", required=True, help=data_help)
    parser.add_argument("--model", required=True, help=model_help)
    parser.add_argument("--out", required=True, type=Path, help=out_help)
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads")


def register(tree: Any) -> None:
    ift = tree.add("train", "ift", "IFT: influence-selected proponent texts per class, cross-modal transfer")
    add_inputs(ift, "output folder (ift.jsonl, report, checkpoints)")
    ift.add_argument("--candidates", nargs="+", help="candidate text JSONL files (kb-import format; default: the "
                     "world's encyclopedia.jsonl)")
    ift.add_argument("--weight", type=float, default=0.5, help="λ: influence share of the IFT score (0..1)")
    ift.add_argument("--top-k", type=int, default=10, help="proponent texts per class")
    ift.add_argument("--influence", choices=("gradient", "kernel"), default="gradient",
                     help="how a text inherits TracIn influence (see training/descriptions/ift.py)")
    ift.add_argument("--tau", type=float, default=0.05, help="temperature of the text -> image kernel")
    ift.add_argument("--shots", type=int, default=4, help="training images per class for the probe")
    ift.add_argument("--epochs", type=int, default=20, help="probe epochs (one checkpoint each)")
    ift.add_argument("--seed", type=int, default=0)
    ift.set_defaults(run=run_ift_cli)
    register_fudd(tree)
    register_ex2(tree)
    register_inspect(tree)


def run_ift_cli(args: argparse.Namespace) -> int:
    from evdsearch.errors import InvalidInput
    from evdsearch.training.descriptions.ift import IFTConfig
    from evdsearch.training.descriptions.ift_run import bar_plot, report_tables, run_ift

    if not 0.0 <= args.weight <= 1.0 or min(args.top_k, args.shots, args.epochs) < 1 or args.tau <= 0:
        raise InvalidInput("--weight must be in [0, 1]; --top-k, --shots, --epochs >= 1; --tau > 0")
    candidates = tuple(args.candidates or [str(Path(args.data) / "encyclopedia.jsonl")])
    cfg = IFTConfig(data=args.data, model=args.model, candidates=candidates, out=str(args.out),
                    weight=args.weight, top_k=args.top_k, influence=args.influence, tau=args.tau,
                    shots=args.shots, epochs=args.epochs,
                    seed=args.seed, threads=args.threads)
    publish(args.out, "ift_report", run_ift(cfg), report_tables, bar_plot, {"descriptions": args.out / "ift.jsonl"})
    return 0


def register_fudd(tree: Any) -> None:
    fudd = tree.add("train", "fudd", "FuDD: LLM differential descriptions for each image's ambiguous classes")
    add_inputs(fudd, "output folder (fudd.jsonl, pairs.jsonl cache, report)")
    fudd.add_argument("--llm", default="smollm2", help=SPEC_HELP)
    fudd.add_argument("-k", type=int, default=2, help="ambiguous classes per image (default 2)")
    fudd.add_argument("--max-images", type=int,
                      help="classify N test images spread evenly over the split (fewer pairs to describe)")
    fudd.add_argument("--max-new-tokens", type=int, default=40)
    fudd.add_argument("--batch-size", type=int, default=8, help="LLM calls answered together")
    fudd.set_defaults(run=run_fudd_cli)


def run_fudd_cli(args: argparse.Namespace) -> int:
    from evdsearch.errors import InvalidInput
    from evdsearch.training.descriptions.fudd import FuDDConfig, bar_plot, report_tables, run_fudd

    if args.k < 2 or min(args.batch_size, args.max_new_tokens, args.max_images or 1) < 1:
        raise InvalidInput("-k must be at least 2; --batch-size, --max-new-tokens, --max-images at least 1")
    cfg = FuDDConfig(data=args.data, model=args.model, out=str(args.out), llm=args.llm, k=args.k,
                     max_images=args.max_images, max_new_tokens=args.max_new_tokens, batch_size=args.batch_size,
                     threads=args.threads)
    publish(args.out, "fudd_report", run_fudd(cfg), report_tables, bar_plot,
            {"descriptions": args.out / "fudd.jsonl"})
    return 0


def register_ex2(tree: Any) -> None:
    ex2 = tree.add("train", "ex2", "EX2: GRPO-align an LLM (LoRA) to CLIP, then describe every concept")
    add_inputs(ex2, "output folder (ex2.jsonl, report, lora/)", model_help="CLIP checkpoint folder (the reward)")
    ex2.add_argument("--llm", default="smollm2", help="local causal LM: smollm2, a folder or a .gguf file")
    ex2.add_argument("--steps", type=int, default=48, help="GRPO steps")
    ex2.add_argument("--num-generations", type=int, default=4, help="samples per prompt (GRPO group)")
    ex2.add_argument("--prompts-per-step", type=int, default=2)
    ex2.add_argument("--max-new-tokens", type=int, default=32)
    ex2.add_argument("--lr", type=float, default=2e-3, help="LoRA learning rate")
    ex2.add_argument("--beta", type=float, default=0.04, help="KL coefficient to the reference model")
    ex2.add_argument("--train-concepts", type=int, default=16,
                     help="concepts trained on; the rest held out (0: all of them, the paper's setting)")
    ex2.add_argument("--reward", choices=REWARDS, default="mean",
                     help="mean: 100·mean cos(concept images, text), the paper's; contrastive: minus the same "
                     "averaged over all concepts, so only what tells the concept apart is rewarded")
    ex2.add_argument("--mask-names", action="store_true",
                     help="score answers with every concept name replaced by 'object': only what a description adds "
                     "to the class name it is used with earns reward (stops collapse to 'A pumpkin is a pumpkin.')")
    ex2.add_argument("--best-of", type=int, default=1,
                     help="sample each final question N times and keep the highest-reward answer (default 1)")
    ex2.add_argument("--eval-concepts", type=int, default=16, help="train / held-out concepts scored before+after")
    ex2.add_argument("--per-concept", type=int, default=25,
                     help="descriptions per concept at the end, one per question template (EX2's setting: 25; "
                     "about 25 min on 2 quiet cores)")
    ex2.add_argument("--batch-size", type=int, default=16, help="generations answered together")
    ex2.add_argument("--seed", type=int, default=0)
    ex2.set_defaults(run=run_ex2_cli)


def run_ex2_cli(args: argparse.Namespace) -> int:
    from evdsearch.errors import InvalidInput
    from evdsearch.training.descriptions.ex2 import EX2Config
    from evdsearch.training.descriptions.ex2_run import report_tables, reward_plot, run_ex2

    if min(args.steps, args.prompts_per_step, args.max_new_tokens, args.per_concept, args.batch_size,
           args.best_of) < 1 or args.train_concepts < 0 or args.num_generations < 2:
        raise InvalidInput("--num-generations must be at least 2; --train-concepts at least 0; other counts at "
                           "least 1")
    cfg = EX2Config(data=args.data, model=args.model, out=str(args.out), llm=args.llm, steps=args.steps,
                    num_generations=args.num_generations, prompts_per_step=args.prompts_per_step,
                    max_new_tokens=args.max_new_tokens, lr=args.lr, beta=args.beta,
                    train_concepts=args.train_concepts, eval_concepts=args.eval_concepts,
                    per_concept=args.per_concept, best_of=args.best_of, reward=args.reward,
                    mask_names=args.mask_names,
                    batch_size=args.batch_size, seed=args.seed,
                    threads=args.threads)
    publish(args.out, "ex2_report", run_ex2(cfg), report_tables, reward_plot,
            {"descriptions": args.out / "ex2.jsonl"})
    return 0


def register_inspect(tree: Any) -> None:
    ins = tree.add("train", "ex2-inspect", "label descriptions spurious/informative and visual/non-visual")
    ins.add_argument("--descriptions", required=True, help="description JSONL (ex2.jsonl or any kb-import file)")
    ins.add_argument("--world", required=True, help="shapes world folder (ground truth)")
    ins.add_argument("--out", required=True, type=Path, help="output folder (inspect.json/.md/.png, labelled JSONL)")
    ins.add_argument("--judge", help="LLM judge spec (openai | openai:MODEL | smollm2 | none); default: openai "
                     "when EVDSEARCH_LLM_BASE_URL / OPENAI_BASE_URL is set, else none")
    ins.add_argument("--limit", type=int, help="only the first N descriptions")
    ins.add_argument("--threads", type=int, default=2)
    ins.set_defaults(run=run_inspect_cli)


def run_inspect_cli(args: argparse.Namespace) -> int:
    from evdsearch.evaluation.classification import write_jsonl
    from evdsearch.training.descriptions.ex2_inspect_run import (
        bar_plot,
        default_judge,
        report_tables,
        run_inspect,
    )

    result, labelled = run_inspect(args.descriptions, args.world, args.judge or default_judge(), args.limit,
                                   args.threads)
    labelled_path = write_jsonl(args.out / "inspect_labelled.jsonl", labelled)
    publish(args.out, "inspect", result, report_tables, bar_plot, {"labelled": labelled_path})
    return 0
