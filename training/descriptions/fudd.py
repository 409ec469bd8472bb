"""FuDD: differential descriptions, asked of an LLM only for the classes an image is ambiguous between.

For each test image the k classes CLIP (80 templates) ranks highest are its ambiguous set; each
pair {a, b} in it gets one LLM answer on how a *differs from* b ("A a is ..., while a b is ..."),
split into a's side and b's side and cached per pair (one call per pair, as in FuDD). The image
is then re-classified within its set: class a is represented by the mean embedding of its
descriptions against the other members, "a which <description>" as the template rewriter writes it.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import asdict, dataclass
from itertools import combinations
from pathlib import Path
from typing import Any

import numpy as np

PROMPT = "In one short sentence, describe how a {a} looks different from a {b}."


@dataclass
class FuDDConfig:
    """An `evdsearch train fudd` run; the CLI fills it."""

    data: str  # shapes world (or ImageFolder with train/test)
    model: str  # CLIP checkpoint folder
    out: str  # output folder (fudd.jsonl, pair cache, report)
    llm: str = "smollm2"  # LLM spec (training.llm.factory)
    k: int = 2  # ambiguous classes per image
    max_images: int | None = None  # classify N test images spread evenly over the split (None = all)
    max_new_tokens: int = 40  # per pair's answer
    batch_size: int = 8  # LLM calls answered together (local models)
    seed: int = 0  # reserved for sampling; answers are greedy
    threads: int = 2  # torch CPU threads


def ambiguous_sets(scores: np.ndarray, k: int) -> np.ndarray:
    """(N, k) class indices, best first: each image's k most likely classes."""
    return np.argsort(-scores, axis=1, kind="stable")[:, :k]


def needed_pairs(sets: np.ndarray) -> list[tuple[int, int]]:
    """Class pairs (a, b), a < b, that some image's ambiguous set contains, sorted."""
    return sorted({(int(min(a, b)), int(max(a, b))) for row in sets for a, b in combinations(row, 2)})


_CONTRAST = re.compile(r",?\s+(?:while|whereas|but|and unlike|unlike)\s+", re.IGNORECASE)


def split_contrast(sentence: str) -> tuple[str, str]:
    """"A X is red, while a Y is green." -> ("A X is red.", "A Y is green."); unsplittable: both sides the same."""
    parts = _CONTRAST.split(sentence.strip(), maxsplit=1)
    if len(parts) != 2 or len(parts[1].split()) < 3:
        return sentence, sentence
    first, second = parts[0].rstrip(" ,;.") + ".", parts[1].strip()
    return first, second[0].upper() + second[1:]


def first_description(answer: str, name: str) -> str:
    """The answer's first clean sentence (the raw first line when nothing survives cleaning)."""
    from evdsearch.training.evd.clean import split_descriptions

    found = split_descriptions(answer)
    text = found[0] if found else (answer.strip().splitlines() or [name])[0]
    return " ".join(text.split())[:300]


class PairCache:
    """pairs.jsonl: one {"a", "b", "answer"} per class pair, appended as answers arrive (a rerun resumes)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.items: dict[tuple[str, str], str] = {}
        if path.is_file():
            for line in path.read_text(encoding="utf-8").splitlines():
                if line.strip():
                    r = json.loads(line)
                    self.items[(r["a"], r["b"])] = r["answer"]

    def add(self, a: str, b: str, answer: str) -> None:
        self.items[(a, b)] = answer
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps({"a": a, "b": b, "answer": answer}, ensure_ascii=False) + "\n")

    def sides(self, a: str, b: str) -> tuple[str, str]:
        """(a's differential description, b's) from the cached answer; the LLM may name b first."""
        first, second = split_contrast(self.items[(a, b)])
        if _names(b, first) and not _names(a, first) and _names(a, second):
            return second, first
        return first, second


def _names(name: str, text: str) -> bool:
    return re.search(rf"\b{re.escape(name.lower())}s?\b", text.lower()) is not None


def describe_pairs(llm: Any, pairs: list[tuple[str, str]], cache: PairCache, cfg: FuDDConfig) -> int:
    """Ask the LLM for every pair not in the cache; returns how many calls were made."""
    from tqdm import tqdm

    from evdsearch.training.llm.base import ChatRequest, chat_many

    todo = [p for p in pairs if p not in cache.items]
    with tqdm(total=len(todo), desc="fudd pairs", unit="pair", disable=not todo) as bar:
        for start in range(0, len(todo), cfg.batch_size):
            chunk = todo[start : start + cfg.batch_size]
            requests = [ChatRequest([{"role": "user", "content": PROMPT.format(a=a, b=b)}], cfg.max_new_tokens)
                        for a, b in chunk]
            for (a, b), result in zip(chunk, chat_many(llm, requests), strict=True):
                cache.add(a, b, first_description(result.text, a))
            bar.update(len(chunk))
    return len(todo)


def fudd_predict(images: np.ndarray, sets: np.ndarray, pair_emb: dict[tuple[int, int], np.ndarray],
                 prior: np.ndarray | None = None) -> np.ndarray:
    """Class per image: within its ambiguous set, the class whose differential descriptions fit best.

    With `prior` (C, D), each class's template embedding is averaged in with equal weight.
    """
    from evdsearch.evaluation.zeroshot import normalize

    pred = np.empty(len(images), dtype=np.int64)
    for n, row in enumerate(sets):
        reps = np.stack([normalize(np.mean([pair_emb[(int(a), int(b))] for b in row if b != a], axis=0))
                         for a in row])
        if prior is not None:
            reps = normalize(reps + prior[row])
        pred[n] = row[int(np.argmax(reps @ images[n]))]
    return pred


def run_fudd(cfg: FuDDConfig) -> dict[str, Any]:
    from evdsearch.clip_models import load_clip
    from evdsearch.evaluation.classification import (
        image_embeddings,
        load_templates,
        open_split,
        set_threads,
        write_jsonl,
    )
    from evdsearch.evaluation.zeroshot import accuracy, class_embeddings, fill_templates, predict, with_name
    from evdsearch.training.llm.factory import create_llm

    set_threads(cfg.threads)
    started = time.perf_counter()
    out = Path(cfg.out)
    out.mkdir(parents=True, exist_ok=True)
    clip = load_clip(cfg.model, device="cpu")
    test, train = open_split(cfg.data, "test"), open_split(cfg.data, "train")
    keep = np.arange(len(test))  # the split is sorted by class: subsample evenly, not the first N
    if cfg.max_images and cfg.max_images < len(test):
        keep = np.linspace(0, len(test) - 1, cfg.max_images).round().astype(int)
    images, labels = image_embeddings(clip, test)[keep], test.labels[keep]
    classes = test.classes
    templates = load_templates()
    tmpl_emb = class_embeddings(clip, [fill_templates(templates, c) for c in classes])
    scores = images @ tmpl_emb.T
    sets = ambiguous_sets(scores, cfg.k)
    pairs = needed_pairs(sets)
    cache = PairCache(out / "pairs.jsonl")
    named = [(classes[a], classes[b]) for a, b in pairs]
    t_llm = time.perf_counter()
    calls = 0
    if any(p not in cache.items for p in named):
        calls = describe_pairs(create_llm(cfg.llm, device="cpu", threads=cfg.threads), named, cache, cfg)
    llm_s = time.perf_counter() - t_llm
    ordered = [(a, b) for a, b in pairs] + [(b, a) for a, b in pairs]
    described = [cache.sides(classes[min(a, b)], classes[max(a, b)])[0 if a < b else 1] for a, b in ordered]
    emb = clip.encode_texts([with_name(classes[a], d) for (a, _), d in zip(ordered, described, strict=True)])
    pair_emb = {p: emb[i] for i, p in enumerate(ordered)}
    pred = fudd_predict(images, sets, pair_emb)
    pred_mix = fudd_predict(images, sets, pair_emb, prior=tmpl_emb)
    template_pred = predict(images, tmpl_emb)
    name_pred = predict(images, class_embeddings(clip, [[c] for c in classes]))
    in_set = (sets == labels[:, None]).any(axis=1)
    # KB score: how much better the description fits a's training images than b's (cosine margin).
    train_emb = image_embeddings(clip, train)
    centroid = {c: train_emb[train.labels == c].mean(axis=0) for c in np.unique(train.labels)}
    records = [{"entity": classes[a], "description": d, "source": "fudd",
                "score": round(float(emb[i] @ (centroid[a] - centroid[b])), 4), "contrast": classes[b]}
               for i, ((a, b), d) in enumerate(zip(ordered, described, strict=True))]
    write_jsonl(out / "fudd.jsonl", records)
    rows = [{"method": "class name", "accuracy": accuracy(name_pred, labels)},
            {"method": f"templates ({len(templates)})", "accuracy": accuracy(template_pred, labels)},
            {"method": f"FuDD (k={cfg.k})", "accuracy": accuracy(pred, labels)},
            {"method": f"FuDD + templates (k={cfg.k})", "accuracy": accuracy(pred_mix, labels)},
            {"method": f"oracle: true class in top-{cfg.k}", "accuracy": float(100 * in_set.mean())}]
    return {"config": asdict(cfg), "images": len(images), "classes": len(classes), "pairs": len(pairs),
            "llm_calls": calls, "llm_seconds": round(llm_s, 1), "rows": rows,
            "examples": records[:6], "seconds": round(time.perf_counter() - started, 1)}


def report_tables(result: dict[str, Any]) -> list[Any]:
    from evdsearch.plots import Table, fmt

    note = (f"{result['images']} test images, {result['classes']} classes; {result['pairs']} class pairs "
            f"described ({result['llm_calls']} LLM calls this run, {result['llm_seconds']} s); {result['seconds']} s")
    return [Table("FuDD vs templates: test accuracy (%)", ["method", "accuracy %"],
                  [[r["method"], fmt(r["accuracy"])] for r in result["rows"]], note)]


def bar_plot(result: dict[str, Any]) -> Any:
    from evdsearch.plots import new_figure

    fig, (ax,) = new_figure()
    rows = result["rows"]
    colors = ["gray", "tab:blue", "tab:orange", "tab:green", "lightgray"]
    ax.bar(range(len(rows)), [r["accuracy"] for r in rows], color=colors[: len(rows)])
    ax.set_xticks(range(len(rows)), [r["method"] for r in rows], rotation=15, ha="right")
    ax.set_ylabel("test accuracy (%)")
    return fig
