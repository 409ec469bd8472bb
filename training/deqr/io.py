"""Read a DEQR folder: records best-first, with a format-version check."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from evdsearch.errors import IncompatibleArtifact, NotFound
from evdsearch.training.deqr.config import FORMAT, FORMAT_VERSION, RECORDS_FILE, STATS_FILE


def read_stats(folder: str | Path) -> dict[str, Any]:
    """stats.json of a DEQR folder, after checking its format and version."""
    path = Path(folder) / STATS_FILE
    if not path.is_file():
        raise NotFound(f"{folder} is not a DEQR folder (no {STATS_FILE}); build one with `evdsearch train deqr`")
    stats = json.loads(path.read_text(encoding="utf-8"))
    if stats.get("format") != FORMAT or stats.get("format_version") != FORMAT_VERSION:
        raise IncompatibleArtifact(
            f"{folder}: DEQR format {stats.get('format')} v{stats.get('format_version')}, expected "
            f"{FORMAT} v{FORMAT_VERSION}; rebuild it with `evdsearch train deqr`")
    return stats


def read_records(folder: str | Path, limit: int | None = None) -> Iterator[dict[str, Any]]:
    """DEQR records ({"input", "caption", "candidates": [{"text", ...}] best first, ...})."""
    read_stats(folder)
    with open(Path(folder) / RECORDS_FILE, encoding="utf-8") as handle:
        for count, line in enumerate(handle):
            if limit is not None and count >= limit:
                return
            if line.strip():
                yield json.loads(line)


def write_deqr(folder: str | Path, records: list[dict[str, Any]], extra_stats: dict[str, Any] | None = None) -> Path:
    """Write a DEQR folder from records already ranked (tools and tests; `build_deqr` streams its own)."""
    from evdsearch.atomic import write_json_atomic, write_text_atomic

    folder = Path(folder)
    write_text_atomic(folder / RECORDS_FILE, "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    write_json_atomic(folder / STATS_FILE, {"format": FORMAT, "format_version": FORMAT_VERSION,
                                            "n_captions": len(records), **(extra_stats or {})})
    return folder
