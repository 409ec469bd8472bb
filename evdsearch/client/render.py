"""Terminal rendering of a SearchResponse for `evdsearch search`: a rich table, or JSON."""

from __future__ import annotations

import json
from typing import Any

STAGE_ORDER = ("rewrite", "encode", "search", "hydrate")  # display order; stages a newer server adds follow


def print_json(resp: Any) -> None:
    """The response as JSON with proto field names (bytes-free, so always printable)."""
    from google.protobuf.json_format import MessageToDict

    print(json.dumps(MessageToDict(resp, preserving_proto_field_name=True), indent=2, ensure_ascii=False))


def short_uri(uri: str) -> str:
    """A local path relative to the working directory when it lies below it, so the table stays readable."""
    from pathlib import Path

    try:
        return str(Path(uri).relative_to(Path.cwd()))
    except ValueError:
        return uri


def hits_table(resp: Any, query: str) -> Any:
    from rich.table import Table

    table = Table(title=f"{len(resp.hits)} hits for {query!r}", title_justify="left")
    with_metadata = any(hit.metadata for hit in resp.hits)
    columns = [("#", "right"), ("id", "right"), ("score", "right"), ("original", "right"), ("rewritten", "right"),
               ("uri", "left"), ("caption", "left")] + ([("metadata", "left")] if with_metadata else [])
    for name, justify in columns:
        table.add_column(name, justify=justify, overflow="fold")
    for rank, hit in enumerate(resp.hits, 1):
        caption = hit.captions[0] if hit.captions else ""
        row = [str(rank), str(hit.id), f"{hit.score:.4f}", f"{hit.original_score:.4f}",
               f"{hit.rewritten_score:.4f}", short_uri(hit.uri), caption]
        table.add_row(*row, *([metadata_text(hit.metadata)] if with_metadata else []))
    return table


def metadata_text(metadata: Any) -> str:
    """`name=value` per field, sorted by name (a map of MetadataValue messages)."""
    parts = []
    for name in sorted(metadata):
        value = metadata[name]
        kind = value.WhichOneof("value")
        shown = getattr(value, kind) if kind else ""
        parts.append(f"{name}={shown:.4g}" if kind == "float_value" else f"{name}={shown}")
    return " ".join(parts)


def explanation_lines(ex: Any) -> list[str]:
    """Entities, descriptions per entity, rewritten query and stage timings, as plain lines."""
    lines = []
    found = ", ".join(f"{e.name} ('{e.text}' at {e.start}-{e.end})" for e in ex.entities)
    lines.append(f"entities: {found or 'none found'}")
    for group in ex.descriptions:
        lines.append(f"  {group.entity}:")
        lines += [f"    - {d.text}  [{d.source}, {d.score:.2f}]" for d in group.descriptions]
    lines.append(f"rewritten query: {ex.rewritten_query or '(no rewrite)'}")
    lines += [f"  averaged with: {variant}" for variant in ex.rewrite_variants]
    if ex.HasField("alpha"):
        lines.append(f"alpha (weight of the rewritten query): {ex.alpha:.2f}")
    for term in ex.terms:
        alpha = f", alpha {term.alpha:.2f}" if term.HasField("alpha") else ""
        lines.append(f"term {term.text!r} weight {term.weight:+g}{alpha}: {term.rewritten_query}")
    if ex.filter:
        lines.append(f"filter: {ex.filter} ({ex.filter_matches} images match)")
    if ex.search_plan:
        lines.append(f"search: {ex.search_plan}")
    stages = [s for s in STAGE_ORDER if s in ex.timings_ms] + sorted(set(ex.timings_ms) - set(STAGE_ORDER))
    lines.append("timings: " + ", ".join(f"{s} {ex.timings_ms[s]:.1f} ms" for s in stages)
                 + f" (total {sum(ex.timings_ms[s] for s in stages):.1f} ms)")
    return lines


def print_response(resp: Any, query: str, explain: bool) -> None:
    from rich.console import Console

    console = Console()
    console.print(hits_table(resp, query))
    if explain and resp.HasField("explanation"):
        for line in explanation_lines(resp.explanation):
            console.print(line, markup=False, highlight=False)
