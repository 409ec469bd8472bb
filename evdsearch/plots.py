"""Shared writers for benchmark results: Markdown and rich tables, matplotlib figures, JSON+MD+PNG bundles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

Row = Sequence[str]


@dataclass
class Table:
    """One table of strings, rendered both as Markdown (files) and rich (terminal)."""

    title: str
    header: list[str]
    rows: list[list[str]]
    note: str = ""  # printed under the Markdown table

    def markdown(self, level: int = 3) -> str:
        lines = [f"{'#' * level} {self.title}", "", "| " + " | ".join(self.header) + " |",
                 "|" + "|".join("---" if i == 0 else "---:" for i in range(len(self.header))) + "|"]
        lines += ["| " + " | ".join(row) + " |" for row in self.rows]
        if self.note:
            lines += ["", self.note]
        return "\n".join(lines) + "\n"

    def rich(self) -> Any:
        from rich.table import Table as RichTable

        table = RichTable(title=self.title)
        for i, name in enumerate(self.header):
            table.add_column(name, justify="left" if i == 0 else "right")
        for row in self.rows:
            table.add_row(*row)
        return table


def fmt(value: float | None, digits: int = 1) -> str:
    """A number for a table: thousands separators for big ones, '-' for missing."""
    if value is None or value != value:  # None or NaN
        return "-"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def new_figure(ncols: int = 1, width: float = 7.0, height: float = 4.5) -> tuple[Any, Any]:
    """A matplotlib (figure, axes) on the Agg backend, so benchmarks run headless; axes is a list."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, ncols, figsize=(width * ncols, height), squeeze=False)
    return fig, list(axes[0])


def save_figure(fig: Any, path: Path) -> Path:
    import matplotlib.pyplot as plt

    if fig.get_layout_engine() is None:  # a figure made with layout="constrained" lays itself out
        fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_bundle(out_dir: str | Path, stem: str, result: dict[str, Any], markdown: str,
                 figure: Any | None = None) -> dict[str, Path]:
    """Write STEM.json, STEM.md and (if given) STEM.png into `out_dir`, atomically; returns the paths."""
    from evdsearch.atomic import write_json_atomic, write_text_atomic

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"json": out / f"{stem}.json", "markdown": out / f"{stem}.md"}
    write_json_atomic(paths["json"], result)
    write_text_atomic(paths["markdown"], markdown)
    if figure is not None:
        paths["plot"] = save_figure(figure, out / f"{stem}.png")
    return paths


def print_report(tables: Sequence[Table], paths: dict[str, Path]) -> None:
    """Show the tables in the terminal and say where the files are."""
    from rich.console import Console

    console = Console() if Console().is_terminal else Console(width=160)
    for table in tables:
        console.print(table.rich())
    for kind, path in paths.items():
        print(f"{kind}: {path}")
