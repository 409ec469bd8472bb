"""A parsed filter checked against an index's schema (fields whitelisted, values typed), then evaluated over the
metadata columns with numpy into a boolean mask of index rows."""

from __future__ import annotations

import operator
from typing import Any

import numpy as np

from evdsearch.errors import InvalidInput
from evdsearch.filter_expr import And, Compare, InList, Node, Not, literal_text
from evdsearch.indexer.metadata import MetadataTable, Schema, to_epoch

ORDERED = ("int", "float", "str", "datetime")  # types that <, <=, >, >= apply to
OPERATORS = {"==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le, ">": operator.gt,
             ">=": operator.ge}


def field_type(schema: Schema, name: str) -> str:
    """The type of a field the filter names; InvalidInput listing the fields when it is unknown."""
    if name == "id":
        return "int"
    meta = schema.get(name)
    if meta is None:
        known = ", ".join(schema.describe())
        hint = "" if schema.fields else " (this index has no metadata: it was built before metadata existed; " \
                                        "rebuild it with `evdsearch index ... --force`)"
        raise InvalidInput(f"filter: unknown field {name!r}; this index has: {known}{hint}")
    return meta.type


def _typed(value: Any, kind: str, name: str, op: str) -> Any:
    """The literal as the column stores it (dates as epoch seconds), or InvalidInput naming field and value."""
    shown = literal_text(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise InvalidInput(f"filter: field {name!r} is bool; compare it with true or false, not {shown}")
        if op not in ("==", "!=", "in"):
            raise InvalidInput(f"filter: field {name!r} is bool; only ==, != and in apply, not {op}")
        return value
    if kind in ("int", "float"):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise InvalidInput(f"filter: field {name!r} is {kind}; {shown} is not a number")
        if name == "id" and not isinstance(value, int):
            raise InvalidInput(f"filter: field 'id' is an index id; {shown} is not an integer")
        return value
    if kind == "str":
        if not isinstance(value, str):
            raise InvalidInput(f"filter: field {name!r} is str; quote the value ({shown} is not a string)")
        return value
    if isinstance(value, str):  # datetime
        try:
            return to_epoch(value)
        except InvalidInput as err:
            raise InvalidInput(f"filter: field {name!r} is a datetime: {err}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise InvalidInput(f"filter: field {name!r} is a datetime; give an ISO 8601 date such as \"2024-05-01\"")
    return int(value // 1)


def bind(node: Node, schema: Schema) -> Node:
    """The tree with every field checked against `schema` and every value converted to its column's type."""
    if isinstance(node, Compare):
        kind = field_type(schema, node.field)
        if node.op not in ("==", "!=") and kind not in ORDERED:
            raise InvalidInput(f"filter: field {node.field!r} is {kind}; {node.op} does not apply")
        return Compare(node.field, node.op, _typed(node.value, kind, node.field, node.op))
    if isinstance(node, InList):
        kind = field_type(schema, node.field)
        return InList(node.field, tuple(_typed(v, kind, node.field, "in") for v in node.values))
    if isinstance(node, Not):
        return Not(bind(node.item, schema))
    return type(node)(tuple(bind(item, schema) for item in node.items))


def _compare(column: np.ndarray, op: str, value: Any) -> np.ndarray:
    return OPERATORS[op](column, value)


def _str_codes(vocab: list[str], op: str, values: list[str]) -> np.ndarray:
    """The codes (vocabulary positions) whose text satisfies `op` against the values (for `in`: equals one)."""
    if op == "in":
        wanted = set(values)
        return np.array([i for i, word in enumerate(vocab) if word in wanted], dtype=np.int64)
    check = OPERATORS[op]
    return np.array([i for i, word in enumerate(vocab) if check(word, values[0])], dtype=np.int64)


def _leaf(table: MetadataTable, name: str, op: str, values: list[Any]) -> np.ndarray:
    """Rows whose field satisfies `op` (for `in`, equals one of `values`); rows lacking the field never do."""
    if name == "id":
        ids = np.arange(table.count, dtype=np.int64)
        if op == "in":
            return np.isin(ids, np.array(values)) if values else np.zeros(table.count, dtype=bool)
        return _compare(ids, op, values[0])
    column = table.columns[name]
    present = np.asarray(column.present, dtype=bool)
    raw = np.asarray(column.values)
    if column.field.type == "str":
        codes = _str_codes(column.vocab or [], op, values)
        return present & np.isin(raw, codes)
    if column.field.type == "bool":
        raw = raw.astype(bool)
    if op == "in":
        return present & np.isin(raw, np.array(values)) if values else np.zeros(table.count, dtype=bool)
    return present & _compare(raw, op, values[0])


def evaluate(node: Node, table: MetadataTable) -> np.ndarray:
    """Boolean mask (count,) of the rows a bound tree keeps."""
    if isinstance(node, Compare):
        return _leaf(table, node.field, node.op, [node.value])
    if isinstance(node, InList):
        return _leaf(table, node.field, "in", list(node.values))
    if isinstance(node, Not):
        return ~evaluate(node.item, table)
    masks = [evaluate(item, table) for item in node.items]
    return np.logical_and.reduce(masks) if isinstance(node, And) else np.logical_or.reduce(masks)
