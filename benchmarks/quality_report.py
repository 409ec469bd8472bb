"""Table and plot of a `bench quality` report: R@1 / R@5 per caption kind with intervals and paired tests."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.benchmarks.quality import KINDS


def _cell(cell: dict[str, Any], K: int) -> str:
    r = cell[f"R@{K}"]
    text = f"{r['mean']:.3f} [{r['ci'][0]:.3f}, {r['ci'][1]:.3f}]"
    if K == 1 and "delta" in r:
        star = "*" if r["p_vs_original"] < 0.05 else ""
        text += f" ({r['delta'] * 100:+.1f}{star})"
    return text


def markdown(report: dict[str, Any]) -> str:
    """R@1 (with delta vs original, * = McNemar p < 0.05) and R@5 per caption kind, mean over worlds [95 % CI]."""
    names = ", ".join(w["name"] for w in report["worlds"])
    lines = [f"### Retrieval through the serving path: {report['split']} split, mean over {len(report['worlds'])} "
             f"world(s) ({names})", "",
             "| setting | " + " | ".join(f"{k} R@1" for k in KINDS) + " | all R@5 | mean alpha |",
             "|---" * (len(KINDS) + 3) + "|"]
    for label, entry in report["table"].items():
        cells = [_cell(entry["by_kind"][k], 1) for k in KINDS] + [_cell(entry["by_kind"]["all"], 5)]
        alphas = [a for a in entry["alpha_mean"] if a is not None]
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {np.mean(alphas):.2f} |" if alphas else
                     f"| {label} | " + " | ".join(cells) + " | - |")
    first = next(iter(report["table"].values()))["by_kind"]
    lines += ["", "Captions: " + ", ".join(f"{k} {first[k]['n']}" for k in KINDS) + f". Bootstrap 95 % intervals "
              f"({report['bootstrap']} resamples of the captions within each world); (+x.x) is the R@1 change vs "
              "original in points, * where the exact McNemar test on the same captions gives p < 0.05. "
              "mean alpha: the weight of the rewritten query averaged over captions that were rewritten."]
    if report["paired"]:
        lines += ["", "| paired test (R@1) | kind | R@1 a | R@1 b | only a | only b | McNemar p |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {p['a']} vs {p['b']} | {p['kind']} | {p['r1_a']:.3f} | {p['r1_b']:.3f} | {p['a_only']} | "
                  f"{p['b_only']} | {p['p']:.3g} |" for p in report["paired"]]
    return "\n".join(lines) + "\n"


def plot(report: dict[str, Any], path: Path) -> None:
    """Grouped bars: R@1 per caption kind and setting, with the 95 % intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = list(report["table"])
    fig, ax = plt.subplots(figsize=(10, 4.5))
    width = 0.8 / max(1, len(labels))
    for i, label in enumerate(labels):
        cells = [report["table"][label]["by_kind"][k]["R@1"] for k in KINDS]
        means = [c["mean"] for c in cells]
        err = [[m - c["ci"][0] for m, c in zip(means, cells, strict=True)],
               [c["ci"][1] - m for m, c in zip(means, cells, strict=True)]]
        ax.bar(np.arange(len(KINDS)) + i * width, means, width, yerr=err, capsize=2, label=label)
    ax.set_xticks(np.arange(len(KINDS)) + 0.4 - width / 2, KINDS)
    ax.set_ylabel(f"text->image R@1 ({report['split']}), mean over worlds")
    ax.set_title(f"Serving-path recall, {len(report['worlds'])} world(s)"
                 + (f" - {report['machine']}" if report.get("machine") else ""), fontsize=10)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)


def load_report(path: str | Path) -> dict[str, Any]:
    return json.loads(Path(path).read_text())
