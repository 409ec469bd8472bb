"""Knowledge-base records: import records ({"entity", "description", "source", "score", "kind"}, JSONL files),
calibrated weights, import reports and counts."""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.indexer.entity_names import display_name, normalize_entity

MAX_KEY_BYTES = 500  # LMDB's key limit is 511 bytes; normalised entity names are the keys


@dataclass(frozen=True)
class KBRecord:
    """One validated description of one entity, ready to store."""

    entity: str  # normalised name (the LMDB key)
    name: str  # display name as first given
    text: str  # the visual description
    source: str  # where it came from (encyclopedia, an LLM name, ...)
    score: float  # relevance; higher ranks first
    kind: str = ""  # optional label, e.g. visual / non_visual / wrong in the shapes world


@dataclass(frozen=True)
class EntityWeight:
    """The calibrated fusion weight of one entity: how much of the rewritten query to use."""

    alpha: float  # weight of the rewritten query in [0, 1] for queries naming this entity
    method: str  # how it was obtained: "captions" (grid search on captioned images) or "zero-shot"
    evidence: int  # captions it was calibrated on (0 for zero-shot)
    familiarity: float | None = None  # zero-shot familiarity signal of the name (higher: CLIP knows it)


@dataclass
class ImportReport:
    """What one `import_records` call changed."""

    records: int  # records read
    added: int  # descriptions written
    duplicates: int  # records skipped: same (entity, text, source) already stored or repeated
    new_entities: int  # entities that did not exist before


@dataclass
class KBStats:
    """Counts over the whole knowledge base."""

    entities: int
    descriptions: int
    sources: dict[str, int] = field(default_factory=dict)  # descriptions per source
    kinds: dict[str, int] = field(default_factory=dict)  # descriptions per kind ("" = no kind)


def _text_field(obj: Mapping[str, Any], key: str, where: str, required: bool = True) -> str:
    value = obj.get(key, None if required else "")
    if value is None:
        raise InvalidInput(f"{where}: missing field {key!r}")
    if not isinstance(value, str) or (required and not value.strip()):
        raise InvalidInput(f"{where}: field {key!r} must be a non-empty string, got {value!r}")
    return value.strip()


def validate_record(obj: Any, where: str) -> KBRecord:
    """Check one import record; `where` (e.g. "file.jsonl line 3") starts every error message."""
    if not isinstance(obj, Mapping):
        raise InvalidInput(f"{where}: expected a JSON object, got {type(obj).__name__}")
    name = _text_field(obj, "entity", where)
    entity = normalize_entity(name)
    if not entity:
        raise InvalidInput(f"{where}: entity {name!r} has no letters or digits")
    if len(entity.encode("utf-8")) > MAX_KEY_BYTES:
        raise InvalidInput(f"{where}: entity name is longer than {MAX_KEY_BYTES} bytes")
    score = obj.get("score")
    # bool is an int subclass; a true/false score is almost surely a mistake in the file.
    if isinstance(score, bool) or not isinstance(score, int | float) or not math.isfinite(score):
        raise InvalidInput(f"{where}: field 'score' must be a finite number, got {score!r}")
    return KBRecord(
        entity=entity,
        name=display_name(name),
        text=_text_field(obj, "description", where),
        source=_text_field(obj, "source", where),
        score=float(score),
        kind=_text_field(obj, "kind", where, required=False),
    )


def read_import_file(path: str | Path) -> list[dict[str, Any]]:
    """Parse and validate a JSONL import file; the first bad line raises, naming its line number."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"import file not found: {path}")
    records = []
    with path.open("rb") as handle:
        for lineno, raw in enumerate(handle, 1):
            where = f"{path} line {lineno}"
            try:
                line = raw.decode("utf-8")
                if not line.strip():
                    continue  # blank lines (e.g. a trailing one) are not records
                obj = json.loads(line)
            except UnicodeDecodeError as err:
                raise InvalidInput(f"{where}: not UTF-8 text ({err.reason})") from err
            except json.JSONDecodeError as err:
                raise InvalidInput(f"{where}: not valid JSON ({err.msg} at column {err.colno})") from err
            validate_record(obj, where)
            records.append(obj)
    return records
