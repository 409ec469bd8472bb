"""Filter expressions over image metadata: one grammar, parsed into a tree (never into SQL), bounded in size.

Grammar (keywords are case-insensitive, field names are not)::

    expr       := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" expr ")" | comparison
    comparison := FIELD OP literal | FIELD "in" "[" [literal ("," literal)*] "]"
    OP         := "==" | "!=" | "<" | "<=" | ">" | ">="
    literal    := STRING | NUMBER | "true" | "false"
    FIELD      := [A-Za-z_][A-Za-z0-9_]* (not a keyword)
    STRING     := '"' ... '"' or "'" ... "'" with \\ \" \' as the only escapes, no control characters

A comparison with a field the image lacks is false; `not` negates (so `not camera == "X"` keeps images without
a camera while `camera != "X"` does not). Every error is an InvalidInput naming the bad token and its position.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from evdsearch.errors import InvalidInput

MAX_FILTER_CHARS = 4096  # longer expressions are refused before any parsing
MAX_FILTER_DEPTH = 16  # nesting of parentheses and `not`
MAX_FILTER_COMPARISONS = 64  # comparisons (an `in` counts once)
MAX_IN_VALUES = 1024  # values in one `in [...]` list
KEYWORDS = ("and", "or", "not", "in", "true", "false")
OPS = ("==", "!=", "<=", ">=", "<", ">")
FIELD_PATTERN = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,63}")
INT64 = 2**63
_TOKEN = re.compile(r"""
    (?P<space>\s+)
  | (?P<op>==|!=|<=|>=|<|>)
  | (?P<punct>[()\[\],])
  | (?P<number>-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<string>"(?:[^"\\\x00-\x1f]|\\["'\\])*"|'(?:[^'\\\x00-\x1f]|\\["'\\])*')
  | (?P<word>[A-Za-z_][A-Za-z0-9_]*)
""", re.VERBOSE)

Value = str | int | float | bool


@dataclass(frozen=True)
class Compare:
    """`field op value`."""

    field: str
    op: str  # one of OPS
    value: Value


@dataclass(frozen=True)
class InList:
    """`field in [values]`."""

    field: str
    values: tuple[Value, ...]


@dataclass(frozen=True)
class And:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    items: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    item: Node


Node = Compare | InList | And | Or | Not


@dataclass(frozen=True)
class _Token:
    kind: str  # op | punct | number | string | word | end
    text: str
    pos: int  # character offset in the expression


def _describe(token: _Token) -> str:
    return "the end of the filter" if token.kind == "end" else f"{token.text[:40]!r} at character {token.pos}"


def _tokens(text: str) -> list[_Token]:
    out, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        if match is None:
            raise InvalidInput(f"filter: unexpected character {text[pos]!r} at character {pos}")
        if match.lastgroup != "space":
            out.append(_Token(match.lastgroup, match.group(), pos))
        pos = match.end()
    out.append(_Token("end", "", len(text)))
    return out


def _unquote(token: _Token) -> str:
    return re.sub(r"\\(.)", r"\1", token.text[1:-1])


class _Parser:
    """Recursive descent over the token list; depth and size are counted as it goes."""

    def __init__(self, text: str) -> None:
        self.tokens = _tokens(text)
        self.at = 0
        self.comparisons = 0

    def peek(self) -> _Token:
        return self.tokens[self.at]

    def take(self) -> _Token:
        token = self.tokens[self.at]
        self.at += 1
        return token

    def keyword(self, word: str) -> bool:
        token = self.peek()
        if token.kind == "word" and token.text.lower() == word:
            self.at += 1
            return True
        return False

    def expect(self, text: str) -> None:
        token = self.take()
        if token.text != text:
            raise InvalidInput(f"filter: expected {text!r} but found {_describe(token)}")

    def expr(self, depth: int) -> Node:
        items = [self.and_expr(depth)]
        while self.keyword("or"):
            items.append(self.and_expr(depth))
        return items[0] if len(items) == 1 else Or(tuple(items))

    def and_expr(self, depth: int) -> Node:
        items = [self.not_expr(depth)]
        while self.keyword("and"):
            items.append(self.not_expr(depth))
        return items[0] if len(items) == 1 else And(tuple(items))

    def not_expr(self, depth: int) -> Node:
        token = self.peek()
        if depth >= MAX_FILTER_DEPTH and (token.text == "(" or token.text.lower() == "not"):
            raise InvalidInput(f"filter nests deeper than {MAX_FILTER_DEPTH} levels at {_describe(token)}")
        if self.keyword("not"):
            return Not(self.not_expr(depth + 1))
        if token.text == "(":
            self.take()
            inner = self.expr(depth + 1)
            self.expect(")")
            return inner
        return self.comparison()

    def comparison(self) -> Node:
        token = self.take()
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise InvalidInput(f"filter: expected a field name but found {_describe(token)}")
        if not FIELD_PATTERN.fullmatch(token.text):
            raise InvalidInput(f"filter: field name {_describe(token)} is longer than 64 characters")
        self.comparisons += 1
        if self.comparisons > MAX_FILTER_COMPARISONS:
            raise InvalidInput(f"filter has more than {MAX_FILTER_COMPARISONS} comparisons (at {_describe(token)})")
        if self.keyword("in"):
            return InList(token.text, self.value_list())
        op = self.take()
        if op.kind != "op":
            raise InvalidInput(f"filter: expected a comparison (==, !=, <, <=, >, >=, in) after field "
                               f"{token.text!r} but found {_describe(op)}")
        return Compare(token.text, op.text, self.literal())

    def value_list(self) -> tuple[Value, ...]:
        self.expect("[")
        values: list[Value] = []
        if self.peek().text == "]":
            self.take()
            return ()
        while True:
            if len(values) >= MAX_IN_VALUES:
                raise InvalidInput(f"filter: an `in` list holds at most {MAX_IN_VALUES} values "
                                   f"(at {_describe(self.peek())})")
            values.append(self.literal())
            token = self.take()
            if token.text == "]":
                return tuple(values)
            if token.text != ",":
                raise InvalidInput(f"filter: expected ',' or ']' but found {_describe(token)}")

    def literal(self) -> Value:
        token = self.take()
        if token.kind == "string":
            return _unquote(token)
        if token.kind == "word" and token.text.lower() in ("true", "false"):
            return token.text.lower() == "true"
        if token.kind == "number":
            return _number(token)
        raise InvalidInput(f"filter: expected a value (a quoted string, a number, true or false) but found "
                           f"{_describe(token)}")


def _number(token: _Token) -> int | float:
    text = token.text
    if re.fullmatch(r"-?\d+", text):
        value = int(text)
        if not -INT64 <= value < INT64:
            raise InvalidInput(f"filter: integer {_describe(token)} does not fit in 64 bits")
        return value
    number = float(text)
    if not math.isfinite(number):
        raise InvalidInput(f"filter: number {_describe(token)} is not finite")
    return number


def parse_filter(text: str) -> Node:
    """The tree of a filter expression; InvalidInput (naming the token and its position) when it is not one."""
    if not isinstance(text, str):
        raise InvalidInput(f"filter must be a string, not {type(text).__name__}")
    if len(text) > MAX_FILTER_CHARS:
        raise InvalidInput(f"filter is {len(text):,} characters long; the limit is {MAX_FILTER_CHARS:,}")
    if not text.strip():
        raise InvalidInput("filter is empty")
    parser = _Parser(text)
    tree = parser.expr(0)
    token = parser.peek()
    if token.kind != "end":
        raise InvalidInput(f"filter: unexpected {_describe(token)}")
    return tree


def quote(value: str) -> str:
    """A string literal of this grammar (and of Milvus's): double quotes, backslash and quote escaped."""
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def literal_text(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return quote(value)
    return repr(value)


def to_text(node: Node) -> str:
    """The canonical text of a tree (fully parenthesised): parse_filter(to_text(t)) == t."""
    if isinstance(node, Compare):
        return f"{node.field} {node.op} {literal_text(node.value)}"
    if isinstance(node, InList):
        return f"{node.field} in [{', '.join(literal_text(v) for v in node.values)}]"
    if isinstance(node, Not):
        return f"not ({to_text(node.item)})"
    joiner = " and " if isinstance(node, And) else " or "
    return joiner.join(f"({to_text(item)})" for item in node.items)


def fields_of(node: Node) -> set[str]:
    """Every field name the tree compares."""
    if isinstance(node, (Compare, InList)):
        return {node.field}
    if isinstance(node, Not):
        return fields_of(node.item)
    return set().union(*(fields_of(item) for item in node.items))
