"""`evdsearch train ex2`: cache concept images, score the policy, GRPO-train it, score again, describe concepts."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.training.descriptions.ex2 import (
    ClipRewarder,
    EX2Config,
    grpo_train,
    prompt_rows,
    split_concepts,
)

log = logging.getLogger(__name__)


def concept_images(clip: Any, data: str) -> dict[str, np.ndarray]:
    """Concept name -> its training images' CLIP embeddings (the reward's cached side)."""
    from evdsearch.evaluation.classification import image_embeddings, open_split

    split = open_split(data, "train")
    emb = image_embeddings(clip, split)
    return {name: emb[split.labels == i] for i, name in enumerate(split.classes)}


def generate(llm: Any, questions: list[tuple[str, str]], cfg: EX2Config, temperature: float,
             seed: int) -> list[str]:
    """Answers to (concept, question) pairs, batched; temperature 0 is greedy."""
    from evdsearch.training.llm.base import ChatRequest

    out: list[str] = []
    for start in range(0, len(questions), cfg.batch_size):
        chunk = questions[start : start + cfg.batch_size]
        requests = [ChatRequest([{"role": "user", "content": q}], cfg.max_new_tokens, temperature, seed + start + i)
                    for i, (_, q) in enumerate(chunk)]
        out += [r.text for r in llm.chat_batch(requests)]
    return out


def mean_reward(llm: Any, rewarder: ClipRewarder, concepts: list[str], templates: list[str],
                cfg: EX2Config) -> dict[str, Any]:
    """Greedy answers to the first `eval_templates` questions per concept, and their mean reward."""
    questions = [(c, t.format(c)) for c in concepts for t in templates[: cfg.eval_templates]]
    texts = generate(llm, questions, cfg, 0.0, cfg.seed)
    rewards = rewarder.score(texts, [c for c, _ in questions])
    return {"mean_reward": float(np.mean(rewards)), "n": len(rewards),
            "examples": [{"concept": c, "question": q, "answer": t, "reward": round(r, 2)}
                         for (c, q), t, r in list(zip(questions, texts, rewards, strict=True))[:4]]}


def describe_concepts(llm: Any, rewarder: ClipRewarder, concepts: list[str], templates: list[str],
                      train: set[str], cfg: EX2Config) -> list[dict[str, Any]]:
    """`per_concept` sampled answers per concept, one per question template in turn (EX2 asks all 25), each
    scored with the reward; with `best_of` > 1 each question is sampled that many times and its
    highest-reward answer kept (best-of-n against the training images' reward). kb-import records (empty
    answers dropped)."""
    questions = [(c, templates[i % len(templates)].format(c)) for c in concepts for i in range(cfg.per_concept)]
    asked = [q for q in questions for _ in range(cfg.best_of)]
    texts = generate(llm, asked, cfg, cfg.gen_temperature, cfg.seed)
    rewards = rewarder.score(texts, [c for c, _ in asked])
    records = []
    for k, (c, q) in enumerate(questions):
        tries = [(r, t) for r, t in zip(rewards[k * cfg.best_of : (k + 1) * cfg.best_of],
                                         texts[k * cfg.best_of : (k + 1) * cfg.best_of], strict=True) if t.strip()]
        if tries:
            r, text = max(tries, key=lambda rt: rt[0])
            records.append({"entity": c, "description": " ".join(text.split()), "source": "ex2",
                            "score": round(r, 3), "prompt": q, "split": "train" if c in train else "held_out"})
    return records


def cached_before(path: Path, cfg: EX2Config, eval_sets: dict[str, list[str]],
                  compute: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """The base policy's scores are deterministic (greedy): reuse them when the evaluation is the same."""
    from evdsearch.atomic import write_json_atomic

    key = {"llm": cfg.llm, "model": cfg.model, "sets": eval_sets, "templates": cfg.eval_templates,
           "max_new_tokens": cfg.max_new_tokens, "reward": cfg.reward,
           "mask_names": cfg.mask_names}
    if path.is_file():
        saved = json.loads(path.read_text(encoding="utf-8"))
        if saved.get("key") == key:
            return saved["before"]
    before = compute()
    write_json_atomic(path, {"key": key, "before": before})
    return before


def run_ex2(cfg: EX2Config) -> dict[str, Any]:
    from evdsearch.clip_models import load_clip
    from evdsearch.evaluation.classification import load_templates, set_threads, write_jsonl
    from evdsearch.training.llm.local import TransformersChatLLM, resolve_local_model

    set_threads(cfg.threads)
    started = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = load_clip(cfg.model, device="cpu")
    images = concept_images(clip, cfg.data)
    rewarder = ClipRewarder(clip.encode_texts, images, cfg.reward, cfg.mask_names)
    templates = load_templates("ex2_question_templates")
    train, held_out = split_concepts(sorted(images), cfg.train_concepts, cfg.seed)
    eval_sets = {k: v[: cfg.eval_concepts] for k, v in (("train", train), ("held_out", held_out)) if v}
    llm = TransformersChatLLM(resolve_local_model(cfg.llm), device="cpu", threads=cfg.threads)
    timings: dict[str, float] = {}

    t = time.perf_counter()
    before = cached_before(out / "before.json", cfg, eval_sets,
                           lambda: {k: mean_reward(llm, rewarder, v, templates, cfg) for k, v in eval_sets.items()})
    timings["eval_before_s"] = time.perf_counter() - t
    log.info("reward before training: %s", {k: round(v["mean_reward"], 2) for k, v in before.items()})
    t = time.perf_counter()
    llm.model, steps = grpo_train(llm.model, llm.tokenizer, rewarder, prompt_rows(train, templates), cfg,
                                  str(out / "trainer"))
    llm.model.eval()
    timings["train_s"] = time.perf_counter() - t
    llm.model.save_pretrained(str(out / "lora"))
    t = time.perf_counter()
    after = {k: mean_reward(llm, rewarder, v, templates, cfg) for k, v in eval_sets.items()}
    timings["eval_after_s"] = time.perf_counter() - t

    t = time.perf_counter()
    records = describe_concepts(llm, rewarder, sorted(images), templates, set(train), cfg)
    write_jsonl(out / "ex2.jsonl", records)
    timings["generate_s"] = time.perf_counter() - t
    return {"config": asdict(cfg), "train_concepts": train, "held_out_concepts": held_out,
            "reward_per_step": [{"step": int(e.get("step", i + 1)), "reward": e["reward"],
                                 "reward_std": e.get("reward_std"), "kl": e.get("kl")} for i, e in enumerate(steps)],
            "before": before, "after": after, "descriptions": len(records),
            "timings": {k: round(v, 1) for k, v in timings.items()},
            "seconds": round(time.perf_counter() - started, 1)}


def report_tables(result: dict[str, Any]) -> list[Any]:
    from evdsearch.plots import Table, fmt

    rows = []
    for k in result["after"]:
        before, after = result["before"][k]["mean_reward"], result["after"][k]["mean_reward"]
        rows.append([k.replace("_", "-"), fmt(before, 2), fmt(after, 2), fmt(after - before, 2),
                     str(result["after"][k]["n"])])
    curve = result["reward_per_step"]
    note = (f"{len(curve)} GRPO steps; batch reward first {fmt(curve[0]['reward'], 2) if curve else '-'} -> last "
            f"{fmt(curve[-1]['reward'], 2) if curve else '-'}; {result['descriptions']} descriptions written; "
            f"timings {result['timings']}")
    masked = ", names masked" if result["config"].get("mask_names") else ""
    return [Table(f"EX2: mean CLIP reward ({result['config']['reward']}{masked}, 100·cos) of greedy answers",
                  ["concepts", "before", "after", "gain", "answers"], rows, note)]


def reward_plot(result: dict[str, Any]) -> Any:
    from evdsearch.plots import new_figure

    fig, (ax1, ax2) = new_figure(ncols=2, width=5.5)
    curve = result["reward_per_step"]
    steps = [e["step"] for e in curve]
    rewards = np.array([e["reward"] for e in curve])
    ax1.plot(steps, rewards, ".", alpha=0.4, label="batch mean")
    if len(rewards) >= 5:
        smooth = np.convolve(rewards, np.ones(5) / 5, mode="valid")
        ax1.plot(steps[4:], smooth, "-", label="5-step mean")
    ax1.set_xlabel("GRPO step")
    ax1.set_ylabel("reward (100·cos)")
    ax1.legend()
    sets = list(result["after"])
    x = np.arange(len(sets))
    for off, when in ((-0.2, "before"), (0.2, "after")):
        ax2.bar(x + off, [result[when][k]["mean_reward"] for k in sets], 0.4, label=when)
    ax2.set_xticks(x, [f"{k.replace('_', '-')} concepts" for k in sets])
    ax2.set_ylabel("mean reward of greedy answers")
    ax2.legend()
    return fig
