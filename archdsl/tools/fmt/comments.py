"""Comments and blank lines of ``.arch`` source, put back into the printed layout.

Comments are not in the AST, so they come from lark's own lexer (the grammar's ``COMMENT``
terminal, kept by ``Lark.lex(dont_ignore=True)``): no second tokenizer to keep in step with the
grammar.  Each printed line knows where in the source its first token was (``Line.at``), so a
comment is placed by position:

- a comment on a line of its own goes before the printed line that holds the source token after it;
- a trailing comment goes at the end of the printed line that holds the token before it, at its
  old column while that is still right of the code.

Blank lines between statements are kept (at most one); top-level definitions are separated by one.
"""
from __future__ import annotations

import bisect
from dataclasses import dataclass

from ...lang.parser import parser
from .printer import INDENT, WIDTH, Line


@dataclass(frozen=True)
class Tok:
    kind: str  # "comment", or the grammar's terminal name in lower case ("name", "lbrace", ...)
    text: str
    pos: int  # offset in the text
    line: int  # 1-based
    col: int  # 1-based


def lex(text: str) -> list[Tok]:
    """The tokens of ``.arch`` text, comments included, whitespace left out (lark's lexer)."""
    out = []
    for t in parser().lex(text, dont_ignore=True):
        if t.type.startswith("__IGNORE"):  # whitespace
            continue
        out.append(Tok(t.type.lower(), str(t), t.start_pos, t.line, t.column))
    return out


def tokens(text: str) -> list[Tok]:
    """The code tokens of ``.arch`` text (comments and whitespace left out)."""
    return [t for t in lex(text) if t.kind != "comment"]


def comments(text: str) -> list[Tok]:
    """The ``#`` comments of ``.arch`` text (a ``#`` inside a string is not one)."""
    return [t for t in lex(text) if t.kind == "comment"]


def place(source: str, toks: list[Tok], lines: list[Line]) -> str:
    """The printed ``lines`` with the source's comments and blank lines put back."""
    src_lines = source.split("\n")  # lark counts "\n" only
    code = [(t.line, t.col) for t in toks if t.kind != "comment"]
    marks = [(ln.at, i) for i, ln in enumerate(lines) if ln.at is not None]

    def holding(pos) -> int | None:
        """The printed line that holds the source token at ``pos``."""
        k = bisect.bisect_right(marks, (pos, len(lines)))
        return marks[k - 1][1] if k else None

    def first_on_line(line: int, col: int) -> bool:
        return not src_lines[line - 1][:col - 1].strip()

    def blank_above(line: int, col: int) -> bool:
        return first_on_line(line, col) and line >= 2 and not src_lines[line - 2].strip()

    before: dict[int, list[Tok]] = {}
    after: dict[int, list[Tok]] = {}
    tail: list[Tok] = []
    for c in (t for t in toks if t.kind == "comment"):
        k = bisect.bisect_left(code, (c.line, c.col))
        if not first_on_line(c.line, c.col) and k and holding(code[k - 1]) is not None:
            after.setdefault(holding(code[k - 1]), []).append(c)
        elif k < len(code) and holding(code[k]) is not None:
            before.setdefault(holding(code[k]), []).append(c)
        else:
            tail.append(c)

    result: list[str] = []
    opened = False  # the last code line written ends with "{": no blank line after it

    def add_blank():
        if result and result[-1] != "" and not opened:
            result.append("")

    for i, ln in enumerate(lines):
        if ln.blank:
            add_blank()
        stripped = ln.text.lstrip()
        ind = len(ln.text) - len(stripped)
        if stripped.startswith("}"):
            ind += INDENT
        elif stripped.startswith("|"):
            ind += 2
        for c in before.get(i, []):
            if blank_above(c.line, c.col):
                add_blank()
            result.append(" " * ind + c.text.rstrip())
            opened = False
        if ln.stmt and ln.at is not None and blank_above(*ln.at) and not stripped.startswith("|"):
            add_blank()
        text = ln.text.rstrip()
        opened = text.endswith("{")
        for c in after.get(i, []):
            col = c.col - 1 if c.col - 1 <= WIDTH else 0
            text = text.ljust(max(len(text) + 2, col)) + c.text.rstrip()
        result.append(text)
    for c in tail:
        if blank_above(c.line, c.col):
            add_blank()
        result.append(c.text.rstrip())
    while result and result[0] == "":
        result.pop(0)
    return "\n".join(result).rstrip("\n") + "\n" if result else ""
