"""`evdsearch train ift`: probe + checkpoints, TracIn, IFT / CLIP-only / random selection, cross-modal transfer."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput
from evdsearch.evaluation.classification import descriptions_by_entity, open_split, read_jsonl, write_jsonl
from evdsearch.evaluation.zeroshot import accuracy, normalize, predict
from evdsearch.training.descriptions.ift import (
    IFTConfig,
    gap_shift,
    ift_scores,
    selection_weights,
    text_influence,
    top_k,
    transfer,
)
from evdsearch.training.descriptions.tracin import cross_entropy, predict_probe, tracin, train_probe


def few_shot(labels: np.ndarray, shots: int, seed: int) -> np.ndarray:
    """Indices of `shots` images per class (seeded)."""
    rng = np.random.default_rng(seed)
    keep = [rng.permutation(np.flatnonzero(labels == c))[:shots] for c in np.unique(labels)]
    return np.sort(np.concatenate(keep))


def candidates_per_class(paths: tuple[str, ...], classes: list[str]) -> list[list[dict[str, Any]]]:
    """Candidate records per class index, duplicates (same text) dropped."""
    groups: dict[str, list[dict[str, Any]]] = {}
    for path in paths:
        for name, records in descriptions_by_entity(read_jsonl(path)).items():
            groups.setdefault(name, []).extend(records)
    out = []
    for name in classes:
        seen, keep = set(), []
        for record in groups.get(name.lower(), []):
            if record["description"] not in seen:
                seen.add(record["description"])
                keep.append(record)
        out.append(keep)
    if not any(out):
        raise InvalidInput("no candidate text names a class of this data set (entity field vs class names)")
    return out


def run_ift(cfg: IFTConfig) -> dict[str, Any]:
    from evdsearch.clip_models import load_clip
    from evdsearch.evaluation.classification import image_embeddings, set_threads

    set_threads(cfg.threads)
    started = time.perf_counter()
    out = Path(cfg.out)
    clip = load_clip(cfg.model, device="cpu")
    splits = {s: open_split(cfg.data, s) for s in ("train", "val", "test")}
    emb = {s: image_embeddings(clip, sp) for s, sp in splits.items()}
    classes = splits["train"].classes
    tr = few_shot(splits["train"].labels, cfg.shots, cfg.seed)
    X, y = emb["train"][tr], splits["train"].labels[tr]
    Xv, yv = emb["val"], splits["val"].labels
    Xt, yt = emb["test"], splits["test"].labels

    ckpts = train_probe(X, y, len(classes), cfg.epochs, cfg.lr, seed=cfg.seed)
    (out / "checkpoints").mkdir(parents=True, exist_ok=True)
    for k, c in enumerate(ckpts):
        np.savez(out / "checkpoints" / f"epoch_{k + 1:03d}.npz", W=c.W, b=c.b, lr=c.lr)
    matrix = tracin(ckpts, X, y, Xv, yv)
    image_inf = (matrix * (y[:, None] == yv[None, :])).sum(axis=1)  # on its own class's val loss

    cands = candidates_per_class(cfg.candidates, classes)
    flat = [r["description"] for group in cands for r in group]
    text_emb = clip.encode_texts(flat)
    shifted = gap_shift(text_emb, text_emb.mean(axis=0), X.mean(axis=0))
    rng = np.random.default_rng(cfg.seed + 1)
    methods: dict[str, list[tuple[int, int, float]]] = {"IFT": [], "CLIP-only": [], "influence-only": [],
                                                         "random": []}  # (class, flat index, score)
    start = 0
    for c, group in enumerate(cands):
        idx = np.arange(start, start + len(group))
        start += len(group)
        if not len(group):
            continue
        own = X[y == c]
        if cfg.influence == "kernel":
            inf = text_influence(text_emb[idx], own, image_inf[y == c], cfg.tau)
        else:
            inf = tracin(ckpts, shifted[idx], np.full(len(idx), c), Xv[yv == c], yv[yv == c]).sum(axis=1)
        sim = text_emb[idx] @ normalize(own.mean(axis=0))
        for name, lam in (("IFT", cfg.weight), ("CLIP-only", 0.0), ("influence-only", 1.0)):
            s = ift_scores(inf, sim, lam)
            methods[name] += [(c, int(idx[i]), float(s[i])) for i in top_k(s, cfg.top_k)]
        methods["random"] += [(c, int(i), 0.0) for i in rng.permutation(idx)[: cfg.top_k]]

    base = ckpts[-1]
    kinds = [r.get("kind") or ("llm" if r.get("source", "").startswith("llm") else r.get("source", "?"))
             for group in cands for r in group]
    rows = [{"method": "image probe only", "zero_shot": None,
             "transfer": accuracy(predict_probe(base, Xt), yt), "kinds": {}}]
    for name, picked in methods.items():
        cls = np.array([c for c, _, _ in picked])
        ids = np.array([i for _, i, _ in picked])
        scores = np.array([s for _, _, s in picked])
        class_emb = np.stack([normalize(text_emb[ids[cls == c]].mean(axis=0)) if (cls == c).any()
                              else np.zeros(text_emb.shape[1], np.float32) for c in range(len(classes))])
        weights = np.concatenate([selection_weights(scores[cls == c]) for c in np.unique(cls)])
        order = np.concatenate([np.flatnonzero(cls == c) for c in np.unique(cls)])
        tuned = transfer(base, shifted[ids[order]], cls[order], weights if name != "random" else np.ones(len(order)),
                         cfg.transfer_epochs, cfg.transfer_lr, cfg.seed)
        rows.append({"method": name, "zero_shot": accuracy(predict(Xt, class_emb), yt),
                     "transfer": accuracy(predict_probe(tuned, Xt), yt),
                     "kinds": dict(Counter(kinds[i] for i in ids))})
    origin = [r for group in cands for r in group]
    records = [{"entity": classes[c], "description": flat[i], "source": "ift", "score": round(s, 4),
                "kind": origin[i].get("kind", ""), "candidate_source": origin[i].get("source", "")}
               for c, i, s in methods["IFT"]]
    write_jsonl(out / "ift.jsonl", records)
    return {"config": asdict(cfg), "classes": len(classes), "train_images": len(tr), "val_images": len(yv),
            "test_images": len(yt), "candidates": len(flat), "probe_loss": [cross_entropy(c, X, y) for c in ckpts],
            "rows": rows, "top_examples": _examples(records, classes[:3]),
            "seconds": round(time.perf_counter() - started, 1)}


def _examples(records: list[dict[str, Any]], names: list[str], n: int = 3) -> dict[str, list[str]]:
    return {name: [r["description"] for r in records if r["entity"] == name][:n] for name in names}


def report_tables(result: dict[str, Any]) -> list[Any]:
    from evdsearch.plots import Table, fmt

    kinds = sorted({k for r in result["rows"] for k in r["kinds"]})
    rows = [[r["method"], fmt(r["zero_shot"]), fmt(r["transfer"])] + [str(r["kinds"].get(k, 0)) for k in kinds]
            for r in result["rows"]]
    cfg = result["config"]
    note = (f"top-{cfg['top_k']} texts per class out of {result['candidates']} candidates; probe on "
            f"{cfg['shots']} images/class; λ = {cfg['weight']}; test accuracy on {result['test_images']} images; "
            f"{result['seconds']} s")
    return [Table("IFT proponent texts: test accuracy (%)",
                  ["selection", "zero-shot with texts", "probe + text transfer"] + [f"# {k}" for k in kinds],
                  rows, note)]


def bar_plot(result: dict[str, Any]) -> Any:
    from evdsearch.plots import new_figure

    fig, (ax,) = new_figure()
    rows = result["rows"]
    x = np.arange(len(rows))
    ax.bar(x - 0.2, [r["zero_shot"] or 0 for r in rows], 0.4, label="zero-shot with selected texts")
    ax.bar(x + 0.2, [r["transfer"] for r in rows], 0.4, label="probe + text transfer")
    ax.set_xticks(x, [r["method"] for r in rows], rotation=20, ha="right")
    ax.set_ylabel("test accuracy (%)")
    ax.legend()
    return fig
