"""Syntax highlighting of ``.arch`` source: a Pygments lexer and coloured diagnostics.

The lexer is registered as a Pygments plugin (``pygments.lexers`` entry point), so anything that
uses Pygments picks it up by name: ``pygmentize -l arch``, ``rich.syntax.Syntax(code, "arch")``,
Sphinx and MkDocs code blocks written as ```` ```arch ````.
"""
from __future__ import annotations

import os
import re

from pygments.lexer import RegexLexer, bygroups, include, words
from pygments.token import (
    Comment, Keyword, Name, Number, Operator, Punctuation, String, Text, Whitespace,
)

from ..lang import lexicon as L
from ..lang.expr import FUNCTIONS
from ..ops import REGISTRY

__all__ = ["ArchLexer", "highlight_source", "render_diagnostics", "color_wanted"]


class ArchLexer(RegexLexer):
    """Pygments lexer for archdsl ``.arch`` network descriptions."""

    name = "archdsl"
    aliases = ["arch", "archdsl"]
    filenames = ["*.arch"]
    mimetypes = ["text/x-archdsl"]
    url = "https://github.com/archdsl/archdsl"

    _name = L.NAME

    tokens = {
        "root": [
            (r"[ \t\r\f\n]+", Whitespace),
            (r"#.*?$", Comment.Single),
            (r"(" + "|".join(L.DECLARATIONS) + r")(\s+)(" + _name + ")", bygroups(Keyword.Declaration, Whitespace, Name.Class)),
            (r"(init)(\s+)(" + _name + r")(\s*)(:)(\s*)(" + _name + ")",
             bygroups(Keyword, Whitespace, Name.Builtin, Whitespace, Punctuation, Whitespace, Name.Function)),
            (r'"', String.Double, "string"),
            (words(L.CONSTANTS, suffix=r"\b"), Keyword.Constant),
            (words(L.CONTROL + L.LOGICAL, suffix=r"\b"), Keyword),
            # a label names the module of the stage after it: "conv1: conv(...)"
            (r"(" + _name + r")(\s*)(:)(?!\s*\[)", bygroups(Name.Label, Whitespace, Punctuation)),
            (words(L.CONTAINERS, suffix=r"(?=\s*\{)"), Keyword.Reserved),
            (r"(" + _name + r")(\s*)(=)(?!=)", bygroups(Name.Variable, Whitespace, Operator)),
            (words(tuple(sorted(REGISTRY, key=len, reverse=True)), prefix=r"\b", suffix=r"\b"), Name.Builtin),
            (words(tuple(FUNCTIONS), prefix=r"\b", suffix=r"(?=\s*\()"), Name.Function.Magic),
            (r"(\.)(" + "|".join(L.SHAPE_ATTRS) + r")\b", bygroups(Punctuation, Name.Attribute)),
            include("numbers"),
            (L.OPERATOR, Operator),
            (r"[(){}\[\],:;.]", Punctuation),
            (_name, Name),
            (r".", Text),
        ],
        "numbers": [
            (L.NUMBER_FLOAT, Number.Float),
            (L.NUMBER_INT, Number.Integer),
        ],
        "string": [
            (r'\\.', String.Escape),
            (r"\{[^{}\"\n]*\}", String.Interpol),
            (r'[^"\\{\n]+', String.Double),
            (r"\{", String.Double),
            (r'"', String.Double, "#pop"),
            (r"\n", String.Double, "#pop"),  # an unterminated string ends at the line's end
        ],
    }


# ------------------------------------------------------------------------------ diagnostics

_SEVERITY = {"error": "\x1b[1;31m", "warning": "\x1b[1;35m", "note": "\x1b[1;36m"}
_BOLD, _GREEN, _CYAN, _RESET = "\x1b[1m", "\x1b[1;32m", "\x1b[36m", "\x1b[0m"


def color_wanted(stream) -> bool:
    """Colour for a terminal, unless ``NO_COLOR`` is set or the terminal is dumb."""
    if os.environ.get("NO_COLOR") or os.environ.get("TERM") == "dumb":
        return False
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


def highlight_source(text: str) -> str:
    """``.arch`` text with ANSI colours (for a terminal)."""
    from pygments import highlight
    from pygments.formatters import TerminalFormatter

    out = highlight(text, ArchLexer(stripnl=False, ensurenl=False), TerminalFormatter())
    return out


_CARET = re.compile(r"^    ( *)(\^~*)$")


def render_diagnostics(diags) -> str:
    """The text of :meth:`Diagnostics.render`, coloured: the same characters plus ANSI codes."""
    out = []
    for d in diags.items:
        lines = d.render(diags.sources).split("\n")
        head = lines[0]
        sev = f"{d.severity}: "
        k = head.find(sev)
        if k >= 0:
            head = (f"{_BOLD}{head[:k]}{_RESET}{_SEVERITY.get(d.severity, _BOLD)}{d.severity}:{_RESET} "
                    f"{_BOLD}{head[k + len(sev):]}{_RESET}")
        out.append(head)
        for i, line in enumerate(lines[1:], 1):
            m = _CARET.match(line)
            if m and i >= 2 and lines[i - 1].startswith("    "):
                out.append(f"    {m.group(1)}{_GREEN}{m.group(2)}{_RESET}")
            elif line.startswith("    ") and i + 1 < len(lines) and _CARET.match(lines[i + 1]):
                out.append("    " + highlight_source(line[4:]))
            elif line.startswith(("hint: ", "note: ")):
                out.append(f"{_CYAN}{line[:5]}{_RESET}{line[5:]}")
            else:
                out.append(line)
    return "\n".join(out)
