"""Zero-shot classification benchmark: accuracy of description sets (class name, 80 templates, random words,
JSONL files) on one or several worlds, each set against the templates and a random-words set of its size."""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.evaluation.classification import descriptions_by_entity, load_templates, open_split, read_jsonl
from evdsearch.evaluation.paired_stats import binomial_ci, mcnemar, mean_ci
from evdsearch.evaluation.waffle import waffle_texts
from evdsearch.evaluation.zeroshot import class_embeddings, fill_templates, predict, with_name

BUILTIN_SETS = ("classname", "templates", "encyclopedia", "waffle[:N]")
WAFFLE_DEFAULT = 25  # `waffle` alone: as many random descriptors per class as EX2 has descriptions
ALPHA = 0.05  # significance level of the paired tests' verdicts


@dataclass
class ClassifyConfig:
    """One benchmark run; the CLI fills it, the JSON report records it."""

    data: str | tuple[str, ...]  # shapes world(s), folder(s) of splits, or ImageFolder(s); several = mean ± CI
    model: str | tuple[str, ...]  # CLIP checkpoint folder or architecture, one per data folder (or one for all)
    sets: tuple[str, ...] = ("classname", "templates")  # builtin names and/or description JSONL paths
    split: str = "test"  # split of the classification view
    pretrained: str | None = None  # hub tag or weights file for an architecture name
    top: int | None = None  # descriptions per class from a JSONL set (best score first); None = all
    device: str = "auto"  # auto | cpu | cuda
    threads: int | None = 2  # torch CPU threads
    waffle_seed: int = 0  # seed of the random-words descriptors (the same in every world)
    cache_dir: str | None = None  # image-embedding cache folder; None = beside each data folder


@dataclass(frozen=True)
class SetSpec:
    """A parsed `--descriptions` item."""

    kind: str  # classname | templates | encyclopedia | waffle | jsonl
    path: str | None = None  # the JSONL file (kind jsonl)
    count: int | None = None  # waffle: descriptors per class; jsonl: best-scored descriptions per class


def parse_set(spec: str) -> SetSpec:
    """classname | templates | encyclopedia | waffle[:N] | FILE.jsonl[:N]."""
    name, count = spec, None
    head, sep, tail = spec.rpartition(":")
    if sep and (head == "waffle" or head.endswith(".jsonl")):
        if not tail.isdigit() or int(tail) < 1:
            raise InvalidInput(f"description set {spec!r}: the count after ':' must be a positive integer")
        name, count = head, int(tail)
    if name in ("classname", "templates", "encyclopedia"):
        return SetSpec(name)
    if name == "waffle":
        return SetSpec("waffle", count=count or WAFFLE_DEFAULT)
    if name.endswith(".jsonl"):
        return SetSpec("jsonl", name, count)
    raise InvalidInput(f"unknown description set {spec!r}: use {', '.join(BUILTIN_SETS)} or FILE.jsonl[:N]")


def set_labels(specs: tuple[str, ...]) -> list[str]:
    """A short label per set: the file stem, or PARENT/STEM when two files share a stem (run1/ex2, run2/ex2)."""
    parsed = [parse_set(s) for s in specs]
    stems = [Path(p.path).stem if p.path else s.split(":")[0] for s, p in zip(specs, parsed, strict=True)]
    labels = []
    for p, stem in zip(parsed, stems, strict=True):
        label = f"{Path(p.path).parent.name}/{stem}" if p.path and stems.count(stem) > 1 else stem
        labels.append(f"{label}:{p.count}" if p.count and p.kind == "jsonl" else label)
    return labels


def set_texts(spec: str, classes: list[str], top: int | None, label: str | None = None, data: str | None = None,
              waffle_seed: int = 0) -> dict[str, tuple[list[list[str]], int]]:
    """Set label -> (texts per class, classes covered). A JSONL gives two sets: as written, and "+name"."""
    parsed = parse_set(spec)
    if parsed.kind == "classname":
        return {"classname": ([[c] for c in classes], len(classes))}
    if parsed.kind == "templates":
        templates = load_templates()
        return {f"templates ({len(templates)})": ([fill_templates(templates, c) for c in classes], len(classes))}
    if parsed.kind == "waffle":
        return {f"random words ({parsed.count})": (waffle_texts(classes, parsed.count, waffle_seed), len(classes))}
    if parsed.kind == "encyclopedia":
        path = Path(data or ".") / "encyclopedia.jsonl"
        if not path.is_file():
            raise NotFound(f"set 'encyclopedia': {path} not found (it is a shapes world's own description file)")
        label = label or "encyclopedia"
    else:
        path = Path(str(parsed.path))
        label = label or path.stem
    groups = descriptions_by_entity(read_jsonl(path))
    keep = parsed.count or top
    raw, named, covered = [], [], 0
    for name in classes:
        found = [r["description"] for r in groups.get(name.lower(), [])][:keep]
        covered += bool(found)
        raw.append(found or [name])  # a class the file does not describe falls back to its name
        named.append([with_name(name, d) for d in found] or [name])
    return {label: (raw, covered), f"{label} +name": (named, covered)}


def world_pairs(cfg: ClassifyConfig) -> list[tuple[str, str]]:
    """(data, model) per world: one model for all, or exactly one per data folder."""
    data = (cfg.data,) if isinstance(cfg.data, str) else tuple(cfg.data)
    models = (cfg.model,) if isinstance(cfg.model, str) else tuple(cfg.model)
    if not data or not models:
        raise InvalidInput("--data and --model need at least one value each")
    if len(models) == 1:
        models = models * len(data)
    if len(models) != len(data):
        raise InvalidInput(f"{len(data)} --data folders but {len(models)} --model values: give one model per "
                           "data folder, in the same order, or a single model for all")
    return list(zip(data, models, strict=True))


def world_names(data: list[str]) -> list[str]:
    """The shortest path tails that tell the data folders apart (s7301/world, s7302/world, ...)."""
    parts = [Path(d).resolve().parts for d in data]
    for k in range(1, max(map(len, parts)) + 1):
        names = ["/".join(p[-k:]) for p in parts]
        if len(set(names)) == len(names):
            return names
    return [str(d) for d in data]


def per_class(texts: list[list[str]]) -> int:
    """Texts per class, rounded: the size of the random-words set a set is compared with."""
    return max(1, round(sum(map(len, texts)) / len(texts)))


def evaluate_world(data: str, model: str, cfg: ClassifyConfig) -> dict[str, Any]:
    """Accuracy and per-image correctness of every set (and of random words of each set's size) on one world."""
    from evdsearch.clip_models import load_clip
    from evdsearch.evaluation.classification import image_embeddings

    split = open_split(data, cfg.split)
    clip = load_clip(model, cfg.pretrained, cfg.device)
    images = image_embeddings(clip, split, cache_dir=cfg.cache_dir)
    seen = None
    if split.seen:
        seen = np.array([split.seen.get(split.classes[i], True) for i in split.labels])

    def score(texts: list[list[str]]) -> np.ndarray:
        return predict(images, class_embeddings(clip, texts)) == split.labels

    rows, hits, random_hits = [], {}, {}
    for spec, name in zip(cfg.sets, set_labels(cfg.sets), strict=True):
        for label, (texts, covered) in set_texts(spec, split.classes, cfg.top, name, data, cfg.waffle_seed).items():
            hit = hits[label] = score(texts)
            n = per_class(texts)
            row = {"set": label, "accuracy": 100.0 * float(hit.mean()), "texts": sum(map(len, texts)),
                   "texts_per_class": n, "classes_described": covered, "random_baseline": parse_set(spec).kind != "waffle"}
            if seen is not None:
                row |= {"seen": 100.0 * float(hit[seen].mean()) if seen.any() else float("nan"),
                        "unseen": 100.0 * float(hit[~seen].mean()) if (~seen).any() else float("nan")}
            if row["random_baseline"] and n not in random_hits:
                random_hits[n] = score(waffle_texts(split.classes, n, cfg.waffle_seed))
            rows.append(row)
    return {"data_root": str(split.root), "images": len(split), "classes": len(split.classes),
            "model": clip.identity.model, "rows": rows, "hits": hits, "random_hits": random_hits}


def _verdict(delta: float, p: float) -> str:
    if p >= ALPHA:
        return "tie"
    return "better" if delta > 0 else "worse"


def _compare(a: list[np.ndarray], b: list[np.ndarray]) -> dict[str, Any]:
    """Set a against set b on the same images of every world: mean difference (points) ± CI over worlds,
    exact McNemar on the pooled images."""
    deltas = [100.0 * (x.mean() - y.mean()) for x, y in zip(a, b, strict=True)]
    delta, ci = mean_ci(deltas)
    test = mcnemar(np.concatenate(a), np.concatenate(b))
    return {"delta": delta, "delta_ci95": ci, **test, "verdict": _verdict(delta, float(test["p"]))}


def summarise(worlds: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per set: mean ± 95 % CI over worlds (over images for one world), the random-words set of the
    same size and the 80 templates, each with a paired test."""
    templates = next((r["set"] for r in worlds[0]["rows"] if r["set"].startswith("templates")), None)
    out = []
    for row in worlds[0]["rows"]:
        label = row["set"]
        hits = [w["hits"][label] for w in worlds]
        accs = [100.0 * float(h.mean()) for h in hits]
        mean, ci = mean_ci(accs) if len(worlds) > 1 else (accs[0], binomial_ci(hits[0]))
        agg = {"set": label, "accuracy": mean, "ci95": ci, "per_world": accs, "texts": row["texts"],
               "texts_per_class": row["texts_per_class"],
               "classes_described": min(r["classes_described"] for w in worlds for r in w["rows"]
                                        if r["set"] == label)}
        if all("seen" in r for w in worlds for r in w["rows"]):
            for key in ("seen", "unseen"):
                agg[key] = float(np.mean([r[key] for w in worlds for r in w["rows"] if r["set"] == label]))
        if row["random_baseline"]:
            n = row["texts_per_class"]
            rnd = [w["random_hits"][n] for w in worlds]
            racc = [100.0 * float(h.mean()) for h in rnd]
            rmean, rci = mean_ci(racc) if len(worlds) > 1 else (racc[0], binomial_ci(rnd[0]))
            agg["random_words"] = {"texts_per_class": n, "accuracy": rmean, "ci95": rci, "per_world": racc,
                                   "vs": _compare(hits, rnd)}
        if templates and label != templates:
            agg["vs_templates"] = _compare(hits, [w["hits"][templates] for w in worlds])
        out.append(agg)
    return out


def run_classify(cfg: ClassifyConfig) -> dict[str, Any]:
    """Accuracy per set, overall and (shapes world) on seen / unseen classes, on every world, and the summary."""
    from evdsearch.evaluation.classification import set_threads

    set_threads(cfg.threads)
    started = time.perf_counter()
    if not any(parse_set(s).kind == "templates" for s in cfg.sets):
        cfg.sets = (*cfg.sets, "templates")  # the reference every set is compared with
    pairs = world_pairs(cfg)
    worlds = [evaluate_world(data, model, cfg) | {"name": name}
              for (data, model), name in zip(pairs, world_names([d for d, _ in pairs]), strict=True)]
    rows = summarise(worlds)
    public = [{k: v for k, v in w.items() if k not in ("hits", "random_hits")} for w in worlds]
    return {"config": asdict(cfg), "worlds": public, "data_root": ", ".join(w["data_root"] for w in public),
            "images": sum(w["images"] for w in public), "classes": public[0]["classes"],
            "model": ", ".join(sorted({w["model"] for w in public})), "rows": rows,
            "seconds": round(time.perf_counter() - started, 1)}


def _pm(value: float, ci: float) -> str:
    from evdsearch.plots import fmt

    return fmt(value) if ci != ci else f"{fmt(value)} ± {fmt(ci)}"


def _vs(cmp: dict[str, Any] | None) -> str:
    from evdsearch.plots import fmt

    if not cmp:
        return "-"
    sign = "+" if cmp["delta"] >= 0 else ""
    return f"{cmp['verdict']} ({sign}{fmt(cmp['delta'])}, p={cmp['p']:.2g})"


def report_tables(result: dict[str, Any]) -> list[Any]:
    from evdsearch.plots import Table, fmt

    rows_in = result["rows"]
    n_worlds = len(result.get("worlds", [])) or 1
    has_seen = any("seen" in r for r in rows_in)
    header = (["set", "accuracy %"] + (["seen %", "unseen %"] if has_seen else [])
              + ["texts / class", "random words, same count %", "vs random words", "vs 80 templates",
                 "classes described"])
    rows = []
    for r in rows_in:
        rnd = r.get("random_words")
        rows.append([r["set"], _pm(r["accuracy"], r.get("ci95", float("nan")))]
                    + ([fmt(r.get("seen")), fmt(r.get("unseen"))] if has_seen else [])
                    + [str(r["texts_per_class"]), _pm(rnd["accuracy"], rnd["ci95"]) if rnd else "(is one)",
                       _vs(rnd["vs"] if rnd else None), _vs(r.get("vs_templates")),
                       f"{r['classes_described']}/{result['classes']}"])
    ci_kind = (f"mean ± 95 % t-interval over {n_worlds} worlds" if n_worlds > 1
               else "± 95 % normal interval over the test images")
    note = (f"{result['images']} test images in {n_worlds} world(s), {result['classes']} classes; {ci_kind}; "
            "random words = WaffleCLIP baseline: the class name + random word / character strings, as many per "
            "class as the set has texts; vs = better / worse / tie at p < 0.05 (exact McNemar on the pooled "
            f"images), with the mean difference in points; model {result['model']}; {result['seconds']} s")
    tables = [Table("Zero-shot classification", header, rows, note)]
    if n_worlds > 1:
        worlds = result["worlds"]
        tables.append(Table("Accuracy % per world", ["set"] + [w["name"] for w in worlds],
                            [[r["set"]] + [fmt(a) for a in r["per_world"]] for r in rows_in],
                            "; ".join(f"{w['data_root']} ({w['model']})" for w in worlds)))
    return tables


def bar_plot(result: dict[str, Any]) -> Any:
    from evdsearch.plots import new_figure

    rows = result["rows"]
    fig, (ax,) = new_figure(width=max(6.0, 0.8 * len(rows)))
    x = np.arange(len(rows))
    ci = [r.get("ci95", float("nan")) for r in rows]
    ax.bar(x, [r["accuracy"] for r in rows], color="tab:blue", label="set",
           yerr=[0.0 if c != c else c for c in ci], capsize=3)
    rnd = [(i, r["random_words"]["accuracy"]) for i, r in enumerate(rows) if r.get("random_words")]
    if rnd:
        ax.plot([i for i, _ in rnd], [a for _, a in rnd], "k_", markersize=14, mew=2,
                label="random words, same count")
    ref = next((r["accuracy"] for r in rows if r["set"].startswith("templates")), None)
    if ref is not None:
        ax.axhline(ref, color="tab:red", ls="--", lw=1, label="80 templates")
    ax.set_xticks(x, [r["set"] for r in rows], rotation=30, ha="right")
    ax.set_ylabel("top-1 accuracy (%)")
    ax.legend(fontsize=8)
    ax.set_title(f"zero-shot classification, {len(result.get('worlds', [])) or 1} world(s), {result['images']} "
                 f"images / {result['classes']} classes (2-core CPU dev box)", fontsize=9)
    return fig
