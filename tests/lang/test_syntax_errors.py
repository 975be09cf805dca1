"""Syntax errors explained (archdsl/syntax_errors.py): the open bracket a missing closer leaves,
a forgotten '}' before the next definition, a repeat count that needs brackets, a pipeline inside
a merge call.  The goldens in tests/broken/syntax_*.arch show the full text; these tests pin the
cases around them: where a note must appear, and where it must not."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.lang import parser as P
from archdsl.errors import ArchError, Diagnostics
from archdsl.tools.highlight import render_diagnostics

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = {p.name: p.read_text() for p in sorted((ROOT / "examples").glob("*.arch"))}
HEAD = "network n() {\n    input x: [3, 8, 8]\n"


def error(text: str):
    with pytest.raises(ArchError) as info:
        P.parse(text, "f.arch")
    (d,) = info.value.diagnostics
    return d


def notes(d) -> list[tuple[str, int, int]]:
    return [(m, s.line, s.col) for m, s in d.related]


# ------------------------------------------------------------------------------- open brackets


@pytest.mark.parametrize("tail,message,opener", [
    ("    x -> conv(16, 3)\n", "expected '}' before end of file", (1, 13)),
    ("    x -> conv(16,\n", "expected ')' before end of file", (3, 14)),
    ("    x -> pad((1, 1, 1, 1)\n", "expected ')' before end of file", (3, 13)),
    ("    let v = [1, 2,\n", "expected ']' before end of file", (3, 13)),
    ("    let v = -\n", "expected an expression, found end of file", (1, 13)),
])
def test_end_of_file_names_the_innermost_open_bracket(tail, message, opener):
    d = error(HEAD + tail)
    assert d.message == message
    assert [(line, col) for _, line, col in notes(d)] == [opener]
    assert notes(d)[0][0].endswith(f"opened at f.arch:{opener[0]}:{opener[1]} is never closed")


def test_a_closer_of_another_kind_names_the_open_bracket():
    d = error(HEAD + "    x -> conv(16, 3}\n}\n")
    assert d.message.endswith("found '}'") and notes(d) == [("the '(' opened at f.arch:3:14 is not closed", 3, 14)]


def test_an_unclosed_list_before_the_next_statement():
    d = error("network n() {\n    input x: [3, 8, 8\n    x -> relu\n}\n")
    assert (d.span.line, d.span.col) == (3, 5) and notes(d) == [("the '[' opened at f.arch:2:14 is never closed", 2, 14)]


@pytest.mark.parametrize("text", [
    HEAD + "    x -> conv(16 3)\n}\n",  # a missing comma: the bracket is closed later
    HEAD + "    x -> conv(16, 3) 5\n}\n",  # nothing is open but the body
    HEAD + "    x -> conv(16, 3) // comment\n}\n",
    HEAD + "    for i in 1 2 { relu }\n}\n",
])
def test_no_note_where_no_bracket_was_left_open(text):
    assert error(text).related == ()


@pytest.mark.parametrize("word,item", [
    ("network", "network m() {\n    input y: [3, 8, 8]\n}\n"),
    ("network", "network m {\n    input y: [3, 8, 8]\n}\n"),
    ("network", "network m = n(classes=2)\n"),
    ("block", "block b(out, stride = 1) {\n    conv(out, 3, stride=stride)\n}\n"),
    ("import", 'import "other.arch"\n'),
])
def test_a_definition_after_a_body_left_open(word, item):
    d = error(HEAD + "    x -> relu\n\n" + item)
    assert d.message == f"expected '}}' before '{word}'" and (d.span.line, d.span.col) == (5, 1)
    assert notes(d) == [("the '{' opened at f.arch:1:13 is never closed", 1, 13)]


def test_a_definition_after_brackets_left_open():
    d = error(HEAD + "    x -> conv(8, 1\n\nblock b() {\n    relu\n}\n")
    assert d.message == "expected ')' before 'block'" and (d.span.line, d.span.col) == (5, 1)
    assert notes(d) == [("the '(' opened at f.arch:3:14 is never closed", 3, 14)]


def test_names_that_look_like_keywords_inside_a_body_are_not_definitions():
    d = error(HEAD + "    block: conv(8, 1)\n    x -> conv(16 3)\n}\n")
    assert d.message.startswith("expected") and "before 'block'" not in d.message


# ------------------------------------------------------------------------------- repeat counts


@pytest.mark.parametrize("stage,count", [
    ("relu * stages[1]", "stages[1]"),
    ("relu * n + 1", "n + 1"),
    ("relu * len(xs)", "len(xs)"),
    ("relu * cfg.h", "cfg.h"),
    ("relu * -1", "-1"),
    ("relu * 2 ** k -> bn", "2 ** k"),
])
def test_a_repeat_count_that_needs_brackets(stage, count):
    d = error(HEAD + f"    x -> {stage}\n}}\n")
    assert d.message == "a repeat count is a number, a name or an expression in brackets"
    assert d.hint == f"write `* ({count})`" and d.span.end_col - d.span.col == len(count)


def test_no_bracket_hint_when_brackets_would_not_help():
    d = error(HEAD + "    x -> relu * n +\n}\n")
    assert "repeat count" not in d.message and d.hint is None


# ------------------------------------------------------------------------------- pipelines in calls


@pytest.mark.parametrize("call,hint", [
    ("concat(e, x -> relu)", "`u = x -> relu`, then `concat(e, u)`"),
    ("add(x -> conv(8, 1), e)", "`u = x -> conv(8, 1)`, then `add(u, e)`"),
    ("mul(e, x -> sigmoid, e)", "`u = x -> sigmoid`, then `mul(e, u, e)`"),
])
def test_a_pipeline_inside_a_merge_call(call, hint):
    d = error(HEAD + f"    e = x\n    {call} -> relu\n}}\n")
    assert d.message == f"{call.split('(')[0]}(...) takes named tensors, not pipelines"
    assert d.hint == "name the pipeline first: " + hint


def test_the_suggested_name_is_not_taken():
    d = error(HEAD + "    u = x\n    concat(u, x -> relu)\n}\n")
    assert d.hint == "name the pipeline first: `v = x -> relu`, then `concat(u, v)`"


def test_a_pipeline_inside_another_call():
    d = error(HEAD + "    x -> conv(16, 3 -> relu\n}\n")
    assert d.message == "expected ')' before '->'" and d.hint == "the arguments of a call end with ')'"


# ------------------------------------------------------------------------------- output


def test_notes_with_a_place_in_json_and_in_colour():
    (note,) = json.loads(json.dumps(error(HEAD).to_json()))["related"]
    assert (note["line"], note["column"], note["file"]) == (1, 13, "f.arch")
    assert note["message"] == "the '{' opened at f.arch:1:13 is never closed"
    diags = Diagnostics(sources={"f.arch": HEAD})
    diags.extend(ArchError(error(HEAD)))
    coloured = render_diagnostics(diags)
    assert re.sub(r"\x1b\[[0-9;]*m", "", coloured) == diags.render()
    assert diags.render().endswith("note: the '{' opened at f.arch:1:13 is never closed\n"
                                   "    network n() {\n                ^")


# ------------------------------------------------------------------------------- every cut


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(EXAMPLES)), st.floats(0, 1))
def test_every_note_points_at_an_open_bracket(name, where):
    """Cut an example anywhere: the error is a diagnostic, and a note points at a bracket."""
    text = EXAMPLES[name]
    cut = text[:int(len(text) * where)]
    try:
        P.parse(cut, "f.arch")
    except ArchError as err:
        lines = cut.split("\n")
        for d in err.diagnostics:
            for _, span in d.related:
                assert lines[span.line - 1][span.col - 1] in "([{", (d.message, span)
