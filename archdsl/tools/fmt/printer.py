"""The canonical layout of ``.arch`` source, printed from the AST (``archdsl fmt``).

The layout never depends on how the source was spaced:

- 4-space indentation, one statement per line, ``{`` at the end of the line that opens it;
- spaces around binary operators and around ``=`` in parameters, ``let`` and assignments; none
  around ``=`` in keyword arguments (``stride=2``); the fewest parentheses that keep the meaning
  (the precedence levels are the parser's, from ``lang/lexicon.py``);
- a pipeline stays on one line while it fits in :data:`WIDTH` columns; it is broken before ``->``
  where the source broke it (a line per conv-bn-relu group reads better than any rule) and where
  it would overflow; continuation lines put ``->`` under the first ``->`` when the pipeline starts
  from a tensor name (``image -> ...``), at the statement's indentation otherwise;
- ``add { a | b }`` stays on one line when it is short and simple; otherwise each branch starts on
  its own line, the second and later ones with ``|`` two columns left of the branch's statements;
- parameter, argument and tuple lists that overflow are filled under their first item;
- a definition without parameters is printed with its brackets, ``network small() {``, as
  everywhere in the docs (the brackets may be left out in the source).

Each printed :class:`Line` records where in the source its first token came from (``at``), so
that ``comments.py`` can put the comments back by position.
"""
from __future__ import annotations

import bisect
import re
from dataclasses import dataclass, replace

from ...lang import lexicon as L
from ...lang.ast import (
    BlockDef, Call, Const, Container, For, Func, If, InRef, ListExpr, Name, NetworkDef, NodeVisitor, Num, PipeStmt,
    Pipeline, Program, Stage, TupleExpr,
)
from ...lang.parser import unquote
from ...errors import Span

WIDTH = 100
INDENT = 4
Pos = tuple  # (line, column) in the source, 1-based, as lark counts them

_STRING = re.compile(L.STRING)
_NUMBER = re.compile(f"{L.NUMBER_FLOAT}|{L.NUMBER_INT}")
_BARE = re.compile(f"{L.NUMBER_INT}|{L.NAME}")  # a repeat count without brackets


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
    at: Pos | None = None  # where its first token is in the source (None: unknown, or no source)


def start(span: Span) -> Pos | None:
    return (span.line, span.col) if span.line else None


def _closer(span: Span) -> Pos | None:
    """The position of the '}' that ends ``span``."""
    return (span.end_line, span.end_col - 1) if span.end_line else None


class _Printer(NodeVisitor):
    """Prints the AST: ``visit_<Class>`` per node class.  An expression's method returns its text
    and its precedence level; a statement's or a top-level item's returns its lines.

    ``toks``: the source's tokens (``comments.lex``), when there is a source: the printer keeps
    a comment's construct on several lines, and records where each line came from.
    """

    def __init__(self, source: str | None = None, toks=()):
        self.lines = source.split("\n") if source is not None else []  # lark counts "\n" only
        self.notes = [(t.line, t.col) for t in toks if t.kind == "comment"]
        self.braces = [(t.line, t.col) for t in toks if t.text == "{"]
        self.closers = [(t.line, t.col) for t in toks if t.text == "}"]
        self.bars = [(t.line, t.col) for t in toks if t.text == "|"]
        self.arrows = [(t.line, t.col) for t in toks if t.text == "->"]

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

    @staticmethod
    def _last_before(marks: list[Pos], pos: Pos | None) -> Pos | None:
        """The last of ``marks`` (token positions) before ``pos``."""
        if pos is None:
            return None
        k = bisect.bisect_left(marks, pos)
        return marks[k - 1] if k else None

    @staticmethod
    def _first_after(marks: list[Pos], pos: Pos | None) -> Pos | None:
        if pos is None:
            return None
        k = bisect.bisect_right(marks, pos)
        return marks[k] if k < len(marks) else None

    # ------------------------------------------------------------------------ expressions
    def expr(self, e, need: int = L.TERNARY) -> str:
        text, level = self.visit(e)
        return f"({text})" if level < need else text

    def visit_Num(self, e):
        src = self._src(e.span)
        if src is not None and _NUMBER.fullmatch(src) and _same_number(src, e.value):
            return src, L.ATOM
        if isinstance(e.value, bool) or e.value < 0:
            return self.visit(Const(e.span, e.value))
        return (repr(float(e.value)) if isinstance(e.value, float) else str(e.value)), L.ATOM

    def visit_Str(self, e):
        return self._string(e.span, e.value), L.ATOM

    def _string(self, span, value: str) -> str:
        """A string literal: as the source wrote it when that reads as ``value``."""
        src = self._src(span)
        return src if src is not None and _STRING.fullmatch(src) and _unquote(src) == value else quote(value)

    def visit_Bool(self, e):
        return ("true" if e.value else "false"), L.ATOM

    def visit_Name(self, e):
        return e.id, L.ATOM

    def visit_InName(self, e):
        return "in", L.ATOM

    def visit_TupleExpr(self, e):
        items = [self.expr(x) for x in e.items]
        return "(" + (items[0] + "," if len(items) == 1 else ", ".join(items)) + ")", L.ATOM

    def visit_ListExpr(self, e):
        return "[" + ", ".join(self.expr(x) for x in e.items) + "]", L.ATOM

    def visit_Func(self, e):
        return f"{e.name}(" + ", ".join(self.expr(x) for x in e.args) + ")", L.ATOM

    def visit_Index(self, e):
        return f"{self.expr(e.value, L.POSTFIX)}[{self.expr(e.index)}]", L.POSTFIX

    def visit_Attr(self, e):
        return f"{self.expr(e.value, L.POSTFIX)}.{e.name}", L.POSTFIX

    def visit_BinOp(self, e):
        level = L.BINARY[e.op]
        if level in L.RIGHT_ASSOCIATIVE:  # a ** b ** c, a ** -b
            left, right = level + 1, L.NEG
        elif level == L.COMPARE:  # comparisons do not chain
            left = right = level + 1
        else:
            left, right = level, level + 1
        return f"{self.expr(e.left, left)} {e.op} {self.expr(e.right, right)}", level

    visit_BoolOp = visit_BinOp

    def visit_Neg(self, e):
        inner = self.expr(e.operand, L.NEG)
        return ("-" + (f"({inner})" if inner.startswith("-") else inner)), L.NEG

    def visit_Not(self, e):
        return f"not {self.expr(e.operand, L.NOT)}", L.NOT

    def visit_Ternary(self, e):
        return f"if {self.expr(e.cond, L.OR)} then {self.expr(e.then)} else {self.expr(e.orelse)}", L.TERNARY

    def visit_Const(self, e):
        return _const(e.value), L.ATOM

    def generic_visit(self, node, *args):
        raise TypeError(f"cannot format {type(node).__name__}")

    def arg(self, a) -> str:
        return f"{a.name}={self.expr(a.value)}" if a.name else self.expr(a.value)

    def param(self, p) -> str:
        return f"{p.name} = {self.expr(p.default)}" if p.default is not None else p.name

    def wrap_expr(self, head: str, e, tail: str, col: int = 0) -> list[Line]:
        """``head + e + tail``; a long tuple, list or call is filled under its first item."""
        one = head + self.expr(e) + tail
        if col + len(one) <= WIDTH:
            return [Line(one)]
        if isinstance(e, (TupleExpr, ListExpr)) and len(e.items) > 1:
            o, c = "([" [isinstance(e, ListExpr)], ")]"[isinstance(e, ListExpr)]
            return self.fill(head + o, e.items, self.expr, c + tail, col)
        if isinstance(e, Func) and e.args:
            return self.fill(head + e.name + "(", e.args, self.expr, ")" + tail, col)
        return [Line(one)]

    def fill(self, head: str, nodes, show, tail: str, col: int = 0) -> list[Line]:
        """:func:`fill` of ``show(node)`` for each node, each line knowing its first node's place."""
        rows = _fill(head, [show(n) for n in nodes], tail, col)
        return [Line(text, at=start(nodes[k].span) if line else None) for line, (text, k) in enumerate(rows)]

    # ------------------------------------------------------------------------ stages
    def label(self, lab) -> str:
        return self._string(lab.span, lab.text) if lab.interpolated else lab.text

    def rep(self, e) -> str:
        if isinstance(e, Name) or (isinstance(e, Num) and isinstance(e.value, int)
                                   and not isinstance(e.value, bool) and e.value >= 0):
            text = self.expr(e)
            if _BARE.fullmatch(text):
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
        brace = self._first_after(self.braces, (span.line, span.col - 1)) if span.line else None
        return brace is not None and self._has_comment(replace(span, line=brace[0], col=brace[1]))

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
            return self.fill(head + core.name + "(", core.args, self.arg, ")" + tail, col)
        if isinstance(core, Container):
            lines = [Line(f"{head}{core.kind} {{")]
            mark = start(core.span)  # where the source is up to: the '|' of a branch comes after it
            for k, branch in enumerate(core.branches):
                body = self.body(branch, indent + INDENT)
                if k:  # the '|' before the branch starts its line
                    mark = self._first_after(self.bars, mark)
                    if body:
                        body[0].text = " " * (indent + 2) + "| " + body[0].text[indent + INDENT:]
                        body[0].at = mark or body[0].at
                    else:
                        body = [Line(" " * (indent + 2) + "|", at=mark)]
                if branch:
                    mark = _end(branch[-1].span) or mark
                lines += body
            lines.append(Line(" " * indent + "}" + tail, at=_closer(core.span)))
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

        def new_line(st: Stage):
            nonlocal cur, line_indent, cont
            out.append(cur)
            if cur.text.lstrip().startswith("}"):
                cont = line_indent  # after a multi-line container: under its closing brace
            at = start(st.span)  # the line starts at the '->' before the stage
            cur, line_indent = Line(" " * cont + "-> ", at=self._last_before(self.arrows, at) or at), cont

        place(self.stage(first, line_indent, len(cur.text)))
        for i, st in enumerate(stages[1:], 1):
            may_break = not (i == 1 and bare)
            if may_break and self._broken(stages[i - 1], st):
                new_line(st)
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
                new_line(st)
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

    def stmt(self, s, indent: int) -> list[Line]:
        """A statement (or a top-level item), its first line marked as where it starts."""
        lines = self.visit(s, indent)
        lines[0].stmt = True
        lines[0].at = start(s.span)
        return lines

    def visit_PipeStmt(self, s, indent):
        return self.pipeline(s.pipeline, indent, "")

    def visit_Assign(self, s, indent):
        return self.pipeline(s.pipeline, indent, ", ".join(s.targets) + " = ")

    def visit_Output(self, s, indent):
        if s.pipeline is None:
            return [Line(f"{' ' * indent}output {s.name}")]
        return self.pipeline(s.pipeline, indent, f"output {s.name} = ")

    def visit_Input(self, s, indent):
        return self.wrap_expr(f"{' ' * indent}input {s.name}: ", s.dims, "")

    def visit_Let(self, s, indent):
        return self.wrap_expr(f"{' ' * indent}let {s.name} = ", s.value, "")

    def visit_Init(self, s, indent):
        return self.fill(f"{' ' * indent}init {s.op}: {s.scheme}(", s.args, self.arg, ")")

    def visit_For(self, s: For, indent):
        stop = "" if s.stop is None else f"..{self.expr(s.stop, L.OR)}"
        head = self.wrap_expr(f"{' ' * indent}for {s.var} in ", s.start, stop + " {")
        return self._braced(head, s.body, indent, s.span)

    def visit_If(self, s: If, indent):
        sp = " " * indent
        head = [Line(f"{sp}if {self.expr(s.cond, L.OR)} {{")]
        if s.orelse is None:
            return self._braced(head, s.then, indent, s.span)
        out = head + self.body(s.then, indent + INDENT)
        prev, orelse = s, s.orelse
        while orelse is not None:  # '} else {' starts where the '}' before it is
            close = self._first_after(self.closers, _end(prev.then[-1].span if prev.then else prev.cond.span))
            if len(orelse) == 1 and isinstance(orelse[0], If):
                prev = orelse[0]
                out.append(Line(f"{sp}}} else if {self.expr(prev.cond, L.OR)} {{", at=close))
                out += self.body(prev.then, indent + INDENT)
                orelse = prev.orelse
            else:
                out.append(Line(f"{sp}}} else {{", at=close))
                out += self.body(orelse, indent + INDENT)
                orelse = None
        out.append(Line(sp + "}", at=_closer(s.span)))
        return out

    def _braced(self, head: list[Line], body, indent: int, span, one_line: bool = True) -> list[Line]:
        if not body:
            head[-1].text = head[-1].text[:-1] + "{}"
            return head
        one = self._one_line_body(body, span) if one_line else None
        if one is not None and len(head) == 1 and len(head[0].text) + len(one) + 3 <= WIDTH:
            head[0].text += f" {one} }}"
            return head
        return head + self.body(body, indent + INDENT) + [Line(" " * indent + "}", at=_closer(span))]

    def _one_line_body(self, body, span) -> str | None:
        """``for``/``if`` bodies of one short statement stay on the line when the source had them
        there (``if batch_norm { bn }``)."""
        if not span.line or span.line != span.end_line or self._has_comment(span):
            return None
        if len(body) != 1 or not isinstance(body[0], PipeStmt):
            return None
        return self.inline_pipeline(body[0].pipeline)

    # ------------------------------------------------------------------------ top level
    def visit_Import(self, it, indent):
        return [Line(f"import {quote(it.path)}")]

    def visit_NetworkDef(self, it: NetworkDef, indent):
        if it.alias_of is not None:
            return self.fill(f"network {it.name} = {it.alias_of}(", it.alias_args, self.arg, ")")
        return self._definition("network", it)

    def visit_BlockDef(self, it, indent):
        return self._definition("block", it)

    def _definition(self, kw: str, it) -> list[Line]:
        head = self.fill(f"{kw} {it.name}(", it.params, self.param, ") {")
        return self._braced(head, it.body, 0, it.span, one_line=False)

    def program(self, prog: Program) -> list[Line]:
        out: list[Line] = []
        prev_multi = False
        for k, it in enumerate(prog.items):
            lines = self.stmt(it, 0)
            multi = isinstance(it, (BlockDef, NetworkDef)) and getattr(it, "alias_of", None) is None and len(lines) > 1
            if k and (multi or prev_multi):
                lines[0].blank = True
            prev_multi = multi
            out += lines
        return out


def _end(span: Span) -> Pos | None:
    return (span.end_line, span.end_col) if span.end_line else None


def fill(head: str, items: list[str], tail: str, col: int = 0) -> list[str]:
    """``head`` + items joined by ``, `` + ``tail``; when that overflows, the items are filled
    onto lines aligned under the first one.  ``col``: where ``head`` starts (the first line is
    returned without that indentation)."""
    return [text for text, _ in _fill(head, items, tail, col)]


def _fill(head: str, items: list[str], tail: str, col: int = 0) -> list[tuple[str, int]]:
    """:func:`fill`, each line with the index of the first item on it."""
    one = head + ", ".join(items) + tail
    if col + len(one) <= WIDTH or not items:
        return [(one, 0)]
    at = col + len(head)
    lines, cur, first, has = [], head, 0, False
    for k, item in enumerate(items):
        piece = item + ("," if k < len(items) - 1 else tail)
        width = (col if not lines else 0) + len(cur)
        if has and width + 1 + len(piece) > WIDTH:
            lines.append((cur, first))
            cur, first, has = " " * at + piece, k, True
        else:
            cur, has = cur + (" " if has else "") + piece, True
    lines.append((cur, first))
    return lines


def _same_number(text: str, value) -> bool:
    parsed = float(text) if any(ch in text for ch in ".eE") else int(text)
    return type(parsed) is type(value) and parsed == value


def _unquote(literal: str) -> str | None:
    """The value of a string literal, as the parser reads it (None if it would not read it)."""
    try:
        return unquote(literal)
    except ValueError:
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


def format_program(prog: Program) -> str:
    """Print an AST in the canonical layout (no comments: they are not in the AST)."""
    lines = _Printer().program(prog)
    return "".join(("\n" if ln.blank else "") + ln.text.rstrip() + "\n" for ln in lines)
