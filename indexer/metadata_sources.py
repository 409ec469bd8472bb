"""Where metadata comes from: built-in fields read from each image and its source, and a user's sidecar file.

Built-in: `split` (Karpathy source), `folder` (the image's folder relative to the source root), `mtime` (file
modification time), `exif_date` and `camera` (EXIF DateTimeOriginal / Make + Model, where present). A sidecar
(`index ... --metadata FILE`) is JSONL (one object a line) or CSV (a header row), keyed by a `path` column:
absolute, or relative to the source root (the image folder, or a Karpathy JSON's images root).
"""

from __future__ import annotations

import csv
import json
import os
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from evdsearch.errors import InvalidInput, NotFound
from evdsearch.indexer.metadata import FIELD_TYPES, MetaField, Schema, check_field_name, coerce, to_epoch

BUILTIN = (MetaField("split", "str", "builtin"), MetaField("folder", "str", "builtin"),
           MetaField("mtime", "datetime", "builtin"), MetaField("exif_date", "datetime", "builtin"),
           MetaField("camera", "str", "builtin"))
KEY = "path"  # the sidecar column naming the image
EXIF_DATE_TAGS = (0x9003, 0x0132)  # DateTimeOriginal (Exif IFD), DateTime (IFD0)
MAX_SIDECAR_BYTES = 1 << 30


def _exif(path: Path) -> dict[str, Any]:
    """exif_date and camera from the image's EXIF, when it has them (any decode problem: none)."""
    from PIL import Image

    out: dict[str, Any] = {}
    try:
        with Image.open(path) as image:
            exif = image.getexif()
            sub = exif.get_ifd(0x8769) if exif else {}
            for tag in EXIF_DATE_TAGS:
                text = sub.get(tag) or exif.get(tag)
                if isinstance(text, str) and text.strip():
                    moment = datetime.strptime(text.strip()[:19], "%Y:%m:%d %H:%M:%S")
                    out["exif_date"] = int(moment.replace(tzinfo=timezone.utc).timestamp())
                    break
            camera = " ".join(str(exif.get(t, "")).strip().strip("\x00") for t in (0x010F, 0x0110)).strip()
            if camera:
                out["camera"] = camera
    except Exception:  # noqa: BLE001 - EXIF is optional: an unreadable block only means no EXIF fields
        return out
    return out


def builtin_fields(path: Path, root: Path, split: str | None) -> dict[str, Any]:
    """The built-in fields of one image file."""
    row: dict[str, Any] = {}
    if split:
        row["split"] = split
    try:
        folder = path.parent.relative_to(root).as_posix()
        row["folder"] = "" if folder == "." else folder  # "": directly in the source folder
    except ValueError:  # not below the root: no folder rather than an absolute path (hit paths may be hidden)
        pass
    try:
        row["mtime"] = int(os.stat(path).st_mtime // 1)
    except OSError:
        pass
    row.update(_exif(path))
    return row


def builtin_rows(paths: list[Path], root: Path, splits: list[str | None], workers: int = 4) -> list[dict[str, Any]]:
    """Built-in fields for many images (EXIF headers read on a few threads)."""
    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        return list(pool.map(builtin_fields, paths, [root] * len(paths), splits))


def _infer(values: list[Any], name: str) -> str:
    """The field type of a column's values (JSON types; CSV texts that all parse as numbers / booleans / dates)."""
    kinds = set()
    for value in values:
        if isinstance(value, bool):
            kinds.add("bool")
        elif isinstance(value, int):
            kinds.add("int")
        elif isinstance(value, float):
            kinds.add("float")
        elif isinstance(value, str):
            kinds.add("str")
        else:
            raise InvalidInput(f"metadata field {name!r}: {value!r} is a {type(value).__name__}; use a number, "
                               f"text, true/false or an ISO 8601 date")
    if kinds <= {"int"}:
        return "int"
    if kinds <= {"int", "float"}:
        return "float"
    if len(kinds) == 1:
        kind = kinds.pop()
        if kind == "str" and all(_is_date(v) for v in values):
            return "datetime"
        return kind
    raise InvalidInput(f"metadata field {name!r} mixes types ({', '.join(sorted(kinds))}); give one type per field")


def _is_date(text: str) -> bool:
    if len(text) < 10 or text[4:5] != "-":
        return False
    try:
        to_epoch(text)
    except InvalidInput:
        return False
    return True


def _csv_value(text: str) -> Any:
    """A CSV cell: empty is absent; integers, numbers and true/false become typed; the rest stays text."""
    if text == "":
        return None
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            value = cast(text)
        except ValueError:
            continue
        return value if cast is int or value == value and abs(value) != float("inf") else text
    return text


def read_sidecar(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a JSONL or CSV sidecar, each with its `path` key (values typed as the file gives them)."""
    path = Path(path)
    if not path.is_file():
        raise NotFound(f"--metadata file not found: {path}")
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise InvalidInput(f"--metadata file {path} is larger than 1 GiB")
    rows: list[dict[str, Any]] = []
    with path.open(encoding="utf-8", newline="") as handle:
        if path.suffix.lower() == ".csv":
            reader = csv.DictReader(handle)
            if reader.fieldnames is None or KEY not in reader.fieldnames:
                raise InvalidInput(f"--metadata CSV {path} needs a header row with a {KEY!r} column")
            rows = [{k: (v if k == KEY else _csv_value(v)) for k, v in r.items() if k} for r in reader]
        else:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as err:
                    raise InvalidInput(f"--metadata {path} line {number} is not JSON ({err.msg})") from err
                if not isinstance(row, dict):
                    raise InvalidInput(f"--metadata {path} line {number} is not a JSON object")
                rows.append(row)
    for number, row in enumerate(rows, 1):
        if not isinstance(row.get(KEY), str) or not row[KEY]:
            raise InvalidInput(f"--metadata {path} row {number} has no {KEY!r} (the image's path)")
    return rows


def sidecar_by_path(rows: list[dict[str, Any]], root: Path) -> dict[str, dict[str, Any]]:
    """Sidecar rows keyed by the absolute image path they name (relative paths are below `root`)."""
    out: dict[str, dict[str, Any]] = {}
    for row in rows:
        given = Path(row[KEY]).expanduser()
        key = str((given if given.is_absolute() else root / given).resolve())
        out[key] = {k: v for k, v in row.items() if k != KEY and v is not None}
    return out


def user_schema(rows: list[dict[str, Any]], builtin: tuple[MetaField, ...] = BUILTIN) -> list[MetaField]:
    """Typed fields of the sidecar rows, in first-seen order; a sidecar field overrides a built-in one's values
    only when their types agree."""
    names = list(dict.fromkeys(k for row in rows for k in row))
    out = []
    for name in names:
        check_field_name(name)
        kind = _infer([row[name] for row in rows if name in row], name)
        known = next((f for f in builtin if f.name == name), None)
        if known is not None and known.type != kind and not (known.type == "float" and kind == "int"):
            raise InvalidInput(f"metadata field {name!r} is a built-in {known.type} field; the sidecar gives {kind}")
        out.append(known or MetaField(name, kind, "user"))
    return out


def merge_schema(old: Schema, extra: list[MetaField]) -> Schema:
    """`old` plus the fields of `extra` it lacks; a field given again with another type is refused."""
    fields = list(old.fields)
    for meta in extra:
        known = old.get(meta.name)
        if known is None:
            fields.append(meta)
        elif known.type != meta.type and not (known.type == "float" and meta.type == "int"):
            raise InvalidInput(f"metadata field {meta.name!r} is {known.type} in this index; the new rows give "
                               f"{meta.type}")
    return Schema(fields)


def typed_rows(schema: Schema, rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each row's values coerced to their field's type (only fields of `schema`; unknown keys refused)."""
    out = []
    for row in rows:
        typed = {}
        for name, value in row.items():
            meta = schema.get(name)
            if meta is None:
                raise InvalidInput(f"metadata field {name!r} is not in the schema")
            if meta.type not in FIELD_TYPES:
                raise InvalidInput(f"metadata field {name!r} has unknown type {meta.type!r}")
            typed[name] = coerce(value, meta.type, name)
        out.append(typed)
    return out


def source_metadata(records: list[Any], root: Path, sidecar: str | Path | None,
                    base: Schema | None = None) -> tuple[Schema, list[dict[str, Any]], int]:
    """(schema, typed rows, sidecar rows that matched no image) for `records` (ImageRecords, in row order).

    `base`: the schema of the index the rows join (index add), extended with any new field."""
    rows = builtin_rows([r.path for r in records], root, [r.split for r in records])
    extra: list[MetaField] = []
    unmatched = 0
    if sidecar is not None:
        given = read_sidecar(sidecar)
        by_path = sidecar_by_path(given, root)
        extra = user_schema(list(by_path.values()))
        matched = 0
        for record, row in zip(records, rows, strict=True):
            found = by_path.get(str(Path(record.path).resolve()))
            if found is not None:
                row.update(found)
                matched += 1
        unmatched = len(by_path) - matched
    present = [f for f in BUILTIN if any(f.name in row for row in rows)]
    schema = merge_schema(base or Schema(), present)
    schema = merge_schema(schema, extra)
    return schema, typed_rows(schema, rows), unmatched
