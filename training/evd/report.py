"""Print an EVD label report as tables (overall, per prompt, seen vs unseen entities)."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.table import Table

from evdsearch.training.evd.label import LABELS


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    console = console or Console()
    n = report["n_descriptions"]
    table = Table(title=f"EVD labels ({n} descriptions)")
    table.add_column("descriptions")
    for header in ("visual correct", "visual wrong", "visual vague", "non-visual"):
        table.add_column(header, justify="right")
    table.add_row("all", *(f"{report['labels'][lb]} ({report['fractions'][lb]:.0%})" for lb in LABELS))
    row_names = {"by_prompt": "prompt {}", "by_sample": "sample {}", "by_seen": "{} entities"}
    for title, name in row_names.items():
        for key, counts in report[title].items():
            table.add_row(name.format(key), *(str(counts[lb]) for lb in LABELS))
    console.print(table)
    kinds = report["kinds"]
    ents = report["entities"]
    console.print(f"kinds: visual {kinds['visual']}, non-visual {kinds['non_visual']}, wrong {kinds['wrong']}; "
                  f"entities with a correct visual description: {ents['with_a_correct_visual']}/{ents['described']}")
    if report["unknown_entities"]:
        console.print(f"[yellow]not in the world (skipped): {', '.join(report['unknown_entities'])}[/yellow]")
