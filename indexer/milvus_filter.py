"""A bound filter tree written as a Milvus boolean expression: fields whitelisted by the schema, values quoted.

Metadata lives in the collection's dynamic field under `m_<name>` keys (so a user field never collides with
the `id`, `vector` and `uri` columns); `id` is the primary key. Every comparison on a metadata key is guarded
by `exists`, so a row lacking the field compares false (as in the FAISS backend), also under `not`.
"""

from __future__ import annotations

import math

from evdsearch.errors import InvalidInput
from evdsearch.filter_expr import FIELD_PATTERN, And, Compare, InList, Node, Not, Or, Value, quote

PREFIX = "m_"  # dynamic-field key of a metadata field


def key(field: str) -> str:
    """The collection key of a field (whitelisted names only: the tree was bound to the schema)."""
    if field == "id":
        return "id"
    if not FIELD_PATTERN.fullmatch(field):
        raise InvalidInput(f"filter: {field!r} is not a field name")
    return PREFIX + field


def value_text(value: Value) -> str:
    """A literal in Milvus syntax: strings quoted and escaped, numbers finite, booleans lower case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        if any(ord(c) < 0x20 for c in value):
            raise InvalidInput("filter: control characters are not allowed in values")
        return quote(value)
    if isinstance(value, float) and not math.isfinite(value):
        raise InvalidInput("filter: numbers must be finite")
    return repr(value)


def _guarded(field: str, text: str) -> str:
    return text if field == "id" else f"(exists {key(field)} and {text})"


def milvus_expression(node: Node) -> str:
    """The Milvus filter of a tree already bound to the index's schema (values typed, dates as epoch seconds)."""
    if isinstance(node, Compare):
        return _guarded(node.field, f"{key(node.field)} {node.op} {value_text(node.value)}")
    if isinstance(node, InList):
        if not node.values:
            return "(id < 0)"  # nothing is in an empty list (ids are never negative)
        return _guarded(node.field, f"{key(node.field)} in [{', '.join(value_text(v) for v in node.values)}]")
    if isinstance(node, Not):
        return f"(not {milvus_expression(node.item)})"
    joiner = " and " if isinstance(node, And) else " or "
    assert isinstance(node, (And, Or))
    return "(" + joiner.join(milvus_expression(item) for item in node.items) + ")"
