"""The language's words are declared once (archdsl/lang/lexicon.py): the grammar, the highlighter,
the TextMate grammar, the elaborator and the expression evaluator agree with it, and no other
module keeps a list of its own."""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from archdsl.lang import lexicon as L
from archdsl.lang.parser import _grammar_text, parser

ROOT = Path(__file__).resolve().parents[2]


def _terminal(name: str):
    return parser().get_terminal(name).pattern


def _grammar_strings(rule: str) -> list[str]:
    """The quoted strings of one line of arch.lark (``COMP_OP: "==" | ...``)."""
    line = next(x for x in _grammar_text().splitlines() if x.startswith(rule + ":") or x.startswith(rule + "."))
    return re.findall(r'"([^"]*)"', line)


def test_the_grammar_reserves_exactly_the_lexicon_keywords():
    words = {t.pattern.value for t in parser().terminals
             if t.pattern.type == "str" and re.fullmatch(L.NAME, t.pattern.value)}
    assert words == set(L.KEYWORDS)
    assert len(L.KEYWORDS) == len(set(L.KEYWORDS))


def test_operator_terminals_are_the_lexicon_operators():
    for terminal, level in L.TERMINALS.items():
        ops = {op for op, lv in L.BINARY.items() if lv == level}
        pattern = _terminal(terminal)
        grammar = {pattern.value} if pattern.type == "str" else set(_grammar_strings(terminal))
        assert grammar == ops, terminal
    prefix = re.search(r"^_operand: \((.*)\)\*", _grammar_text(), re.M).group(1)
    assert set(re.findall(r'"([^"]*)"', prefix)) == set(L.PREFIX)


def test_every_operator_of_the_grammar_is_highlighted_as_one():
    punctuation = set("()[]{},:;.")
    marks = {t.pattern.value for t in parser().terminals if t.pattern.type == "str"} - set(L.KEYWORDS) - punctuation
    for op in marks | {op for op in L.BINARY if op not in L.KEYWORDS}:
        assert re.fullmatch(L.OPERATOR, op), op


@pytest.mark.parametrize("name", ["NAME", "NUMBER_INT", "STRING", "COMMENT"])
def test_literal_terminals_are_the_lexicon_patterns(name):
    # lark stores the grammar's "\n" escape as the character itself
    assert _terminal(name).value == getattr(L, name).replace("\\n", "\n")


def test_float_terminal_is_the_lexicon_pattern():
    assert _terminal("NUMBER_FLOAT").value == f"(?:{L.NUMBER_FLOAT})"


def _pygments(text: str):
    from archdsl.tools.highlight import ArchLexer

    return [(str(tok), value) for tok, value in ArchLexer().get_tokens(text) if value.strip()]


def test_the_highlighter_knows_every_word():
    for word in L.CONTROL + L.LOGICAL:
        assert (("Token.Keyword", word) in _pygments(f"{word} x")), word
    for word in L.CONSTANTS:
        assert ("Token.Keyword.Constant", word) in _pygments(f"let v = {word}"), word
    for word in L.DECLARATIONS:
        assert ("Token.Keyword.Declaration", word) in _pygments(f"{word} n() {{}}"), word
    for word in L.CONTAINERS:
        assert ("Token.Keyword.Reserved", word) in _pygments(f"x -> {word} {{ relu }}"), word
    for attr in L.SHAPE_ATTRS:
        assert ("Token.Name.Attribute", attr) in _pygments(f"let v = x.{attr}"), attr
    assert ("Token.Literal.Number.Float", "1.5e3") in _pygments("let v = 1.5e3")
    assert ("Token.Literal.Number.Integer", "42") in _pygments("let v = 42")


def test_the_textmate_grammar_knows_every_word():
    from archdsl.tools.docs import textmate

    repo = json.loads(textmate())["repository"]

    def matches(key: str, text: str) -> bool:
        return re.search(repo[key]["match"], text) is not None

    for key, words, text in (("keyword", L.CONTROL, "{} x"), ("logical", L.LOGICAL, "{} x"),
                             ("constant", L.CONSTANTS, "{}"), ("definition", L.DECLARATIONS, "{} n"),
                             ("container", L.CONTAINERS, "{} {{"), ("shape", L.SHAPE_ATTRS, "x.{}")):
        for w in words:
            assert matches(key, text.format(w)), (key, w)
    for number in ("1", "1.5", "2e-3"):
        assert re.fullmatch(repo["number"]["match"], number), number
    assert repo["operator"]["match"] == L.OPERATOR


def test_the_evaluator_reads_every_shape_attribute():
    from archdsl.lang.expr import TensorView

    view = TensorView((3, 8, 8))
    for attr in L.SHAPE_ATTRS:
        view.attr(attr)
    for alias, name in L.SHAPE_ALIASES.items():
        assert view.attr(alias) == view.attr(name)


def test_the_elaborator_uses_the_lexicon_containers():
    from archdsl.front import elaborate

    assert elaborate.CONTAINERS is L.CONTAINERS


_GROUPS = {"keywords": (L.CONTROL, 4), "containers": (L.CONTAINERS, 3), "shape attributes": (L.SHAPE_ATTRS, 3)}
_ALLOWED = {  # (file, group): why the words appear together there
    ("archdsl/lang/expr.py", "shape attributes"): "TensorView.attr computes each one (for the names in the lexicon)",
    ("archdsl/lang/syntax_errors.py", "keywords"): "phrases that fold expected tokens into 'a statement'",
}


@pytest.mark.parametrize("group", list(_GROUPS))
def test_no_other_module_keeps_a_word_list(group):
    """A line quoting several of a group's words is a second copy of the list."""
    words, least = _GROUPS[group]
    quoted = re.compile("[\"']({})[\"']".format("|".join(words)))
    found = []
    for path in sorted((ROOT / "archdsl").rglob("*.py")):
        if path.name == "lexicon.py" or (str(path.relative_to(ROOT)), group) in _ALLOWED:
            continue
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if len(set(quoted.findall(line))) >= least:
                found.append(f"{path.relative_to(ROOT)}:{n}: {line.strip()}")
    assert not found, f"{group} listed outside lang/lexicon.py:\n" + "\n".join(found)
