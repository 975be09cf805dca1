"""``archdsl fmt``: the one canonical layout of ``.arch`` source.

The layout is printed from the AST, so it never depends on how the source was spaced:

- 4-space indentation, one statement per line, ``{`` at the end of the line that opens it;
- spaces around binary operators and around ``=`` in parameters, ``let`` and assignments; none
  around ``=`` in keyword arguments (``stride=2``); the fewest parentheses that keep the meaning;
- a pipeline stays on one line while it fits in :data:`WIDTH` columns; it is broken before ``->``
  where the source broke it (a line per conv-bn-relu group reads better than any rule) and where
  it would overflow; continuation lines put ``->`` under the first ``->`` when the pipeline starts
  from a tensor name (``image -> ...``), at the statement's indentation otherwise;
- ``add { a | b }`` stays on one line when it is short and simple; otherwise each branch starts on
  its own line, the second and later ones with ``|`` two columns left of the branch's statements;
- parameter, argument and tuple lists that overflow are filled under their first item;
- a definition without parameters is printed with its brackets, ``network small() {``, as
  everywhere in the docs (the brackets may be left out in the source).

Comments are not in the AST (lark drops them), so they are found by scanning the source and put
back by aligning the source's tokens with the output's: an own-line comment goes before the output
line holding the token that followed it, a trailing comment at the end of the line holding the
token before it (at its old column while that is still right of the code). Blank lines between
statements are kept (at most one); top-level definitions are separated by one.

:func:`format_source` is idempotent and never changes the AST (the tests check both).
"""
from __future__ import annotations

import bisect
import difflib
import re
from dataclasses import dataclass, fields, is_dataclass, replace
from pathlib import Path

from ..lang.parser import parse
from ..lang.ast import Assign, Attr, BinOp, Bool, BoolOp, BlockDef, Call, Const, Container, For, Func, If, Import, Index, Init, Input, InName, InRef, Let, ListExpr, Name, Neg, NetworkDef, Not, Num, Output, PipeStmt, Pipeline, Program, Stage, Str, Ternary, TupleExpr

WIDTH = 100
INDENT = 4

__all__ = ["WIDTH", "format_source", "format_file", "strip_spans", "tokens", "comments", "unified_diff"]

# ----------------------------------------------------------------------------------- tokens


_TOKEN = re.compile(r"""
    (?P<ws>[ \t\r\f\n]+)
  | (?P<comment>\#[^\n]*)
  | (?P<string>"(?:[^"\\\n]|\\.)*")
  | (?P<number>\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>->|\.\.|\*\*|//|==|!=|<=|>=|.)
""", re.VERBOSE | re.DOTALL)


@dataclass(frozen=True)
class Tok:
    kind: str  # comment | string | number | name | op
    text: str
    pos: int  # offset in the text
    line: int  # 1-based
    col: int  # 1-based


def _scan(text: str) -> list[Tok]:
    out, line, line_start = [], 1, 0
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        if kind != "ws":
            out.append(Tok(kind, m.group(), m.start(), line, m.start() - line_start + 1))
        nl = m.group().count("\n") if kind == "ws" else 0
        if nl:
            line += nl
            line_start = m.start() + m.group().rindex("\n") + 1
    return out


def tokens(text: str) -> list[Tok]:
    """The code tokens of ``.arch`` text (comments and whitespace left out)."""
    return [t for t in _scan(text) if t.kind != "comment"]


def comments(text: str) -> list[Tok]:
    """The ``#`` comments of ``.arch`` text (a ``#`` inside a string is not one)."""
    return [t for t in _scan(text) if t.kind == "comment"]


# ----------------------------------------------------------------------------------- printer

_COMPARE = {"==", "!=", "<", ">", "<=", ">="}
_STRING = re.compile(r'"(?:[^"\\\n]|\\.)*"')
_NUMBER = re.compile(r"\d+\.\d+(?:[eE][+-]?\d+)?|\d+[eE][+-]?\d+|\d+")


def quote(s: str) -> str:
    """A string literal whose value is ``s``."""
    out = []
    for ch in s:
        if ch in '"\\':
            out.append("\\" + ch)
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ord(ch) < 32 or ord(ch) == 127:
            out.append(f"\\x{ord(ch):02x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'


@dataclass
class Line:
    text: str
    stmt: bool = False  # the first line of a statement (a blank line may precede it)
    blank: bool = False  # a blank line must precede it (between top-level definitions)


class _Printer:
    def __init__(self, source: str | None = None, notes: list[Tok] = ()):
        self.lines = source.split("\n") if source is not None else []  # lark counts "\n" only
        self.notes = [(c.line, c.col) for c in notes]
        self.braces = [(t.line, t.col) for t in tokens(source) if t.text == "{"] if source is not None else []

    # ------------------------------------------------------------------------ source access
    def _src(self, span) -> str | None:
        """The source text of a one-line span, if the printer has the source."""
        if not self.lines or not span.line or span.end_line != span.line or span.line > len(self.lines):
            return None
        return self.lines[span.line - 1][span.col - 1:span.end_col - 1]

    def _has_comment(self, span) -> bool:
        if not span.line or not span.end_line:
            return False
        return any((span.line, span.col) <= c < (span.end_line, span.end_col) for c in self.notes)

    @staticmethod
    def _broken(a, b) -> bool:
        """Did the source put ``b`` on a later line than the end of ``a``?"""
        return bool(a.span.end_line and b.span.line and b.span.line > a.span.end_line)

    # ------------------------------------------------------------------------ expressions
    def expr(self, e, need: int = 0) -> str:
        text, prec = self._expr(e)
        return f"({text})" if prec < need else text

    def _expr(self, e) -> tuple[str, int]:  # noqa: C901 - one case per node type
        if isinstance(e, Num):
            src = self._src(e.span)
            if src is not None and _NUMBER.fullmatch(src) and _same_number(src, e.value):
                return src, 10
            if isinstance(e.value, bool) or e.value < 0:
                return self._expr(Const(e.span, e.value))
            return (repr(float(e.value)) if isinstance(e.value, float) else str(e.value)), 10
        if isinstance(e, Str):
            src = self._src(e.span)
            return (src if src is not None and _STRING.fullmatch(src) and _unquote(src) == e.value
                    else quote(e.value)), 10
        if isinstance(e, Bool):
            return ("true" if e.value else "false"), 10
        if isinstance(e, Name):
            return e.id, 10
        if isinstance(e, InName):
            return "in", 10
        if isinstance(e, TupleExpr):
            items = [self.expr(x) for x in e.items]
            return "(" + (items[0] + "," if len(items) == 1 else ", ".join(items)) + ")", 10
        if isinstance(e, ListExpr):
            return "[" + ", ".join(self.expr(x) for x in e.items) + "]", 10
        if isinstance(e, Func):
            return f"{e.name}(" + ", ".join(self.expr(x) for x in e.args) + ")", 10
        if isinstance(e, Index):
            return f"{self.expr(e.value, 9)}[{self.expr(e.index)}]", 9
        if isinstance(e, Attr):
            return f"{self.expr(e.value, 9)}.{e.name}", 9
        if isinstance(e, BinOp):
            if e.op == "**":
                return f"{self.expr(e.left, 9)} ** {self.expr(e.right, 7)}", 8
            if e.op in _COMPARE:
                return f"{self.expr(e.left, 5)} {e.op} {self.expr(e.right, 5)}", 4
            if e.op in "+-":
                return f"{self.expr(e.left, 5)} {e.op} {self.expr(e.right, 6)}", 5
            return f"{self.expr(e.left, 6)} {e.op} {self.expr(e.right, 7)}", 6
        if isinstance(e, Neg):
            inner = self.expr(e.operand, 7)
            return ("-" + (f"({inner})" if inner.startswith("-") else inner)), 7
        if isinstance(e, Not):
            return f"not {self.expr(e.operand, 3)}", 3
        if isinstance(e, BoolOp):
            p = 1 if e.op == "or" else 2
            return f"{self.expr(e.left, p)} {e.op} {self.expr(e.right, p + 1)}", p
        if isinstance(e, Ternary):
            return f"if {self.expr(e.cond, 1)} then {self.expr(e.then)} else {self.expr(e.orelse)}", 0
        if isinstance(e, Const):
            return _const(e.value), 10
        raise TypeError(f"cannot format {type(e).__name__}")

    def arg(self, a) -> str:
        return f"{a.name}={self.expr(a.value)}" if a.name else self.expr(a.value)

    def param(self, p) -> str:
        return f"{p.name} = {self.expr(p.default)}" if p.default is not None else p.name

    def wrap_expr(self, head: str, e, tail: str, col: int = 0) -> list[str]:
        """``head + e + tail``; a long tuple, list or call is filled under its first item."""
        one = head + self.expr(e) + tail
        if col + len(one) <= WIDTH:
            return [one]
        if isinstance(e, (TupleExpr, ListExpr)) and len(e.items) > 1:
            o, c = "([" [isinstance(e, ListExpr)], ")]"[isinstance(e, ListExpr)]
            return fill(head + o, [self.expr(x) for x in e.items], c + tail, col)
        if isinstance(e, Func) and e.args:
            return fill(head + e.name + "(", [self.expr(x) for x in e.args], ")" + tail, col)
        return [one]

    # ------------------------------------------------------------------------ stages
    def label(self, lab) -> str:
        if not lab.interpolated:
            return lab.text
        src = self._src(lab.span)
        return src if src is not None and _STRING.fullmatch(src) and _unquote(src) == lab.text else quote(lab.text)

    def rep(self, e) -> str:
        if isinstance(e, Name) or (isinstance(e, Num) and isinstance(e.value, int)
                                   and not isinstance(e.value, bool) and e.value >= 0):
            text = self.expr(e)
            if re.fullmatch(r"\d+|[A-Za-z_]\w*", text):
                return text
        return f"({self.expr(e)})"

    def inline_stage(self, st: Stage) -> str | None:
        """The stage on one line, or None when it cannot be (a container with statements)."""
        core = st.core
        if isinstance(core, InRef):
            text = "in"
        elif isinstance(core, Call):
            text = core.name + ("(" + ", ".join(self.arg(a) for a in core.args) + ")" if core.parens else "")
        else:
            text = self.inline_container(core)
            if text is None:
                return None
        if st.label is not None:
            text = f"{self.label(st.label)}: {text}"
        if st.repeat is not None:
            text += f" * {self.rep(st.repeat)}"
        return text

    def inline_pipeline(self, p: Pipeline) -> str | None:
        parts = []
        for i, st in enumerate(p.stages):
            if i and self._broken(p.stages[i - 1], st):
                return None
            text = self.inline_stage(st)
            if text is None:
                return None
            parts.append(text)
        return " -> ".join(parts)

    def _comment_in_braces(self, span) -> bool:
        """Is there a comment between the ``{`` that opens ``span`` and the ``}`` that ends it?"""
        if not span.line:
            return False
        k = bisect.bisect_left(self.braces, (span.line, span.col))
        if k == len(self.braces):
            return False
        line, col = self.braces[k]
        return self._has_comment(replace(span, line=line, col=col))

    def inline_container(self, c: Container) -> str | None:
        if self._comment_in_braces(c.span):  # (one before the brace ends up before the line)
            return None
        pieces = []
        for k, branch in enumerate(c.branches):
            if k:
                pieces.append("|")
            if len(branch) > 1 or (branch and not isinstance(branch[0], PipeStmt)):
                return None
            if branch:
                text = self.inline_pipeline(branch[0].pipeline)
                if text is None:
                    return None
                pieces.append(text)
        return f"{c.kind} {{ {' '.join(pieces)} }}" if pieces else f"{c.kind} {{}}"

    def stage(self, st: Stage, indent: int, col: int) -> list[Line]:
        """A stage that starts at column ``col`` of a line indented by ``indent``: the first
        element is the text to append there, the others are whole lines."""
        text = self.inline_stage(st)
        if text is not None and col + len(text) <= WIDTH:
            return [Line(text)]
        head = f"{self.label(st.label)}: " if st.label is not None else ""
        tail = f" * {self.rep(st.repeat)}" if st.repeat is not None else ""
        core = st.core
        if isinstance(core, Call) and core.args:
            lines = fill(head + core.name + "(", [self.arg(a) for a in core.args], ")" + tail, col)
            return [Line(lines[0])] + [Line(x) for x in lines[1:]]
        if isinstance(core, Container):
            lines = [Line(f"{head}{core.kind} {{")]
            for k, branch in enumerate(core.branches):
                body = self.body(branch, indent + INDENT)
                if k and body:
                    first = body[0]
                    first.text = " " * (indent + 2) + "| " + first.text[indent + INDENT:]
                elif k:
                    body = [Line(" " * (indent + 2) + "|")]
                lines += body
            lines.append(Line(" " * indent + "}" + tail))
            return lines
        return [Line(text or "")]

    def pipeline(self, p: Pipeline, indent: int, prefix: str) -> list[Line]:
        """A pipeline statement: ``prefix`` (``x = ``, ``output y = ``) then the stages."""
        stages = p.stages
        first = stages[0]
        lead = " " * indent + prefix
        bare = (len(stages) > 1 and first.label is None and first.repeat is None
                and (isinstance(first.core, InRef) or (isinstance(first.core, Call) and not first.core.parens)))
        cont = indent
        if bare:
            arrow = len(lead) + len(self.inline_stage(first)) + 1
            if arrow <= indent + 40:
                cont = arrow
        out: list[Line] = []
        cur = Line(lead, stmt=True)
        line_indent = indent

        def place(frag: list[Line]) -> Line:
            nonlocal cur, line_indent
            cur.text += frag[0].text
            if len(frag) > 1:
                out.append(cur)
                out.extend(frag[1:-1])
                cur = frag[-1]
                line_indent = len(cur.text) - len(cur.text.lstrip())
            return cur

        def new_line():
            nonlocal cur, line_indent, cont
            out.append(cur)
            if cur.text.lstrip().startswith("}"):
                cont = line_indent  # after a multi-line container: under its closing brace
            cur, line_indent = Line(" " * cont + "-> "), cont

        place(self.stage(first, line_indent, len(cur.text)))
        for i, st in enumerate(stages[1:], 1):
            may_break = not (i == 1 and bare)
            if may_break and self._broken(stages[i - 1], st):
                new_line()
                place(self.stage(st, line_indent, len(cur.text)))
                continue
            text = self.inline_stage(st)
            here = len(cur.text) + 4
            if text is not None and here + len(text) <= WIDTH:
                cur.text += " -> " + text
                continue
            at = line_indent if cur.text.lstrip().startswith("}") else cont
            fits_below = text is not None and at + 3 + len(text) <= WIDTH
            if may_break and (fits_below or not isinstance(st.core, Container)):
                new_line()
                place(self.stage(st, line_indent, len(cur.text)))
            else:
                cur.text += " -> "
                place(self.stage(st, line_indent, len(cur.text)))
        out.append(cur)
        return out

    # ------------------------------------------------------------------------ statements
    def body(self, stmts, indent: int) -> list[Line]:
        out: list[Line] = []
        for s in stmts:
            out += self.stmt(s, indent)
        return out

    def stmt(self, s, indent: int) -> list[Line]:  # noqa: C901 - one case per statement
        sp = " " * indent
        if isinstance(s, PipeStmt):
            return self.pipeline(s.pipeline, indent, "")
        if isinstance(s, Assign):
            return self.pipeline(s.pipeline, indent, ", ".join(s.targets) + " = ")
        if isinstance(s, Output):
            if s.pipeline is None:
                return [Line(f"{sp}output {s.name}", True)]
            return self.pipeline(s.pipeline, indent, f"output {s.name} = ")
        if isinstance(s, Input):
            return _lines(self.wrap_expr(f"{sp}input {s.name}: ", s.dims, ""))
        if isinstance(s, Let):
            return _lines(self.wrap_expr(f"{sp}let {s.name} = ", s.value, ""))
        if isinstance(s, Init):
            return _lines(fill(f"{sp}init {s.op}: {s.scheme}(", [self.arg(a) for a in s.args], ")"))
        if isinstance(s, For):
            if s.stop is None:
                head = _lines(self.wrap_expr(f"{sp}for {s.var} in ", s.start, " {"))
            else:
                head = _lines(self.wrap_expr(f"{sp}for {s.var} in ", s.start, f"..{self.expr(s.stop, 1)} {{"))
            return self._braced(head, s.body, indent, s.span)
        if isinstance(s, If):
            if s.orelse is None:
                return self._braced([Line(f"{sp}if {self.expr(s.cond, 1)} {{", True)], s.then, indent, s.span)
            out = [Line(f"{sp}if {self.expr(s.cond, 1)} {{", True)] + self.body(s.then, indent + INDENT)
            orelse = s.orelse
            while orelse is not None:
                if len(orelse) == 1 and isinstance(orelse[0], If):
                    nested = orelse[0]
                    out.append(Line(f"{sp}}} else if {self.expr(nested.cond, 1)} {{"))
                    out += self.body(nested.then, indent + INDENT)
                    orelse = nested.orelse
                else:
                    out.append(Line(f"{sp}}} else {{"))
                    out += self.body(orelse, indent + INDENT)
                    orelse = None
            out.append(Line(sp + "}"))
            return out
        raise TypeError(f"cannot format {type(s).__name__}")

    def _braced(self, head: list[Line], body, indent: int, span=None) -> list[Line]:
        if not body:
            head[-1].text = head[-1].text[:-1] + "{}"
            return head
        one = self._one_line_body(body, span)
        if one is not None and len(head) == 1 and len(head[0].text) + len(one) + 3 <= WIDTH:
            head[0].text += f" {one} }}"
            return head
        return head + self.body(body, indent + INDENT) + [Line(" " * indent + "}")]

    def _one_line_body(self, body, span) -> str | None:
        """``for``/``if`` bodies of one short statement stay on the line when the source had them
        there (``if batch_norm { bn }``)."""
        if span is None or not span.line or span.line != span.end_line or self._has_comment(span):
            return None
        if len(body) != 1 or not isinstance(body[0], PipeStmt):
            return None
        return self.inline_pipeline(body[0].pipeline)

    # ------------------------------------------------------------------------ top level
    def item(self, it) -> list[Line]:
        if isinstance(it, Import):
            return [Line(f"import {quote(it.path)}", True)]
        if isinstance(it, Let):
            return self.stmt(it, 0)
        if isinstance(it, NetworkDef) and it.alias_of is not None:
            return _lines(fill(f"network {it.name} = {it.alias_of}(", [self.arg(a) for a in it.alias_args], ")"))
        if isinstance(it, (BlockDef, NetworkDef)):
            kw = "block" if isinstance(it, BlockDef) else "network"
            head = _lines(fill(f"{kw} {it.name}(", [self.param(p) for p in it.params], ") {"))
            return self._braced(head, it.body, 0)
        raise TypeError(f"cannot format {type(it).__name__}")

    def program(self, prog: Program) -> list[Line]:
        out: list[Line] = []
        prev_multi = False
        for k, it in enumerate(prog.items):
            lines = self.item(it)
            multi = isinstance(it, (BlockDef, NetworkDef)) and getattr(it, "alias_of", None) is None and len(lines) > 1
            if k and (multi or prev_multi):
                lines[0].blank = True
            prev_multi = multi
            out += lines
        return out


def fill(head: str, items: list[str], tail: str, col: int = 0) -> list[str]:
    """``head`` + items joined by ``, `` + ``tail``; when that overflows, the items are filled
    onto lines aligned under the first one.  ``col``: where ``head`` starts (the first line is
    returned without that indentation)."""
    one = head + ", ".join(items) + tail
    if col + len(one) <= WIDTH or not items:
        return [one]
    at = col + len(head)
    lines, cur, has = [], head, False
    for k, item in enumerate(items):
        piece = item + ("," if k < len(items) - 1 else tail)
        width = (col if not lines else 0) + len(cur)
        if has and width + 1 + len(piece) > WIDTH:
            lines.append(cur)
            cur, has = " " * at + piece, True
        else:
            cur, has = cur + (" " if has else "") + piece, True
    lines.append(cur)
    return lines


def _lines(texts: list[str]) -> list[Line]:
    return [Line(t, stmt=(k == 0)) for k, t in enumerate(texts)]


def _indent(text: str) -> int:
    return len(text) - len(text.lstrip())


def _same_number(text: str, value) -> bool:
    parsed = float(text) if any(ch in text for ch in ".eE") else int(text)
    return type(parsed) is type(value) and parsed == value


def _unquote(tok: str) -> str | None:
    """The value of a string literal, as the parser reads it (None if it would not read it)."""
    body = tok[1:-1]
    if "\\" not in body:
        return body
    try:
        return body.encode("latin-1", "backslashreplace").decode("unicode_escape")
    except UnicodeDecodeError:
        return None


def _const(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return quote(v)
    if isinstance(v, (int, float)):
        return str(v) if v >= 0 else f"(-{-v!r})"
    if isinstance(v, tuple):
        items = [_const(x) for x in v]
        return "(" + (items[0] + "," if len(items) == 1 else ", ".join(items)) + ")"
    if isinstance(v, list):
        return "[" + ", ".join(_const(x) for x in v) + "]"
    raise TypeError(f"cannot format the constant {v!r}")


# ----------------------------------------------------------------------------------- comments


def _place_comments(source: str, lines: list[Line]) -> str:
    """Put the source's comments and blank lines into the printed ``lines``."""
    src_lines = source.split("\n")
    src_toks = tokens(source)
    notes = comments(source)
    out_text = "\n".join(ln.text for ln in lines)
    out_toks = tokens(out_text)
    out_line = [t.line - 1 for t in out_toks]  # index into ``lines``
    where: dict[int, int] = {}  # source token index -> output line index
    inv: dict[int, int] = {}  # output token index -> source token index
    sm = difflib.SequenceMatcher(None, [t.text for t in src_toks], [t.text for t in out_toks], autojunk=False)
    for a, b, n in sm.get_matching_blocks():
        for k in range(n):
            where[a + k] = out_line[b + k]
            inv[b + k] = a + k

    def blank_above(line_no: int, pos: int) -> bool:
        start = source.rfind("\n", 0, pos) + 1
        if source[start:pos].strip():
            return False  # not the first thing on its line
        return line_no >= 2 and not src_lines[line_no - 2].strip()

    before: dict[int, list[Tok]] = {}
    after: dict[int, list[Tok]] = {}
    tail: list[Tok] = []
    positions = [t.pos for t in src_toks]

    for c in notes:
        k = bisect.bisect_left(positions, c.pos)
        own = not source[source.rfind("\n", 0, c.pos) + 1:c.pos].strip()
        if not own:
            j = k - 1
            while j >= 0 and j not in where:
                j -= 1
            if j >= 0:
                after.setdefault(where[j], []).append(c)
                continue
        j = k
        while j < len(src_toks) and j not in where:
            j += 1
        if j < len(src_toks):
            before.setdefault(where[j], []).append(c)
        else:
            tail.append(c)

    # the source token that starts each output line (for blank lines kept from the source)
    line_src: dict[int, Tok] = {}
    for b, t in enumerate(out_toks):
        if out_line[b] not in line_src and b in inv and t.col == _indent(lines[out_line[b]].text) + 1:
            line_src[out_line[b]] = src_toks[inv[b]]

    result: list[str] = []
    opened = [False]  # the last code line written ends with "{": no blank line after it

    def blank_ok() -> bool:
        return bool(result) and result[-1] != "" and not opened[0]

    def add_blank():
        if blank_ok():
            result.append("")

    for i, ln in enumerate(lines):
        group = before.get(i, [])
        if ln.blank:
            add_blank()
        stripped = ln.text.lstrip()
        ind = len(ln.text) - len(stripped)
        if stripped.startswith("}"):
            ind += INDENT
        elif stripped.startswith("|"):
            ind += 2
        for c in group:
            if blank_above(c.line, c.pos):
                add_blank()
            result.append(" " * ind + c.text.rstrip())
            opened[0] = False
        t = line_src.get(i)
        if ln.stmt and t is not None and blank_above(t.line, t.pos) and not stripped.startswith("|"):
            add_blank()
        text = ln.text.rstrip()
        opened[0] = text.endswith("{")
        for c in after.get(i, []):
            col = c.col - 1 if c.col - 1 <= WIDTH else 0
            text = text.ljust(max(len(text) + 2, col)) + c.text.rstrip()
        result.append(text)
    for c in tail:
        if blank_above(c.line, c.pos):
            add_blank()
        result.append(c.text.rstrip())
    while result and result[0] == "":
        result.pop(0)
    return "\n".join(result).rstrip("\n") + "\n" if result else ""


# ----------------------------------------------------------------------------------- API


def format_program(prog: Program) -> str:
    """Print an AST in the canonical layout (no comments: they are not in the AST)."""
    lines = _Printer().program(prog)
    return "".join(("\n" if ln.blank else "") + ln.text.rstrip() + "\n" for ln in lines)


def format_source(text: str, file: str = "<string>") -> str:
    """The canonical layout of ``.arch`` source text, comments kept.

    Raises :class:`~archdsl.errors.ArchError` when the text does not parse.
    """
    prog = parse(text, file)
    lines = _Printer(text, comments(text)).program(prog)
    return _place_comments(text, lines)


def format_file(path: str | Path) -> tuple[str, str]:
    """(old text, formatted text) of a file; read as ``check`` reads it (UTF-8, size limit)."""
    from ..files import read_source
    from ..lang.parser import MAX_SOURCE_BYTES

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
