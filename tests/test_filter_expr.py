"""The filter grammar: round trips of generated trees, every malformed text an InvalidInput naming a token, limits."""

from __future__ import annotations

import re

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evdsearch.errors import InvalidInput
from evdsearch.filter_expr import (
    KEYWORDS,
    MAX_FILTER_CHARS,
    MAX_FILTER_COMPARISONS,
    MAX_IN_VALUES,
    And,
    Compare,
    InList,
    Not,
    Or,
    fields_of,
    parse_filter,
    to_text,
)

names = st.from_regex(r"[A-Za-z_][A-Za-z0-9_]{0,10}", fullmatch=True).filter(lambda n: n.lower() not in KEYWORDS)
values = st.one_of(st.booleans(), st.integers(-2**63, 2**63 - 1),
                   st.floats(allow_nan=False, allow_infinity=False),
                   st.text(st.characters(blacklist_categories=("Cs",), min_codepoint=0x20), max_size=12))
leaves = st.one_of(st.builds(Compare, names, st.sampled_from(["==", "!=", "<", "<=", ">", ">="]), values),
                   st.builds(InList, names, st.lists(values, max_size=4).map(tuple)))
trees = st.recursive(leaves, lambda inner: st.one_of(
    st.builds(Not, inner), st.builds(And, st.lists(inner, min_size=2, max_size=3).map(tuple)),
    st.builds(Or, st.lists(inner, min_size=2, max_size=3).map(tuple))), max_leaves=6)




@settings(max_examples=300, deadline=None)
@given(trees)
def test_canonical_text_reads_back_as_the_same_tree(tree: object) -> None:
    assert parse_filter(to_text(tree)) == tree


@settings(max_examples=500, deadline=None)
@given(st.text(max_size=80))
def test_any_text_parses_or_is_refused_cleanly(text: str) -> None:
    try:
        tree = parse_filter(text)
    except InvalidInput as err:
        assert str(err).startswith("filter")
    else:
        assert fields_of(tree)


@pytest.mark.parametrize("text, message", [
    ('year >= 2020 and (camera == "X" or not split != "test")', None),
    ("a in []", None),
    ("a == 'it''s'", "unexpected"),
    ("a == 1 1", "unexpected '1' at character 7"),
    ("a === 1", "unexpected character '=' at character 4"),
    ("== 1", "expected a field name but found '==' at character 0"),
    ("and == 1", "expected a field name but found 'and'"),
    ("a == 1 and", "the end of the filter"),
    ("(a == 1", "expected ')' but found the end"),
    ("a == 1)", "unexpected ')' at character 6"),
    ("a == $", "unexpected character '$' at character 5"),
    ('a == "x\\ny"', "unexpected character"),
    ("a == 99999999999999999999", "does not fit in 64 bits"),
    ("a == 1e999", "not finite"),
    ("a in [1 2]", "expected ',' or ']'"),
    ("a < ", "expected a value"),
    ("", "empty"),
])
def test_examples(text: str, message: str | None) -> None:
    if message is None:
        parse_filter(text)
        return
    with pytest.raises(InvalidInput, match=re.escape(message)):
        parse_filter(text)


def test_limits() -> None:
    with pytest.raises(InvalidInput, match="nests deeper than 16 levels at '\\(' at character 16"):
        parse_filter("(" * 100 + "a == 1" + ")" * 100)
    with pytest.raises(InvalidInput, match="nests deeper"):
        parse_filter("not " * 100 + "a == 1")
    with pytest.raises(InvalidInput, match="1,048,576 characters long"):
        parse_filter("a" * (1 << 20))
    with pytest.raises(InvalidInput, match=f"more than {MAX_FILTER_COMPARISONS} comparisons"):
        parse_filter(" or ".join(["a == 1"] * (MAX_FILTER_COMPARISONS + 1)))
    with pytest.raises(InvalidInput, match=f"at most {MAX_IN_VALUES} values"):
        parse_filter("a in [" + ", ".join(["1"] * (MAX_IN_VALUES + 1)) + "]")
    assert len("a in [" + ", ".join(["1"] * MAX_IN_VALUES) + "]") < MAX_FILTER_CHARS
    parse_filter("(" * 15 + "a == 1" + ")" * 15)


def test_precedence_and_keywords() -> None:
    assert parse_filter("a == 1 or b == 2 and not c == 3") == Or((Compare("a", "==", 1), And((
        Compare("b", "==", 2), Not(Compare("c", "==", 3))))))
    assert parse_filter("A == TRUE AND b In ['x']") == And((Compare("A", "==", True), InList("b", ("x",))))
    assert parse_filter('s == "q\\"uo\\\\te"') == Compare("s", "==", 'q"uo\\te')
