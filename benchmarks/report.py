"""Report rendering for benchmark results: one row list, shown as a rich table or written as Markdown."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def retrieval_rows(result: dict[str, Any]) -> tuple[list[str], list[list[str]]]:
    """Header and rows: one row per (mode, caption subset); i2t only for the whole split."""
    ks = result["ks"]
    header = ["mode", "captions", "n"] + [f"t2i R@{k}" for k in ks] + [f"i2t R@{k}" for k in ks]
    rows = []
    for mode, scores in result["modes"].items():
        rows.append([mode, "all", str(result["n_captions"])]
                    + [f"{scores['t2i'][f'R@{k}']:.3f}" for k in ks] + [f"{scores['i2t'][f'R@{k}']:.3f}" for k in ks])
        for kind, sub in scores["by_kind"].items():
            rows.append([mode, kind, str(sub["n"])] + [f"{sub['t2i'][f'R@{k}']:.3f}" for k in ks] + ["-"] * len(ks))
    return header, rows


def title(result: dict[str, Any]) -> str:
    model = result["model"]
    name = Path(model["model"]).name + (f" / {model['pretrained']}" if model.get("pretrained") else "")
    return (f"Retrieval recall: {result['dataset']} {result['split']} ({result['n_images']} images, "
            f"{result['n_captions']} captions), model {name}")


def markdown(result: dict[str, Any]) -> str:
    """A Markdown section with the recall table (for docs and PR comments)."""
    header, rows = retrieval_rows(result)
    lines = [f"### {title(result)}", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    lines += ["", f"Model fingerprint `{result['model']['fingerprint'][:16]}`; text->image per caption kind is "
              "scored against all images of the split; image->text counts a hit when any of the image's "
              "captions is in the top K (CLIP_benchmark).", ""]
    return "\n".join(lines)


def rich_table(result: dict[str, Any]) -> Any:
    """The same rows as a rich Table for the terminal."""
    from rich.table import Table

    header, rows = retrieval_rows(result)
    table = Table(title=title(result))
    for i, name in enumerate(header):
        table.add_column(name, justify="left" if i < 2 else "right")
    for row in rows:
        table.add_row(*row)
    return table


def plot(result: dict[str, Any], path: str | Path) -> Path:
    """Grouped bars: text->image R@1 per caption subset (all + each kind), one bar per mode."""
    from evdsearch.plots import new_figure, save_figure

    modes = list(result["modes"])
    subsets = ["all"] + list(next(iter(result["modes"].values()))["by_kind"])
    fig, (ax,) = new_figure(width=max(6.0, 1.6 * len(subsets) * max(1, len(modes)) / 2))
    width = 0.8 / len(modes)
    for i, mode in enumerate(modes):
        scores = result["modes"][mode]
        values = [scores["t2i"]["R@1"] if s == "all" else scores["by_kind"][s]["t2i"]["R@1"] for s in subsets]
        bars = ax.bar([j + i * width for j in range(len(subsets))], values, width, label=mode)
        ax.bar_label(bars, fmt="%.2f", fontsize=7)
    ax.set_xticks([j + width * (len(modes) - 1) / 2 for j in range(len(subsets))], subsets)
    ax.set_ylabel("text->image R@1")
    ax.set_ylim(0, 1.05)
    ax.set_title(title(result), fontsize=9)
    ax.legend(title="mode", loc="upper left", bbox_to_anchor=(1.0, 1.0))  # beside the bars, never over them
    return save_figure(fig, Path(path))
