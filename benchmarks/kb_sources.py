"""`bench kb-sources`: one table of several knowledge bases on the same worlds, from their `bench quality` reports.

Each source (the encyclopedia, an LLM's descriptions, ...) is built and measured on its own (a DEQR + PRO
rewriter per KB), so the comparison is assembled from one quality.json per source: the original row
(identical in all of them, checked), then each source's chosen rows, and how much of a reference source's
unseen-entity gain each one recovers.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.plots import Table, new_figure

KINDS = ("attribute", "seen_entity", "unseen_entity", "all")


@dataclass(frozen=True)
class SourceReport:
    """One knowledge base's `bench quality` report."""

    name: str  # e.g. encyclopedia, qwen2.5-1.5b, smollm2
    report: dict[str, Any]  # quality.json


def load_sources(specs: list[str]) -> list[SourceReport]:
    """NAME=PATH (a quality.json or the folder holding it) for each source; same worlds in every one. Reports
    given under the same NAME (e.g. its template rows and its PRO rows) are merged into one table."""
    sources: list[SourceReport] = []
    for spec in specs:
        name, sep, path = spec.partition("=")
        if not sep or not name or not path:
            raise InvalidInput(f"--source {spec!r}: expected NAME=QUALITY_JSON")
        file = Path(path) / "quality.json" if Path(path).is_dir() else Path(path)
        if not file.is_file():
            raise NotFound(f"--source {name}: no quality report at {file} (run `evdsearch bench quality` first)")
        report = json.loads(file.read_text(encoding="utf-8"))
        known = next((s for s in sources if s.name == name), None)
        if known is None:
            sources.append(SourceReport(name, report))
        elif _world_keys(report) != _world_keys(known.report):
            raise InvalidInput(f"--source {name}: its reports were measured on different worlds")
        else:
            known.report["table"] = {**known.report["table"], **report["table"]}
    worlds = {_world_keys(s.report) for s in sources}
    if len(worlds) != 1:
        raise InvalidInput(f"the sources were measured on different worlds: {sorted(worlds)}")
    return sources


def _cell(entry: dict[str, Any], kind: str) -> dict[str, Any]:
    return entry["by_kind"][kind]["R@1"]


def compare(sources: list[SourceReport], rows: list[str], reference: str) -> dict[str, Any]:
    """The merged table: original once, then each source's `rows`; gains and the share of `reference`'s gain."""
    original = sources[0].report["table"]["original"]
    for source in sources[1:]:
        other = source.report["table"]["original"]
        if any(abs(_cell(other, k)["mean"] - _cell(original, k)["mean"]) > 1e-9 for k in KINDS):
            raise InvalidInput(f"{source.name}'s original row differs from {sources[0].name}'s: not the same worlds "
                               "and CLIPs")
    for row in rows:  # a source may lack a row (not every KB got a trained rewriter); every source may not
        if all(row not in source.report["table"] for source in sources):
            raise InvalidInput(f"no source has the row {row!r} (the first's rows: "
                               f"{', '.join(sources[0].report['table'])})")
    table: dict[str, Any] = {"original (no KB)": {k: _cell(original, k) for k in KINDS}}
    missing = []
    for source in sources:
        for row in rows:
            entry = source.report["table"].get(row)
            if entry is None:
                missing.append(f"{source.name}: {row}")
                continue
            table[f"{source.name}: {row}"] = {k: _cell(entry, k) for k in KINDS}
    base_unseen = _cell(original, "unseen_entity")["mean"]
    for row in rows:
        ref = table.get(f"{reference}: {row}")
        gain = ref["unseen_entity"]["mean"] - base_unseen if ref else None
        for source in sources:
            label = f"{source.name}: {row}"
            if label not in table:
                continue
            share = (table[label]["unseen_entity"]["mean"] - base_unseen) / gain if gain else None
            table[label]["share_of_reference_unseen_gain"] = share
    return {"benchmark": "kb-sources", "worlds": [_world_label(w) for w in sources[0].report["worlds"]],
            "sources": [s.name for s in sources], "rows": rows, "reference": reference, "table": table,
            "not_measured": missing}


def markdown_table(result: dict[str, Any]) -> Table:
    header = ["knowledge base: setting", *(f"{k} R@1" for k in KINDS), f"share of {result['reference']}'s unseen gain"]
    body = []
    for label, cells in result["table"].items():
        text = []
        for kind in KINDS:
            cell = cells[kind]
            value = f"{cell['mean']:.3f} [{cell['ci'][0]:.3f}, {cell['ci'][1]:.3f}]"
            if "delta" in cell:
                value += f" ({cell['delta'] * 100:+.1f}{'*' if cell.get('p_vs_original', 1) < 0.05 else ''})"
            text.append(value)
        share = cells.get("share_of_reference_unseen_gain")
        body.append([label, *text, "-" if share is None else f"{share * 100:.0f} %"])
    note = (f"Mean over worlds {', '.join(result['worlds'])} (test split) [bootstrap 95 % interval]; (+x.x): R@1 "
            "change vs original in points, * McNemar p < 0.05. Each knowledge base has its own calibration and "
            "its own DEQR / SFT / PRO rewriter; nothing else differs."
            + (f" Not measured: {'; '.join(result['not_measured'])}." if result.get("not_measured") else ""))
    return Table("Knowledge bases side by side (R@1)", header, body, note)


def figure(result: dict[str, Any]) -> Any:
    fig, (ax,) = new_figure(width=10, height=4.5)
    labels = list(result["table"])
    width = 0.8 / len(labels)
    for i, label in enumerate(labels):
        cells = [result["table"][label][k] for k in KINDS]
        means = [c["mean"] for c in cells]
        errors = [[m - c["ci"][0] for m, c in zip(means, cells, strict=True)],
                  [c["ci"][1] - m for m, c in zip(means, cells, strict=True)]]
        ax.bar([k + (i - len(labels) / 2 + 0.5) * width for k in range(len(KINDS))], means, width, yerr=errors,
               label=label, capsize=2)
    ax.set_xticks(range(len(KINDS)), [k.replace("_", " ") for k in KINDS])
    ax.set_ylabel("R@1")
    ax.set_title(f"Knowledge bases on worlds {', '.join(result['worlds'])}")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    return fig


def _world_keys(report: dict) -> tuple[str, ...]:
    """What identifies a report's worlds: each world's data folder with links resolved (sources built in their
    own roots over one shared world compare equal), else its name."""
    return tuple(os.path.realpath(w["data"]) if w.get("data") else w["name"] for w in report["worlds"])


def _world_label(world: dict) -> str:
    """The shared world's folder (s7311 for s7311/kb-llm/world -> s7311/world), else the report's name."""
    return Path(os.path.realpath(world["data"])).parent.name if world.get("data") else world["name"]
