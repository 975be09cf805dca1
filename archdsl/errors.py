"""Source spans and diagnostics.

Every diagnostic archdsl prints has the form ``file:line:col: error: message``, followed by the
source line with a caret under the span and, where one helps, a ``hint:`` line.  Errors are
collected in a :class:`Diagnostics` list so that independent problems are all reported at once;
:class:`ArchError` carries them out of the pipeline.
"""
from __future__ import annotations

import json
from dataclasses import dataclass, field, replace


@dataclass(frozen=True)
class Span:
    """A region of an ``.arch`` source: 1-based line and column, end exclusive."""

    file: str
    line: int
    col: int
    end_line: int = 0
    end_col: int = 0

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<unknown>", 0, 0)


def source_lines(text: str) -> list[str]:
    """The lines of a source as the lexer counts them: only '\n' ends one (not '\r' or '\f'),
    a '\r' before it is dropped; never empty, so the end of a file has a line."""
    lines = text.split("\n")
    if len(lines) > 1 and lines[-1] == "":
        lines.pop()
    return [ln[:-1] if ln.endswith("\r") else ln for ln in lines]


@dataclass
class Diagnostic:
    severity: str  # "error" | "warning" | "note"
    message: str
    span: Span = NO_SPAN
    hint: str | None = None
    notes: tuple[str, ...] = ()
    # notes about another place in the source, each shown with its own line and caret
    # (the '{' that a missing '}' should close): (message, span)
    related: tuple[tuple[str, Span], ...] = ()

    def render(self, sources: dict[str, str] | None = None) -> str:
        """GCC-style text: location, message, source line, caret, hint, notes."""
        loc = f"{self.span}: " if self.span.line else (f"{self.span.file}: " if self.span.file else "")
        out = [f"{loc}{self.severity}: {self.message}", *_snippet(self.span, sources)]
        if self.hint:
            out.append(f"hint: {self.hint}")
        out.extend(f"note: {n}" for n in self.notes)
        for message, span in self.related:
            out += [f"note: {message}", *_snippet(span, sources)]
        return "\n".join(out)

    def to_json(self) -> dict:
        d = {"severity": self.severity, "message": self.message, **_location(self.span)}
        if self.hint:
            d["hint"] = self.hint
        if self.notes:
            d["notes"] = list(self.notes)
        if self.related:
            d["related"] = [{"message": m, **_location(s)} for m, s in self.related]
        return d


def _location(span: Span) -> dict:
    d = {"file": span.file, "line": span.line, "column": span.col}
    if span.end_line:
        d["end_line"], d["end_column"] = span.end_line, span.end_col
    return d


def _snippet(span: Span, sources: dict[str, str] | None) -> list[str]:
    """The source line of ``span`` and a caret line under it (none without the source)."""
    text = (sources or {}).get(span.file)
    if text is None or not span.line:
        return []
    lines = source_lines(text)
    if not 0 < span.line <= len(lines):
        return []
    # control characters (terminal escapes, bidi overrides) are shown, not obeyed
    src = "".join(ch if ch.isprintable() else "\ufffd" for ch in lines[span.line - 1].expandtabs(1))
    if len(src) > 200:  # keep hostile one-line files readable
        start = max(0, span.col - 80)
        src, col = src[start:start + 160], span.col - start
    else:
        col = span.col
    width = 1
    if span.end_line == span.line and span.end_col > span.col:
        width = min(span.end_col - span.col, max(1, len(src) - col + 1))
    return [f"    {src}", "    " + " " * (col - 1) + "^" + "~" * (width - 1)]


class ArchError(Exception):
    """One or more error diagnostics.  ``str(err)`` is the rendered text without source lines."""

    def __init__(self, diagnostics: list[Diagnostic] | Diagnostic | str, span: Span = NO_SPAN,
                 hint: str | None = None):
        if isinstance(diagnostics, str):
            diagnostics = [Diagnostic("error", diagnostics, span, hint)]
        elif isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics = diagnostics
        super().__init__("\n".join(d.render() for d in diagnostics))

    @property
    def span(self) -> Span:
        return self.diagnostics[0].span


@dataclass
class Diagnostics:
    """Collects errors and warnings; ``sources`` maps file names to text for caret rendering."""

    items: list[Diagnostic] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    max_errors: int = 50

    def error(self, message: str, span: Span = NO_SPAN, hint: str | None = None, notes=()) -> None:
        self.items.append(Diagnostic("error", message, span, hint, tuple(notes)))
        if len(self.errors) >= self.max_errors:
            raise ArchError(self.errors)

    def warning(self, message: str, span: Span = NO_SPAN, hint: str | None = None, notes=()) -> None:
        # a block used many times reports its warning once, at its first use
        if not any((d.message, d.span) == (message, span) for d in self.items):
            self.items.append(Diagnostic("warning", message, span, hint, tuple(notes)))

    def extend(self, err: ArchError, notes=()) -> None:
        for d in err.diagnostics:
            if notes and not d.notes:
                d = replace(d, notes=tuple(notes))
            if d.severity == "error" and any((x.message, x.span) == (d.message, d.span) for x in self.items):
                continue  # the same error in every instance of a block: report it once
            self.items.append(d)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    @property
    def warnings(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "warning"]

    def render(self) -> str:
        return "\n".join(d.render(self.sources) for d in self.items)

    def to_json(self) -> str:
        return json.dumps([d.to_json() for d in self.items], indent=2)


def did_you_mean(name: str, candidates, listing: str | None = None) -> str | None:
    """A 'did you mean' hint for a misspelt name, or None.  With ``listing`` (e.g. "the tensors
    here are"), a name that is close to none of a few candidates gets them listed instead: a
    one-letter name like ``z`` is close to nothing, yet ``x`` and ``y`` are what the user can use."""
    import difflib

    names = sorted(candidates)
    close = difflib.get_close_matches(name, names, n=1, cutoff=0.6)
    if close:
        return f"did you mean '{close[0]}'?"
    if listing and 0 < len(names) <= 8:
        return f"{listing} {', '.join(names)}"
    return None
