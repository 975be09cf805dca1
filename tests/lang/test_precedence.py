"""Operator precedence: archdsl groups an operator chain exactly as Python does.

archdsl reads an expression as a flat chain and groups it by precedence itself
(``archdsl.lang.parser._Chain``), so the grouping is checked against an oracle it did not write:
Python's own parser (``ast``), on random expressions over the operators the two languages share.
"""
from __future__ import annotations

import ast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from archdsl.lang import ast as S
from archdsl.lang import parser as P
from archdsl.errors import ArchError

BINARY = ["or", "and", "==", "!=", "<", "<=", ">", ">=", "+", "-", "*", "/", "//", "%", "**"]
PREFIX = ["-", "+", "not"]
PY_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.FloorDiv: "//", ast.Mod: "%",
          ast.Pow: "**", ast.Eq: "==", ast.NotEq: "!=", ast.Lt: "<", ast.LtE: "<=", ast.Gt: ">",
          ast.GtE: ">=", ast.And: "and", ast.Or: "or"}


class Chained(Exception):
    """Python accepts ``a < b < c``; archdsl refuses it."""


def from_python(node):
    """Python's AST as a nested tuple: ('op', left, right), ('neg', x), ('not', x), or a leaf."""
    if isinstance(node, ast.Expression):
        return from_python(node.body)
    if isinstance(node, ast.BinOp):
        return (PY_OPS[type(node.op)], from_python(node.left), from_python(node.right))
    if isinstance(node, ast.BoolOp):  # Python flattens a and b and c: archdsl nests to the left
        out = from_python(node.values[0])
        for v in node.values[1:]:
            out = (PY_OPS[type(node.op)], out, from_python(v))
        return out
    if isinstance(node, ast.Compare):
        if len(node.ops) > 1:
            raise Chained
        return (PY_OPS[type(node.ops[0])], from_python(node.left), from_python(node.comparators[0]))
    if isinstance(node, ast.UnaryOp):
        inner = from_python(node.operand)
        if isinstance(node.op, ast.UAdd):
            return inner
        return ("neg" if isinstance(node.op, ast.USub) else "not", inner)
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, ast.Name):
        return node.id
    raise AssertionError(ast.dump(node))


def from_archdsl(e):
    if isinstance(e, (S.BinOp, S.BoolOp)):
        return (e.op, from_archdsl(e.left), from_archdsl(e.right))
    if isinstance(e, S.Neg):
        return ("neg", from_archdsl(e.operand))
    if isinstance(e, S.Not):
        return ("not", from_archdsl(e.operand))
    if isinstance(e, S.Num):
        return e.value
    if isinstance(e, S.Name):
        return e.id
    raise AssertionError(e)


leaf = st.sampled_from(["a", "b", "c", "1", "2", "3"])


@st.composite
def expressions(draw, depth=0):
    parts = []
    for i in range(draw(st.integers(1, 5))):
        if i:
            parts.append(draw(st.sampled_from(BINARY)))
        parts += draw(st.lists(st.sampled_from(PREFIX), max_size=2))
        if depth < 2 and draw(st.integers(0, 5)) == 0:
            parts.append("(" + draw(expressions(depth + 1)) + ")")
        else:
            parts.append(draw(leaf))
    return " ".join(parts)


@settings(max_examples=800, deadline=None)
@given(expressions())
def test_grouping_equals_pythons(text):
    try:
        expected = from_python(ast.parse(text, mode="eval"))
    except SyntaxError:  # e.g. 'a == not b', '- not a': archdsl refuses them too
        expected = None
    except Chained:
        expected = "chained"
    try:
        got = from_archdsl(P.parse_expr(text))
    except ArchError as err:
        assert expected in (None, "chained"), f"{text!r}: archdsl refused it ({err}), Python reads {expected}"
        if expected == "chained":
            assert "comparisons do not chain" in str(err)
        return
    assert got == expected, text


@pytest.mark.parametrize("text, grouped", [
    ("-2 ** 2", ("neg", ("**", 2, 2))),
    ("2 ** -1 * 3", ("*", ("**", 2, ("neg", 1)), 3)),
    ("2 ** 3 ** 2", ("**", 2, ("**", 3, 2))),
    ("not a == b and c", ("and", ("not", ("==", "a", "b")), "c")),
    ("a or b and not c", ("or", "a", ("and", "b", ("not", "c")))),
    ("1 - 2 - 3", ("-", ("-", 1, 2), 3)),
    ("a // b * c % 2", ("%", ("*", ("//", "a", "b"), "c"), 2)),
])
def test_known_groupings(text, grouped):
    assert from_archdsl(P.parse_expr(text)) == grouped


def test_spans_cover_the_operators_and_brackets():
    e = P.parse_expr("(a + b) * -c")
    assert (e.span.col, e.span.end_col) == (1, 13)
    assert (e.left.span.col, e.left.span.end_col) == (1, 8)  # the brackets belong to the operand
    assert (e.right.span.col, e.right.span.end_col) == (11, 13)


@pytest.mark.parametrize("text, message", [
    ("a < b < c", "comparisons do not chain"),
    ("a + not b", "'not' needs brackets here"),
    ("- not a", "'not' needs brackets here"),
])
def test_refused_chains_say_why(text, message):
    with pytest.raises(ArchError, match=message):
        P.parse(f"let x = {text}\n")
