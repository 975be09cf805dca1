"""The AST of an ``.arch`` file and the lark Transformer that builds it.

The grammar lives in ``grammars/arch.lark`` (grammar is data); this module only turns parse trees
into frozen dataclasses, each carrying the :class:`~archdsl.errors.Span` it came from, and turns
lark's exceptions into diagnostics that say in words what was expected.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Union

from lark import Lark, Token, Tree, v_args
from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedInput, UnexpectedToken, VisitError
from lark.visitors import Transformer_NonRecursive

from .errors import ArchError, Diagnostic, Span, source_lines

# --------------------------------------------------------------------------------------------
# expressions


@dataclass(frozen=True)
class Expr:
    span: Span


@dataclass(frozen=True)
class Num(Expr):
    value: int | float


@dataclass(frozen=True)
class Str(Expr):
    value: str


@dataclass(frozen=True)
class Bool(Expr):
    value: bool


@dataclass(frozen=True)
class Name(Expr):
    id: str


@dataclass(frozen=True)
class InName(Expr):
    """``in``: the tensor flowing into the current statement."""


@dataclass(frozen=True)
class BinOp(Expr):
    op: str
    left: Expr
    right: Expr


@dataclass(frozen=True)
class BoolOp(Expr):
    op: str  # "and" | "or"
    left: Expr
    right: Expr


@dataclass(frozen=True)
class Not(Expr):
    operand: Expr


@dataclass(frozen=True)
class Neg(Expr):
    operand: Expr


@dataclass(frozen=True)
class Ternary(Expr):
    cond: Expr
    then: Expr
    orelse: Expr


@dataclass(frozen=True)
class Index(Expr):
    value: Expr
    index: Expr


@dataclass(frozen=True)
class Attr(Expr):
    value: Expr
    name: str


@dataclass(frozen=True)
class TupleExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class ListExpr(Expr):
    items: tuple[Expr, ...]


@dataclass(frozen=True)
class Const(Expr):
    """An already evaluated value (block arguments are evaluated where the block is called)."""

    value: Any


@dataclass(frozen=True)
class Func(Expr):
    name: str
    args: tuple[Expr, ...]


# --------------------------------------------------------------------------------------------
# statements


@dataclass(frozen=True)
class Arg:
    name: str | None  # None for positional
    value: Expr
    span: Span


@dataclass(frozen=True)
class Label:
    text: str
    interpolated: bool
    span: Span


@dataclass(frozen=True)
class Call:
    name: str
    args: tuple[Arg, ...]
    parens: bool
    span: Span


@dataclass(frozen=True)
class InRef:
    span: Span


@dataclass(frozen=True)
class Container:
    kind: str  # add | concat | mul | seq (checked during elaboration)
    branches: tuple[tuple[Stmt, ...], ...]
    span: Span


@dataclass(frozen=True)
class Stage:
    label: Label | None
    core: Call | InRef | Container
    repeat: Expr | None
    span: Span


@dataclass(frozen=True)
class Pipeline:
    stages: tuple[Stage, ...]
    span: Span


@dataclass(frozen=True)
class Input:
    name: str
    dims: Expr
    span: Span


@dataclass(frozen=True)
class Output:
    name: str
    pipeline: Pipeline | None
    span: Span


@dataclass(frozen=True)
class Assign:
    targets: tuple[str, ...]
    pipeline: Pipeline
    span: Span


@dataclass(frozen=True)
class PipeStmt:
    pipeline: Pipeline
    span: Span


@dataclass(frozen=True)
class Let:
    name: str
    value: Expr
    span: Span


@dataclass(frozen=True)
class For:
    var: str
    start: Expr
    stop: Expr | None  # None: iterate over the tuple in ``start``
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class If:
    cond: Expr
    then: tuple[Stmt, ...]
    orelse: tuple[Stmt, ...] | None
    span: Span


@dataclass(frozen=True)
class Init:
    """``init conv: kaiming_normal(mode="fan_out")`` — weight initialisation for an op kind."""

    op: str
    scheme: str
    args: tuple[Arg, ...]
    span: Span


Stmt = Union[Input, Output, Assign, PipeStmt, Let, For, If, Init]


@dataclass(frozen=True)
class Param:
    name: str
    default: Expr | None
    span: Span


@dataclass(frozen=True)
class BlockDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span


@dataclass(frozen=True)
class NetworkDef:
    name: str
    params: tuple[Param, ...]
    body: tuple[Stmt, ...]
    span: Span
    alias_of: str | None = None
    alias_args: tuple[Arg, ...] = ()


@dataclass(frozen=True)
class Import:
    path: str
    span: Span


@dataclass
class Program:
    file: str
    items: list[Any] = field(default_factory=list)


# --------------------------------------------------------------------------------------------
# parse tree -> AST


def _unquote(tok: Token, file: str) -> str:
    body = tok[1:-1]
    if "\\" in body:
        try:
            body = body.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError as err:
            raise ArchError(f"bad escape sequence in string: {err.reason}", _token_span(tok, file)) from None
        if any("\ud800" <= ch <= "\udfff" for ch in body):
            raise ArchError("a string may not contain a lone surrogate", _token_span(tok, file))
    return body


def _token_span(tok: Token, file: str) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


@v_args(meta=True)
class _ToAst(Transformer_NonRecursive):  # non-recursive: no depth limit of its own
    def __init__(self, file: str):
        super().__init__()
        self.file = file

    def _span(self, meta) -> Span:
        if getattr(meta, "empty", True):
            return Span(self.file, 0, 0)
        return Span(self.file, meta.line, meta.column, meta.end_line, meta.end_column)

    def _tok(self, tok: Token) -> Span:
        return Span(self.file, tok.line, tok.column, tok.end_line, tok.end_column)

    # top level
    def start(self, meta, items):
        return Program(self.file, list(items))

    def import_stmt(self, meta, c):
        return Import(_unquote(c[0], self.file), self._span(meta))

    def let_stmt(self, meta, c):
        return Let(str(c[0]), c[1], self._span(meta))

    def params(self, meta, c):
        return tuple(p for p in c if p is not None)

    def param(self, meta, c):
        return Param(str(c[0]), c[1], self._span(meta))

    def body_block(self, meta, c):
        return tuple(s for s in c if s is not None)

    def block_def(self, meta, c):
        return BlockDef(str(c[0]), c[1] or (), c[2], self._span(meta))

    def network_def(self, meta, c):
        return NetworkDef(str(c[0]), c[1] or (), c[2], self._span(meta))

    def network_alias(self, meta, c):
        return NetworkDef(str(c[0]), (), (), self._span(meta), str(c[1]), c[2] or ())

    # statements
    def input_stmt(self, meta, c):
        return Input(str(c[0]), c[1], self._span(meta))

    def output_stmt(self, meta, c):
        return Output(str(c[0]), c[1], self._span(meta))

    def assign_stmt(self, meta, c):
        return Assign(tuple(str(t) for t in c[:-1]), c[-1], self._span(meta))

    def pipe_stmt(self, meta, c):
        return PipeStmt(c[0], self._span(meta))

    def for_stmt(self, meta, c):
        return For(str(c[0]), c[1], c[2], c[3], self._span(meta))

    def if_stmt(self, meta, c):
        orelse = c[2]
        if isinstance(orelse, If):
            orelse = (orelse,)
        return If(c[0], c[1], orelse, self._span(meta))

    def init_stmt(self, meta, c):
        return Init(str(c[0]), str(c[1]), c[2] or (), self._span(meta))

    def pipeline(self, meta, c):
        return Pipeline(tuple(c), self._span(meta))

    def stage(self, meta, c):
        label, core, rep = c
        return Stage(label, core, rep, self._span(meta))

    def label(self, meta, c):
        tok = c[0]
        if tok.type == "STRING":
            return Label(_unquote(tok, self.file), True, self._tok(tok))
        return Label(str(tok), False, self._tok(tok))

    def call(self, meta, c):
        return Call(str(c[0]), (), False, self._span(meta))

    def pcall(self, meta, c):
        return Call(str(c[0]), c[1] or (), True, self._span(meta))

    def in_ref(self, meta, c):
        return InRef(self._span(meta))

    def container(self, meta, c):
        return Container(str(c[0]), tuple(c[1:]), self._span(meta))

    def branch(self, meta, c):
        return tuple(s for s in c if s is not None)

    def args(self, meta, c):
        return tuple(c)

    def arg(self, meta, c):
        return Arg(None, c[0], self._span(meta))

    def kwarg(self, meta, c):
        return Arg(str(c[0]), c[1], self._span(meta))

    # expressions
    def number(self, meta, c):
        text = str(c[0])
        if any(ch in text for ch in ".eE"):
            value = float(text)
            too_big = value == float("inf")
        else:  # check the length first: int() refuses more than 4300 digits
            too_big = len(text.lstrip("0")) > 19 or int(text) > MAX_LITERAL
            value = 0 if too_big else int(text)
        if too_big:
            raise ArchError(f"number too large ({text[:20]}{'...' if len(text) > 20 else ''})", self._tok(c[0]),
                            "archdsl works with numbers below 2**62")
        return Num(self._tok(c[0]), value)

    def string(self, meta, c):
        return Str(self._tok(c[0]), _unquote(c[0], self.file))

    def true(self, meta, c):
        return Bool(self._span(meta), True)

    def false(self, meta, c):
        return Bool(self._span(meta), False)

    def name(self, meta, c):
        return Name(self._tok(c[0]), str(c[0]))

    def in_name(self, meta, c):
        return InName(self._span(meta))

    def binop(self, meta, c):
        return BinOp(self._span(meta), str(c[1]), c[0], c[2])

    def compare(self, meta, c):
        return BinOp(self._span(meta), str(c[1]), c[0], c[2])

    def pow(self, meta, c):
        return BinOp(self._span(meta), "**", c[0], c[2])

    def or_(self, meta, c):
        return BoolOp(self._span(meta), "or", c[0], c[1])

    def and_(self, meta, c):
        return BoolOp(self._span(meta), "and", c[0], c[1])

    def not_(self, meta, c):
        return Not(self._span(meta), c[0])

    def neg(self, meta, c):
        return Neg(self._span(meta), c[0])

    def ternary(self, meta, c):
        return Ternary(self._span(meta), c[0], c[1], c[2])

    def index(self, meta, c):
        return Index(self._span(meta), c[0], c[1])

    def attr(self, meta, c):
        return Attr(self._span(meta), c[0], str(c[1]))

    def tuple(self, meta, c):
        return TupleExpr(self._span(meta), tuple(x for x in c if x is not None))

    def list(self, meta, c):
        return ListExpr(self._span(meta), tuple(x for x in c if x is not None))

    def func(self, meta, c):
        return Func(self._span(meta), str(c[0]), tuple(x for x in c[1:] if x is not None))


# --------------------------------------------------------------------------------------------
# parser and syntax errors

# Limits on hostile input (docs/robustness.md).  Module attributes: a program may change them.
MAX_SOURCE_BYTES = 1 << 20  # a file and its imports together (characters, for loads()); --max-source-bytes
MAX_NESTING = 64  # brackets ( [ { open at once
MAX_TREE_DEPTH = 100  # parse-tree depth: also long operator chains and else-if ladders (zoo: 24)
MAX_LITERAL = 2 ** 62  # as expr.MAX_INT

# What each terminal looks like to a person (lark names them LPAR, RSQB, ...).
_TOKEN_WORDS = {
    "LPAR": "'('", "RPAR": "')'", "LSQB": "'['", "RSQB": "']'", "LBRACE": "'{'", "RBRACE": "'}'",
    "COMMA": "','", "COLON": "':'", "SEMICOLON": "';'", "EQUAL": "'='", "DOT": "'.'",
    "__ANON_0": "'->'", "VBAR": "'|'", "STAR": "'*'", "PLUS": "'+'", "MINUS": "'-'",
    "NAME": "a name", "NUMBER_INT": "a number", "NUMBER_FLOAT": "a number", "STRING": "a string",
    "COMP_OP": "a comparison", "ADD_OP": "'+' or '-'", "MUL_OP": "an operator", "POW": "'**'",
    "$END": "end of file",
}


def _grammar_text() -> str:
    here = Path(__file__).resolve().parent
    for candidate in (here.parent / "grammars" / "arch.lark", here / "grammars" / "arch.lark"):
        if candidate.is_file():
            return candidate.read_text()
    from importlib.resources import files

    return files("archdsl.grammars").joinpath("arch.lark").read_text()


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser for ``.arch`` text (built once per process, cached on disk by lark)."""
    callbacks = {t: _open_bracket for t in ("LPAR", "LSQB", "LBRACE")}
    callbacks.update({t: _close_bracket for t in ("RPAR", "RSQB", "RBRACE")})
    return Lark(_grammar_text(), parser="lalr", propagate_positions=True, start=["start", "expr"],
                maybe_placeholders=True, cache=_cache_path(), lexer_callbacks=callbacks)


class _Nesting:
    """Open brackets while lexing: 10,000 '(' fail at the 65th, before the parser stack grows."""

    depth = 0
    file = "<string>"

    @classmethod
    def reset(cls, file: str) -> None:
        cls.depth, cls.file = 0, file


def _open_bracket(tok: Token) -> Token:
    _Nesting.depth += 1
    if _Nesting.depth > MAX_NESTING:
        raise ArchError(f"brackets nested deeper than {MAX_NESTING} levels", _token_span(tok, _Nesting.file),
                        "move part of it into a block or a let")
    return tok


def _close_bracket(tok: Token) -> Token:
    _Nesting.depth -= 1
    return tok


def check_size(text: str, file: str, truncated: bool = False) -> None:
    """Refuse a source longer than MAX_SOURCE_BYTES, pointing at where it crosses the limit.

    ``truncated``: ``text`` is what fits of a longer file.
    """
    if len(text) > MAX_SOURCE_BYTES or truncated:
        n = min(len(text), MAX_SOURCE_BYTES)
        line = text.count("\n", 0, n) + 1
        col = n - (text.rfind("\n", 0, n) + 1) + 1
        raise ArchError(f"source longer than {MAX_SOURCE_BYTES} bytes", Span(file, line, col),
                        "archdsl reads at most this much; split the file or raise --max-source-bytes")


def _check_depth(tree: Tree, file: str) -> None:
    """Refuse parse trees deeper than MAX_TREE_DEPTH before anything recurses over them."""
    stack = [(tree, 1)]
    while stack:
        t, d = stack.pop()
        if d > MAX_TREE_DEPTH:
            meta = t.meta
            span = Span(file, meta.line, meta.column) if not getattr(meta, "empty", True) else Span(file, 1, 1)
            raise ArchError(f"program nested deeper than {MAX_TREE_DEPTH} levels", span,
                            "long chains of operators or 'else if' nest too; split them with let")
        stack.extend((c, d + 1) for c in t.children if isinstance(c, Tree))


def _parse_tree(text: str, start: str, file: str) -> Tree:
    check_size(text, file)
    _Nesting.reset(file)
    tree = parser().parse(text, start=start)
    _check_depth(tree, file)
    return tree


def _transform(tree: Tree, file: str):
    try:
        return _ToAst(file).transform(tree)
    except VisitError as err:  # lark wraps what a transformer method raises
        if isinstance(err.orig_exc, ArchError):
            raise err.orig_exc from None
        raise


def _cache_path():
    import os
    import tempfile

    try:
        d = Path(tempfile.gettempdir()) / f"archdsl-{os.getuid() if hasattr(os, 'getuid') else 0}"
        d.mkdir(exist_ok=True)
        return str(d / "arch-lark.cache")
    except OSError:
        return False


def _terminal_words(p: Lark, names) -> list[str]:
    words = set()
    for n in names:
        if n in _TOKEN_WORDS:
            words.add(_TOKEN_WORDS[n])
            continue
        try:
            term = p.get_terminal(n)
            pattern = term.pattern
            words.add(f"'{pattern.value}'" if pattern.type == "str" else n.lower())
        except KeyError:
            words.add(n.lower())
    return sorted(words)


def _describe(tok: Token | None) -> str:
    if tok is None or tok.type == "$END":
        return "end of file"
    return f"'{tok}'"


def _syntax_error(err: UnexpectedInput, file: str, text: str) -> ArchError:
    p = parser()
    line, col = max(err.line, 1), max(err.column, 1)
    if isinstance(err, UnexpectedCharacters):
        ch = text[err.pos_in_stream] if err.pos_in_stream < len(text) else ""
        msg = f"unexpected character {ch!r}"
        hint = "comments start with '#'" if ch == "/" else None
        return ArchError(Diagnostic("error", msg, Span(file, line, col, line, col + 1), hint))
    if isinstance(err, UnexpectedEOF):
        lines = source_lines(text)
        line, col = len(lines), len(lines[-1]) + 1
        expected = _terminal_words(p, err.expected)
        msg = "unexpected end of file" + (f"; expected {_join(expected)}" if expected else "")
        return ArchError(Diagnostic("error", msg, Span(file, line, col, line, col + 1)))
    assert isinstance(err, UnexpectedToken)
    tok = err.token
    expected = _summarise(_terminal_words(p, err.expected))
    if tok.type == "$END" and "'}'" in expected:
        lines = source_lines(text)
        line, col = len(lines), len(lines[-1]) + 1
        opened = _unclosed_brace(text)
        hint = f"the '{{' on line {opened} is never closed" if opened else None
        return ArchError(Diagnostic("error", "expected '}' before end of file", Span(file, line, col, line, col + 1), hint))
    pos = getattr(tok, "start_pos", None)
    if pos and text[pos - 1:pos + 1] == "->" and _open_paren_before(text, pos):
        line, col = tok.line, tok.column - 1
        return ArchError(Diagnostic("error", "expected ')' before '->'", Span(file, line, col, line, col + 2),
                                    "the arguments of a call end with ')'"))
    prev = err.token_history[-1] if err.token_history else None
    after = f" after {_describe(prev)}" if prev is not None else ""
    if tok.type == "$END":
        lines = source_lines(text)
        line, col = len(lines), len(lines[-1]) + 1
    msg = f"expected {_join(expected)}{after}, found {_describe(tok)}"
    hint = "comments start with '#'" if str(tok) == "//" else None
    end = col + max(1, len(str(tok))) if tok.type != "$END" else col + 1
    return ArchError(Diagnostic("error", msg, Span(file, line, col, line, end), hint))


_EXPR_START = {"'('", "'+'", "'-'", "'['", "a name", "a number", "a string", "'in'", "'not'", "'true'",
               "'false'", "'if'", "'+' or '-'"}


def _summarise(words: list[str]) -> list[str]:
    """Say 'an expression' instead of listing every token that can start one."""
    starts = [w for w in words if w in _EXPR_START]
    if len(starts) >= 4:
        words = [w for w in words if w not in _EXPR_START] + ["an expression"]
    return words


def _unclosed_brace(text: str) -> int | None:
    stack = []
    for lineno, line in enumerate(source_lines(text), 1):
        code = line.split("#", 1)[0]
        for ch in code:
            if ch == "{":
                stack.append(lineno)
            elif ch == "}" and stack:
                stack.pop()
    return stack[-1] if stack else None


def _open_paren_before(text: str, pos: int) -> bool:
    line_start = text.rfind("\n", 0, pos) + 1
    before = text[line_start:pos]
    return before.count("(") > before.count(")")


def _join(words: list[str]) -> str:
    if len(words) > 6:
        words = words[:6] + ["..."]
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " or " + words[-1]


def parse(text: str, file: str = "<string>") -> Program:
    """Parse ``.arch`` source text into a :class:`Program`; raise :class:`ArchError` on bad syntax."""
    try:
        tree = _parse_tree(text, "start", file)
    except UnexpectedInput as err:
        raise _syntax_error(err, file, text) from None
    return _transform(tree, file)


def parse_expr(text: str, file: str = "<string>", line: int = 1, col: int = 1) -> Expr:
    """Parse one expression (used for ``{...}`` in interpolated labels and ``-D`` values)."""
    try:
        tree = _parse_tree(text, "expr", file)
        return _transform(tree, file)
    except UnexpectedInput:
        raise ArchError(f"bad expression {text[:40]!r}", Span(file, line, col)) from None
    except ArchError as err:  # a position inside the label is not a position in the file
        raise ArchError(err.diagnostics[0].message, Span(file, line, col), err.diagnostics[0].hint) from None
