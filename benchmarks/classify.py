"""Zero-shot classification benchmark: accuracy of description sets (class name, 80 templates, JSONL files)."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput
from evdsearch.evaluation.classification import descriptions_by_entity, load_templates, open_split, read_jsonl
from evdsearch.evaluation.zeroshot import accuracy, class_embeddings, fill_templates, predict, with_name

BUILTIN_SETS = ("classname", "templates")


@dataclass
class ClassifyConfig:
    """One benchmark run; the CLI fills it, the JSON report records it."""

    data: str  # shapes world, folder of splits, or ImageFolder of classes
    model: str  # CLIP checkpoint folder or open_clip architecture name
    sets: tuple[str, ...] = ("classname", "templates")  # builtin names and/or description JSONL paths
    split: str = "test"  # split of the classification view
    pretrained: str | None = None  # hub tag or weights file for an architecture name
    top: int | None = None  # descriptions per class from a JSONL set (best score first); None = all
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = 2  # torch CPU threads


def set_labels(specs: tuple[str, ...]) -> list[str]:
    """A short label per set: the file stem, or PARENT/STEM when two files share a stem (run1/ex2, run2/ex2)."""
    stems = [Path(s).stem if s.endswith(".jsonl") else s for s in specs]
    return [f"{Path(s).parent.name}/{stem}" if stems.count(stem) > 1 else stem for s, stem in zip(specs, stems, strict=True)]


def set_texts(spec: str, classes: list[str], top: int | None,
              label: str | None = None) -> dict[str, tuple[list[list[str]], int]]:
    """Set label -> (texts per class, classes covered). A JSONL gives two sets: as written, and "+name"."""
    if spec == "classname":
        return {"classname": ([[c] for c in classes], len(classes))}
    if spec == "templates":
        templates = load_templates()
        return {f"templates ({len(templates)})": ([fill_templates(templates, c) for c in classes], len(classes))}
    path = Path(spec)
    if path.suffix != ".jsonl":
        raise InvalidInput(f"unknown description set {spec!r}: use {', '.join(BUILTIN_SETS)} or a .jsonl file")
    groups = descriptions_by_entity(read_jsonl(path))
    raw, named, covered = [], [], 0
    for name in classes:
        found = [r["description"] for r in groups.get(name.lower(), [])][:top]
        covered += bool(found)
        raw.append(found or [name])  # a class the file does not describe falls back to its name
        named.append([with_name(name, d) for d in found] or [name])
    label = label or path.stem
    return {label: (raw, covered), f"{label} +name": (named, covered)}


def run_classify(cfg: ClassifyConfig) -> dict[str, Any]:
    """Accuracy per set, overall and (shapes world) on seen / unseen classes."""
    from evdsearch.clip_models import load_clip
    from evdsearch.evaluation.classification import image_embeddings, set_threads

    set_threads(cfg.threads)
    started = time.perf_counter()
    split = open_split(cfg.data, cfg.split)
    clip = load_clip(cfg.model, cfg.pretrained, cfg.device)
    images = image_embeddings(clip, split)
    seen_mask = None
    if split.seen:
        seen_mask = np.array([split.seen.get(split.classes[i], True) for i in split.labels])
    rows = []
    for spec, name in zip(cfg.sets, set_labels(cfg.sets), strict=True):
        for label, (texts, covered) in set_texts(spec, split.classes, cfg.top, name).items():
            pred = predict(images, class_embeddings(clip, texts))
            row = {"set": label, "accuracy": accuracy(pred, split.labels), "texts": sum(map(len, texts)),
                   "classes_described": covered}
            if seen_mask is not None:
                row |= {"seen": accuracy(pred, split.labels, seen_mask),
                        "unseen": accuracy(pred, split.labels, ~seen_mask)}
            rows.append(row)
    return {"config": asdict(cfg), "data_root": str(split.root), "images": len(split), "classes": len(split.classes),
            "model": clip.identity.model, "rows": rows, "seconds": round(time.perf_counter() - started, 1)}


def report_tables(result: dict[str, Any]) -> list[Any]:
    from evdsearch.plots import Table, fmt

    has_seen = any("seen" in r for r in result["rows"])
    header = ["set", "accuracy %"] + (["seen %", "unseen %"] if has_seen else []) + ["texts", "classes described"]
    rows = [[r["set"], fmt(r["accuracy"])] + ([fmt(r.get("seen")), fmt(r.get("unseen"))] if has_seen else [])
            + [str(r["texts"]), f"{r['classes_described']}/{result['classes']}"] for r in result["rows"]]
    note = (f"{result['images']} images, {result['classes']} classes ({result['data_root']}); "
            f"model {result['model']}; {result['seconds']} s")
    return [Table("Zero-shot classification", header, rows, note)]


def bar_plot(result: dict[str, Any]) -> Any:
    from evdsearch.plots import new_figure

    fig, (ax,) = new_figure(width=max(6.0, 1.0 * len(result["rows"])))
    labels = [r["set"] for r in result["rows"]]
    ax.bar(range(len(labels)), [r["accuracy"] for r in result["rows"]], color="tab:blue")
    ax.set_xticks(range(len(labels)), labels, rotation=30, ha="right")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.set_title(f"zero-shot classification, {result['images']} images / {result['classes']} classes")
    return fig
