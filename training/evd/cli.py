"""`evdsearch evd generate` (LLM descriptions, resumable) and `evdsearch evd label` (against the world)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from evdsearch.command_tree import CommandTree
from evdsearch.training.llm.factory import SPEC_HELP


def register(tree: CommandTree) -> None:
    gen = tree.add("evd", "generate", "ask an LLM for entity visual descriptions (JSONL for `kb import`)")
    source = gen.add_argument_group("entities (one of)").add_mutually_exclusive_group(required=True)
    source.add_argument("--entities", type=Path, help="entities.json of a shapes world, a JSON list, or a text list")
    source.add_argument("--captions", type=Path, help="Karpathy JSON: the LLM extracts entities from its captions")
    gen.add_argument("--split", help="with --captions: only this split's captions")
    gen.add_argument("--max-captions", type=int, help="with --captions: read at most this many captions")
    gen.add_argument("--out", type=Path, required=True, help="EVD JSONL; an existing one is resumed")
    gen.add_argument("--llm", default="smollm2", help=SPEC_HELP)
    gen.add_argument("--prompts", nargs="+", help="prompt names (features appearance attributes identify) "
                     "or templates with {entity}; default: features appearance attributes")
    gen.add_argument("--per-entity", type=int, default=2, help="answers per entity and prompt (default 2)")
    gen.add_argument("--limit", type=int, help="describe only the first N entities")
    gen.add_argument("--max-new-tokens", type=int, default=96)
    gen.add_argument("--temperature", type=float, default=0.7, help="for samples after the first (greedy) one")
    gen.add_argument("--seed", type=int, default=0)
    gen.add_argument("--batch-size", type=int, default=6, help="calls a local LLM answers together")
    gen.add_argument("--device", default="auto", help="local LLMs: auto | cpu | cuda")
    gen.add_argument("--threads", type=int, help="local LLMs: torch CPU threads")
    gen.add_argument("--timeout", type=float, default=60.0, help="HTTP LLMs: seconds per request")
    gen.add_argument("--retries", type=int, default=4, help="HTTP LLMs: retries on 429 / 5xx / timeout")
    gen.add_argument("--price-in", type=float, help="price per 1k prompt tokens, for the cost line")
    gen.add_argument("--price-out", type=float, help="price per 1k completion tokens")
    gen.add_argument("--no-progress", action="store_true", help="no progress bar")
    gen.set_defaults(run=run_generate)

    sel = tree.add("evd", "select", "keep the descriptions an entity's answers agree on (best of several samples)")
    sel.add_argument("--evds", type=Path, required=True,
                     help="EVD JSONL from `evd generate` (several samples); its .progress.jsonl, when present, "
                          "gives every raw answer a vote")
    sel.add_argument("--out", type=Path, required=True, help="JSONL of the kept descriptions, for `kb import`")
    sel.add_argument("--keep", type=int, default=4, help="most descriptions kept per entity (default 4)")
    sel.add_argument("--min-votes", type=int, default=3,
                     help="answers that must name a colour / shape / size / pattern for it to count as agreed "
                          "(default 3)")
    sel.add_argument("--prompts", nargs="+", help="keep only descriptions from these prompt names (the answers to "
                                                  "every prompt still vote)")
    sel.set_defaults(run=run_select)

    lab = tree.add("evd", "label", "label EVDs against the shapes world: visual-correct / wrong / non-visual")
    lab.add_argument("--evds", type=Path, required=True, help="EVD JSONL from `evd generate`")
    lab.add_argument("--world", type=Path, required=True, help="shapes world folder (or its entities.json)")
    lab.add_argument("--out", type=Path, required=True, help="report JSON")
    lab.add_argument("--labelled", type=Path, help="also write every EVD with its label (JSONL)")
    lab.set_defaults(run=run_label)


def run_generate(args: argparse.Namespace) -> int:
    from evdsearch.errors import InvalidInput
    from evdsearch.training.evd.entities import load_entity_file
    from evdsearch.training.evd.generate import GenerateConfig, RunStats, describe_entities, extract_entities
    from evdsearch.training.evd.prompts import resolve_prompts
    from evdsearch.training.evd.store import EvdStore
    from evdsearch.training.llm.factory import create_llm

    if min(args.per_entity, args.batch_size, args.limit or 1) < 1:
        raise InvalidInput("--per-entity, --batch-size and --limit must be at least 1")
    cfg = GenerateConfig(prompts=resolve_prompts(args.prompts), per_entity=args.per_entity,
                         max_new_tokens=args.max_new_tokens, temperature=args.temperature, seed=args.seed,
                         batch_size=args.batch_size, progress=not args.no_progress)
    entities = load_entity_file(args.entities) if args.entities else None
    store = EvdStore.open(args.out)
    llm = create_llm(args.llm, device=args.device, threads=args.threads, timeout_s=args.timeout,
                     max_retries=args.retries)
    extract_stats = RunStats()
    if entities is None:
        entities = extract_entities(llm, _captions(args), cfg, store, extract_stats)
        print(f"extracted {len(entities)} entities from captions", file=sys.stderr)
    stats = describe_entities(llm, entities[: args.limit], cfg, store)
    calls = stats.calls + extract_stats.calls
    tokens_in = stats.prompt_tokens + extract_stats.prompt_tokens
    tokens_out = stats.completion_tokens + extract_stats.completion_tokens
    print(f"{args.out}: {stats.descriptions} new descriptions from {calls} LLM calls in {stats.seconds:.1f} s "
          f"({stats.skipped} calls already done); {store.n_descriptions} descriptions in the file")
    print(f"tokens this run: {tokens_in} in, {tokens_out} out"
          f"{_cost(tokens_in, tokens_out, args)}; whole file: {store.prompt_tokens} in, "
          f"{store.completion_tokens} out{_cost(store.prompt_tokens, store.completion_tokens, args)}")
    return 0


def _read_evds(path: Path) -> list[dict]:
    from evdsearch.errors import InvalidInput, NotFound

    if not path.is_file():
        raise NotFound(f"EVD file not found: {path}")
    try:
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
    except json.JSONDecodeError as err:
        raise InvalidInput(f"{path} is not JSONL ({err})") from err


def run_select(args: argparse.Namespace) -> int:
    from evdsearch.atomic import write_text_atomic
    from evdsearch.errors import InvalidInput
    from evdsearch.training.evd.agreement import AgreementConfig, select_by_agreement

    if args.keep < 1 or args.min_votes < 1:
        raise InvalidInput("--keep and --min-votes must be at least 1")
    from evdsearch.training.evd.store import progress_path

    records = _read_evds(args.evds)
    log = progress_path(args.evds)
    calls = [c for c in _read_evds(log) if c.get("stage") == "describe"] if log.is_file() else None
    if args.prompts:
        records = [r for r in records if r.get("prompt") in set(args.prompts)]
    answers: dict[str, list[str]] | None = None
    if calls:  # every answer votes, repeats included (the JSONL holds each description once)
        answers = {}
        for call in calls:
            answers.setdefault(str(call["entity"]), []).append(str(call.get("raw", "")))
    kept = select_by_agreement(records, AgreementConfig(keep=args.keep, min_votes=args.min_votes), answers)
    write_text_atomic(args.out, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in kept))
    entities = {str(r["entity"]) for r in records}
    print(f"kept {len(kept)} of {len(records)} descriptions for {len({r['entity'] for r in kept})} of "
          f"{len(entities)} entities ({'every answer in ' + str(log) if answers else 'each description'} voting)")
    print(f"descriptions: {args.out}")
    return 0


def _captions(args: argparse.Namespace) -> list[str]:
    from evdsearch.karpathy import load_karpathy

    dataset = load_karpathy(args.captions)
    images = dataset.split(args.split) if args.split else dataset.images
    captions = [s.raw for image in images for s in image.sentences]
    return captions[: args.max_captions]


def _cost(tokens_in: int, tokens_out: int, args: argparse.Namespace) -> str:
    if args.price_in is None and args.price_out is None:
        return ""
    cost = tokens_in / 1000 * (args.price_in or 0.0) + tokens_out / 1000 * (args.price_out or 0.0)
    return f" (cost {cost:.4f})"


def _world_info(world: Path) -> dict:
    """Seed and generator version of a made world (they fix which entities are seen), when known."""
    info = world / "world.json" if world.is_dir() else world.with_name("world.json")
    if not info.is_file():
        return {}
    data = json.loads(info.read_text(encoding="utf-8"))
    return {"world_seed": data.get("seed"), "world_version": data.get("version")}


def run_label(args: argparse.Namespace) -> int:
    from evdsearch.atomic import write_json_atomic, write_text_atomic
    from evdsearch.training.evd.label import label_records, load_world_entities
    from evdsearch.training.evd.report import print_report

    records = _read_evds(args.evds)
    report, labelled = label_records(records, load_world_entities(args.world))
    report = {"evds": str(args.evds), "world": str(args.world), **_world_info(args.world), **report}
    write_json_atomic(args.out, report)
    if args.labelled:
        write_text_atomic(args.labelled, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in labelled))
    print_report(report)
    print(f"report written to {args.out}")
    return 0
