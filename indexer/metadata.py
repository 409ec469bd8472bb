"""Per-image metadata beside the index: a typed schema and one memory-mapped column per field.

Inside an index version folder: `metadata/schema.json` ({"format": 1, "count": N, "fields": [{"name", "type",
"source"}]}) and per field `NAME.values.npy` (int64 | float64 | int8 for bool | int32 codes for str) plus
`NAME.present.npy` (bool: whether the image has the field); str fields also have `NAME.vocab.json` (the sorted
distinct texts the codes index). Row r of every column is index id r, tombstones included. Folders written
before metadata existed have no `metadata/`: they open with an empty schema (only the built-in `id`).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np

from evdsearch.atomic import write_json_atomic
from evdsearch.errors import IncompatibleArtifact, InvalidInput
from evdsearch.filter_expr import FIELD_PATTERN, KEYWORDS

METADATA_DIR = "metadata"
SCHEMA_FILE = "schema.json"
FORMAT = 1
FIELD_TYPES = ("int", "float", "str", "bool", "datetime")  # datetime: int64 seconds since 1970 UTC
RESERVED = ("id",)  # the built-in field: the index id (row)
DTYPES = {"int": np.int64, "float": np.float64, "bool": np.int8, "datetime": np.int64, "str": np.int32}


@dataclass(frozen=True)
class MetaField:
    """One typed metadata field."""

    name: str  # an identifier: [A-Za-z_][A-Za-z0-9_]{0,63}, not a filter keyword, not `id`
    type: str  # one of FIELD_TYPES
    source: str = "user"  # builtin (split, folder, mtime, exif_date, camera) | user (a --metadata file)


@dataclass
class Schema:
    """The fields an index's images may carry, in column order."""

    fields: list[MetaField] = field(default_factory=list)

    def get(self, name: str) -> MetaField | None:
        return next((f for f in self.fields if f.name == name), None)

    def names(self) -> list[str]:
        return [f.name for f in self.fields]

    def describe(self) -> list[str]:
        """"name:type" per field, `id:int` first (what Info and error messages list)."""
        return ["id:int"] + [f"{f.name}:{f.type}" for f in self.fields]


def check_field_name(name: Any) -> str:
    if not isinstance(name, str) or not FIELD_PATTERN.fullmatch(name) or name.lower() in KEYWORDS \
            or name in RESERVED:
        raise InvalidInput(f"metadata field name {name!r} is not allowed: use a letter or _ then letters, digits "
                           f"or _ (at most 64), not a filter keyword ({', '.join(KEYWORDS)}) nor 'id'")
    return name


def to_epoch(value: Any) -> int:
    """Seconds since 1970 UTC from an ISO 8601 text (a date alone is midnight UTC) or a datetime."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError as err:
            raise InvalidInput(f"{value!r} is not an ISO 8601 date or time (e.g. 2024-05-01 or "
                               f"2024-05-01T12:00:00)") from err
    if not isinstance(value, datetime):
        raise InvalidInput(f"{value!r} is not a date")
    if value.tzinfo is None:
        value = value.replace(tzinfo=timezone.utc)
    return int(value.timestamp() // 1)


def coerce(value: Any, kind: str, name: str) -> Any:
    """A Python value of field type `kind` (what the columns store), or InvalidInput."""
    ok = {"int": isinstance(value, int) and not isinstance(value, bool),
          "float": isinstance(value, (int, float)) and not isinstance(value, bool),
          "bool": isinstance(value, bool), "str": isinstance(value, str),
          "datetime": isinstance(value, (str, datetime, int)) and not isinstance(value, bool)}[kind]
    if not ok:
        raise InvalidInput(f"metadata field {name!r} is {kind}; {value!r} is a {type(value).__name__}")
    if kind == "datetime":
        return int(value) if isinstance(value, int) else to_epoch(value)
    if kind == "float":
        return float(value)
    return value


def write_table(folder: Path, schema: Schema, rows: list[dict[str, Any]]) -> None:
    """metadata/ for `rows` (one dict per index row, values already of their field's type)."""
    out = folder / METADATA_DIR
    out.mkdir(parents=True, exist_ok=True)
    for meta in schema.fields:
        present = np.array([meta.name in row for row in rows], dtype=bool)
        values = [row.get(meta.name) for row in rows]
        if meta.type == "str":
            vocab = sorted({v for v in values if v is not None})
            code = {text: i for i, text in enumerate(vocab)}
            column = np.array([code[v] if v is not None else -1 for v in values], dtype=np.int32)
            (out / f"{meta.name}.vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
        else:
            column = np.array([v if v is not None else 0 for v in values], dtype=DTYPES[meta.type])
        np.save(out / f"{meta.name}.values.npy", column)
        np.save(out / f"{meta.name}.present.npy", present)
    write_json_atomic(out / SCHEMA_FILE, {"format": FORMAT, "count": len(rows),
                                          "fields": [asdict(f) for f in schema.fields]})


@dataclass
class Column:
    """One field's values for every row."""

    field: MetaField
    values: np.ndarray  # DTYPES[type], memory-mapped
    present: np.ndarray  # bool
    vocab: list[str] | None = None  # str fields: code -> text

    def value(self, row: int) -> Any:
        """The row's value as shown on a hit (a datetime field as an aware UTC datetime), or None."""
        if not self.present[row]:
            return None
        raw = self.values[row]
        kind = self.field.type
        if kind == "str":
            return self.vocab[int(raw)]
        if kind == "bool":
            return bool(raw)
        if kind == "datetime":
            return datetime.fromtimestamp(int(raw), timezone.utc)
        return float(raw) if kind == "float" else int(raw)


class MetadataTable:
    """The metadata of one index version, opened read-only (columns memory-mapped)."""

    def __init__(self, schema: Schema, columns: dict[str, Column], count: int) -> None:
        self.schema = schema
        self.columns = columns
        self.count = count  # rows (= index ids) the columns cover

    @classmethod
    def empty(cls, count: int) -> MetadataTable:
        return cls(Schema(), {}, count)

    @classmethod
    def open(cls, folder: Path, count: int) -> MetadataTable:
        """The table of an index version folder; an empty one when it has no metadata/ (older folders)."""
        meta_dir = Path(folder) / METADATA_DIR
        if not (meta_dir / SCHEMA_FILE).is_file():
            return cls.empty(count)
        try:
            info = json.loads((meta_dir / SCHEMA_FILE).read_text(encoding="utf-8"))
            schema = Schema([MetaField(**f) for f in info["fields"]])
        except (ValueError, KeyError, TypeError) as err:
            raise IncompatibleArtifact(f"{meta_dir / SCHEMA_FILE} cannot be read ({err}); rebuild the index") from err
        if info.get("format") != FORMAT or info.get("count") != count:
            raise IncompatibleArtifact(f"{meta_dir} holds format {info.get('format')} / {info.get('count')} rows; "
                                       f"the index has {count} rows; rebuild it with `evdsearch index ... --force`")
        columns = {}
        for meta in schema.fields:
            vocab_path = meta_dir / f"{meta.name}.vocab.json"
            vocab = json.loads(vocab_path.read_text(encoding="utf-8")) if meta.type == "str" else None
            columns[meta.name] = Column(meta, np.load(meta_dir / f"{meta.name}.values.npy", mmap_mode="r"),
                                        np.load(meta_dir / f"{meta.name}.present.npy", mmap_mode="r"), vocab)
        return cls(schema, columns, count)

    def row(self, row: int) -> dict[str, Any]:
        """The fields row `row` has, by name (datetime fields as aware UTC datetimes)."""
        values = {name: column.value(row) for name, column in self.columns.items()}
        return {name: value for name, value in values.items() if value is not None}

    def rows(self) -> list[dict[str, Any]]:
        """Every row, values as the columns store them (datetime as epoch seconds): for rewriting the table."""
        out: list[dict[str, Any]] = [{} for _ in range(self.count)]
        for name, column in self.columns.items():
            kind = column.field.type
            for r in np.flatnonzero(np.asarray(column.present)).tolist():
                raw = column.values[r]
                out[r][name] = (column.vocab[int(raw)] if kind == "str" else bool(raw) if kind == "bool"
                                else float(raw) if kind == "float" else int(raw))
        return out
