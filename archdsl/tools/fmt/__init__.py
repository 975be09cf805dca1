"""``archdsl fmt``: the one canonical layout of ``.arch`` source, comments kept.

``printer.py`` prints the AST; ``comments.py`` puts the source's comments and blank lines back.
:func:`format_source` is idempotent and never changes the AST (tests/tools/test_fmt.py checks both).
"""
from __future__ import annotations

import difflib
import re
from dataclasses import fields, is_dataclass
from pathlib import Path

from ...lang.parser import parse
from .comments import comments, lex, place, tokens
from .printer import WIDTH, _Printer, format_program

__all__ = ["WIDTH", "format_source", "format_file", "format_program", "strip_spans", "lex", "tokens", "comments",
           "unified_diff"]


def format_source(text: str, file: str = "<string>") -> str:
    """The canonical layout of ``.arch`` source text, comments kept.

    Raises :class:`~archdsl.errors.ArchError` when the text does not parse.
    """
    prog = parse(text, file)
    toks = lex(text)
    return place(text, toks, _Printer(text, toks).program(prog))


def format_file(path: str | Path) -> tuple[str, str]:
    """(old text, formatted text) of a file; read as ``check`` reads it (UTF-8, size limit)."""
    from ...files import read_source
    from ...lang.parser import MAX_SOURCE_BYTES

    text = read_source(str(path), limit=MAX_SOURCE_BYTES)
    return text, format_source(text, str(path))


def unified_diff(path: str, old: str, new: str) -> str:
    """The change from ``old`` to ``new`` as a unified diff of ``path`` that ``patch -p0`` applies
    (``archdsl fmt --diff``, as ``black --diff`` and ``ruff format --diff``)."""
    out = []
    for line in difflib.unified_diff(_diff_lines(old), _diff_lines(new), path, path):
        out.append(line)
        if not line.endswith("\n"):  # the last line of a file without a final newline
            out.append("\n\\ No newline at end of file\n")
    return "".join(out)


def _diff_lines(text: str) -> list[str]:
    """Lines as ``patch`` counts them: only '\n' ends one (str.splitlines also splits at '\f')."""
    return re.findall(r"[^\n]*\n|[^\n]+$", text)


def strip_spans(node):
    """The AST without source positions, as nested tuples (for comparing two parses)."""
    if is_dataclass(node):
        return (type(node).__name__,) + tuple(
            strip_spans(getattr(node, f.name)) for f in fields(node) if f.name not in ("span", "file"))
    if isinstance(node, (list, tuple)):
        return tuple(strip_spans(x) for x in node)
    if isinstance(node, (int, float)):
        return (type(node).__name__, node)
    return node
