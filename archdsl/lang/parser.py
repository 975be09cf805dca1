"""The parser: ``.arch`` text to the AST (``ast.py``), built while lark parses it.

The grammar lives in ``arch.lark`` beside this module (grammar is data); the callbacks here turn
what the parser reduces into AST nodes, each with the :class:`~archdsl.errors.Span` it came from,
group operator chains by the precedence in ``lexicon.py``, and refuse input past the limits
below.  Syntax errors are explained in ``syntax_errors.py``.

The AST is built by an embedded transformer (one callback per reduction, no parse tree), and
spans come from the tokens each rule keeps (``keep_all_tokens``) rather than from lark's
``propagate_positions``: together about 3x faster on large files (docs/benchmarks.md).  Each
parse has its own builder and bracket count, so parses share no state.
"""
from __future__ import annotations

from dataclasses import replace
from functools import lru_cache
from pathlib import Path

from lark import Lark, Token
from lark.exceptions import UnexpectedInput
from lark.lexer import LexerThread
from lark.parsers.lalr_parser import _Parser

from . import lexicon as L
from .. import files
from ..errors import ArchError, Span
from .ast import (
    Arg, Assign, Attr, BinOp, BlockDef, Bool, BoolOp, Call, Container, Expr, For, Func, If, Import, Index, InName,
    InRef, Init, Input, Label, Let, ListExpr, Name, Neg, NetworkDef, Not, Num, Output, Param, PipeStmt, Pipeline,
    Program, Stage, Str, Ternary, TupleExpr,
)

# Limits on hostile input (docs/robustness.md).  Module attributes: a program may change them.
MAX_SOURCE_BYTES = 1 << 20  # a file and its imports together (characters, for loads()); --max-source-bytes
MAX_NESTING = 64  # brackets ( [ { open at once
MAX_TREE_DEPTH = 100  # AST depth: also long operator chains and else-if ladders (zoo: 16)
MAX_LITERAL = 2 ** 62  # as expr.MAX_INT

# --------------------------------------------------------------------------------------------
# grammar rules -> AST


def unquote(literal: str) -> str:
    """The value of a string literal as written, quotes included (the formatter reads literals
    as the parser does).  Raises ValueError for a bad escape sequence or a lone surrogate."""
    body = literal[1:-1]
    if "\\" in body:
        try:
            body = body.encode("latin-1", "backslashreplace").decode("unicode_escape")
        except UnicodeDecodeError as err:
            raise ValueError(f"bad escape sequence in string: {err.reason}") from None
        if any("\ud800" <= ch <= "\udfff" for ch in body):
            raise ValueError("a string may not contain a lone surrogate")
    return body


def _unquote(tok: Token, file: str) -> str:
    try:
        return unquote(tok)
    except ValueError as err:
        raise ArchError(str(err), _token_span(tok, file)) from None


def _token_span(tok: Token, file: str) -> Span:
    return Span(file, tok.line, tok.column, tok.end_line, tok.end_column)


def _too_deep(span: Span) -> ArchError:
    return ArchError(f"program nested deeper than {MAX_TREE_DEPTH} levels", span,
                     "long chains of operators or 'else if' nest too; split them with let")


class _Seq(tuple):
    """A sequence under construction (statements, arguments, parameters) with its extent:
    the brackets around it belong to the span of the construct that holds it."""

    span: Span | None = None
    _depth = 0


def _start(x):
    if isinstance(x, Token):
        return x.line, x.column
    span = getattr(x, "span", None)
    return (span.line, span.col) if span is not None and span.line else None


def _end(x):
    if isinstance(x, Token):
        return x.end_line, x.end_column
    span = getattr(x, "span", None)
    return (span.end_line, span.end_col) if span is not None and span.line else None


class _ToAst:
    """Builds the AST of one file while lark parses it (an embedded transformer: no parse tree
    is made).

    The parser keeps every token (``keep_all_tokens``), so each method sees its rule's children
    as written, keywords and brackets included, and a construct's span runs from its first token
    to its last.  Every node also records its nesting depth (``_depth``, not a field): programs
    nested deeper than MAX_TREE_DEPTH are refused here, before anything recurses over them.
    """

    def __init__(self, file: str):
        self.file = file

    def _done(self, node, c):
        """Set ``node``'s depth from its children ``c``; refuse it if too deep."""
        depth = 1 + max([getattr(x, "_depth", 0) for x in c if type(x) is not Token], default=0)
        if depth > MAX_TREE_DEPTH:
            raise _too_deep(node.span)
        object.__setattr__(node, "_depth", depth)
        return node

    def _span(self, c) -> Span:
        if c and type(c[0]) is Token and type(c[-1]) is Token:  # the common case: tokens at both ends
            a, b = c[0], c[-1]
            return Span(self.file, a.line, a.column, b.end_line, b.end_column)
        first = last = None
        for x in c:
            first = _start(x)
            if first is not None:
                break
        for x in reversed(c):
            last = _end(x)
            if last is not None:
                break
        if first is None or last is None:
            return Span(self.file, 0, 0)
        return Span(self.file, *first, *last)

    def _tok(self, tok: Token) -> Span:
        return _token_span(tok, self.file)

    def _items(self, c):
        """The children that are not tokens or placeholders: statements, expressions."""
        return tuple(x for x in c if x is not None and not isinstance(x, Token))

    def _seq(self, c, items):
        seq = _Seq(items)
        seq.span = self._span(c)
        seq._depth = max([x._depth for x in items if hasattr(x, "_depth")], default=0)
        return seq

    def _parens(self, c):
        """``( expr )``: the expression itself, its span widened to the brackets."""
        inner = c[1]
        node = replace(inner, span=self._span(c))
        return self._done(node, (inner,))

    # top level
    def start(self, c):
        return Program(self.file, list(c))

    def import_stmt(self, c):  # "import" STRING
        return Import(_unquote(c[1], self.file), self._span(c))

    def let_stmt(self, c):  # "let" NAME "=" expr
        return self._done(Let(str(c[1]), c[3], self._span(c)), c)

    def params(self, c):  # param ("," param)* [","]
        return self._seq(c, [p for p in c[::2] if p is not None])

    def param(self, c):  # NAME ["=" expr]
        return self._done(Param(str(c[0]), c[2], self._span(c)), c)

    def body_block(self, c):  # "{" _stmt* "}"
        return self._seq(c, self._items(c))

    def block_def(self, c):  # "block" NAME ["(" [params] ")"] body_block
        return self._done(BlockDef(str(c[1]), tuple(c[3] or ()), tuple(c[5]), self._span(c)), c)

    def network_def(self, c):  # "network" NAME ["(" [params] ")"] body_block
        return self._done(NetworkDef(str(c[1]), tuple(c[3] or ()), tuple(c[5]), self._span(c)), c)

    def network_alias(self, c):  # "network" NAME "=" NAME "(" [args] ")"
        node = NetworkDef(str(c[1]), (), (), self._span(c), str(c[3]), tuple(c[5] or ()))
        return self._done(node, c)

    # statements
    def input_stmt(self, c):  # "input" NAME ":" expr
        return self._done(Input(str(c[1]), c[3], self._span(c)), c)

    def output_stmt(self, c):  # "output" NAME ["=" pipeline]
        return self._done(Output(str(c[1]), c[3], self._span(c)), c)

    def assign_stmt(self, c):  # NAME ("," NAME)* "=" pipeline
        return self._done(Assign(tuple(str(t) for t in c[:-2:2]), c[-1], self._span(c)), c)

    def pipe_stmt(self, c):  # pipeline
        return self._done(PipeStmt(c[0], c[0].span), c)

    def for_stmt(self, c):  # "for" NAME "in" expr [".." expr] body_block
        return self._done(For(str(c[1]), c[3], c[5], tuple(c[6]), self._span(c)), c)

    def if_stmt(self, c):  # "if" expr body_block ["else" (body_block | if_stmt)]
        orelse = c[4]
        if isinstance(orelse, If):
            orelse = (orelse,)
        elif orelse is not None:
            orelse = tuple(orelse)
        return self._done(If(c[1], tuple(c[2]), orelse, self._span(c)), c)

    def init_stmt(self, c):  # "init" NAME ":" NAME ["(" [args] ")"]
        return self._done(Init(str(c[1]), str(c[3]), tuple(c[5] or ()), self._span(c)), c)

    def pipeline(self, c):  # stage ("->" stage)*
        return self._done(Pipeline(tuple(c[::2]), self._span(c)), c)

    def stage(self, c):  # [label ":"] _core ["*" rep]
        return self._done(Stage(c[0], c[2], c[4], self._span(c)), c)

    def label(self, c):  # NAME | STRING
        tok = c[0]
        if tok.type == "STRING":
            return Label(_unquote(tok, self.file), True, self._tok(tok))
        return Label(str(tok), False, self._tok(tok))

    def call(self, c):  # NAME
        return Call(str(c[0]), (), False, self._tok(c[0]))

    def pcall(self, c):  # NAME "(" [args] ")"
        return self._done(Call(str(c[0]), tuple(c[2] or ()), True, self._span(c)), c)

    def in_ref(self, c):  # "in"
        return InRef(self._tok(c[0]))

    def container(self, c):  # NAME "{" branch ("|" branch)* "}"
        return self._done(Container(str(c[0]), tuple(tuple(b) for b in c[2:-1:2]), self._span(c)), c)

    def branch(self, c):  # _stmt*
        return self._seq(c, self._items(c))

    def args(self, c):  # arg ("," arg)* [","]
        return self._seq(c, [a for a in c[::2] if a is not None])

    def arg(self, c):  # expr
        return self._done(Arg(None, c[0], c[0].span), c)

    def kwarg(self, c):  # NAME "=" expr
        return self._done(Arg(str(c[0]), c[2], self._span(c)), c)

    # expressions
    def number(self, c):
        tok = c[0]
        text = str(tok)
        if tok.type == "NUMBER_FLOAT":
            value = float(text)
            too_big = value == float("inf")
        elif len(text) < 19:  # the common case: certainly below MAX_LITERAL
            return Num(self._tok(tok), int(text))
        else:  # check the length first: int() refuses more than 4300 digits
            too_big = len(text.lstrip("0")) > 19 or int(text) > MAX_LITERAL
            value = 0 if too_big else int(text)
        if too_big:
            raise ArchError(f"number too large ({text[:20]}{'...' if len(text) > 20 else ''})", self._tok(c[0]),
                            "archdsl works with numbers below 2**62")
        return Num(self._tok(c[0]), value)

    def string(self, c):
        return Str(self._tok(c[0]), _unquote(c[0], self.file))

    def true(self, c):
        return Bool(self._tok(c[0]), True)

    def false(self, c):
        return Bool(self._tok(c[0]), False)

    def name(self, c):
        return Name(self._tok(c[0]), str(c[0]))

    def in_name(self, c):
        return InName(self._tok(c[0]))

    atom = rep = _parens  # "(" expr ")"

    def chain(self, c):
        """An operator chain as written (``-a * b + c``), grouped by precedence climbing."""
        return _Chain(self, c).climb(0, 1)

    def ternary(self, c):  # "if" chain "then" expr "else" expr
        return self._done(Ternary(self._span(c), c[1], c[3], c[5]), c)

    def index(self, c):  # postfix "[" expr "]"
        return self._done(Index(self._span(c), c[0], c[2]), c)

    def attr(self, c):  # postfix "." NAME
        return self._done(Attr(self._span(c), c[0], str(c[2])), c)

    def tuple(self, c):
        return self._done(TupleExpr(self._span(c), self._items(c)), c)

    def list(self, c):
        return self._done(ListExpr(self._span(c), self._items(c)), c)

    def func(self, c):  # NAME "(" [expr ("," expr)*] ")"
        return self._done(Func(self._span(c), str(c[0]), self._items(c[1:])), c)



class _Chain:
    """Groups one flat operator chain, ``c`` as the parser read it: prefix-operator tokens,
    operands and binary-operator tokens in a row."""

    def __init__(self, ast: _ToAst, c):
        self.ast, self.c, self.pos = ast, c, 0

    def _span(self, first, last) -> Span:
        return Span(self.ast.file, *_start(first), *_end(last))

    def climb(self, min_level: int, depth: int):
        """The longest expression from here whose operators bind at least as tight as ``min_level``."""
        c, ast = self.c, self.ast
        left = self.operand(min_level, depth)
        compared = False
        while self.pos < len(c):
            op = c[self.pos]
            level = L.TERMINALS[op.type]
            if level < min_level:
                break
            if level == L.COMPARE and compared:
                raise ArchError("comparisons do not chain", ast._tok(op), "write 'a < b and b < c'")
            self.pos += 1
            right = self.climb(level if level in L.RIGHT_ASSOCIATIVE else level + 1, depth + 1)
            kind = BoolOp if level in (L.OR, L.AND) else BinOp
            left = ast._done(kind(self._span(left, right), str(op), left, right), (left, right))
            compared = level == L.COMPARE
        return left

    def operand(self, min_level: int, depth: int):
        """An operand and the prefix operators before it."""
        c, ast = self.c, self.ast
        x = c[self.pos]
        if depth > MAX_TREE_DEPTH:
            raise _too_deep(Span(ast.file, *_start(x)))
        self.pos += 1
        if not isinstance(x, Token):
            return x
        level = L.PREFIX[x]
        if level == L.NOT:
            if min_level > L.NOT:
                raise ArchError("'not' needs brackets here", ast._tok(x), "write (not ...)")
            inner = self.climb(L.NOT, depth + 1)
            return ast._done(Not(self._span(x, inner), inner), (inner,))
        inner = self.climb(level, depth + 1)
        if x == "+":
            return ast._done(replace(inner, span=self._span(x, inner)), (inner,))
        return ast._done(Neg(self._span(x, inner), inner), (inner,))


# --------------------------------------------------------------------------------------------
# the parser

def _grammar_text() -> str:
    return (Path(__file__).resolve().parent / "arch.lark").read_text()


@lru_cache(maxsize=1)
def parser() -> Lark:
    """The LALR parser for ``.arch`` text (built once per process, its tables cached on disk by
    lark).  ``parse`` drives its tables with a builder of its own; this object's parses build
    lark trees (``syntax_errors`` asks it only what it accepts)."""
    return Lark(_grammar_text(), parser="lalr", keep_all_tokens=True, start=["start", "expr"],
                maybe_placeholders=True, cache=_cache_path(), postlex=_Brackets())


@lru_cache(maxsize=64)
def _lalr(file: str) -> _Parser:
    """lark's LALR driver over the shared tables, reducing with the AST builder of ``file``.

    lark binds a transformer when it builds the parser; this builds the callbacks for one
    builder the way lark does (``create_callback``), so a parse shares no mutable state with any
    other.  A builder holds only its file name, so one per file is kept."""
    lark = parser()
    callbacks = lark._parse_tree_builder.create_callback(_ToAst(file))
    return _Parser(lark.parser.parser.parser.parse_table, callbacks)


_OPEN, _CLOSE = {"LPAR", "LSQB", "LBRACE"}, {"RPAR", "RSQB", "RBRACE"}


class _TooNested(Exception):
    def __init__(self, tok: Token):
        self.tok = tok


class _Brackets:
    """Counts open brackets between the lexer and the parser (a lark postlexer; the count is
    local to each parse): 10,000 '(' fail at the 65th, before the parser stack grows."""

    always_accept = ()

    def process(self, stream):
        depth, limit, opening, closing = 0, MAX_NESTING, _OPEN, _CLOSE  # locals: this runs per token
        for tok in stream:
            kind = tok.type
            if kind in opening:
                depth += 1
                if depth > limit:
                    raise _TooNested(tok)
            elif kind in closing:
                depth -= 1
            yield tok


def check_size(text: str, file: str, truncated: bool = False) -> None:
    """Refuse a source longer than MAX_SOURCE_BYTES (``files.check_size`` with this module's limit)."""
    files.check_size(text, file, MAX_SOURCE_BYTES, truncated)


def _parse(text: str, start: str, file: str):
    check_size(text, file)
    try:
        return _lalr(file).parse(LexerThread.from_text(parser().parser.lexer, text), start)
    except _TooNested as err:
        raise ArchError(f"brackets nested deeper than {MAX_NESTING} levels", _token_span(err.tok, file),
                        "move part of it into a block or a let") from None


def _cache_path():
    import hashlib
    import os
    import tempfile

    # named after what it is built from: checkouts that build it differently do not overwrite
    # each other's tables
    key = hashlib.sha256((_grammar_text() + _Brackets.__qualname__ + "lalr,keep_all_tokens").encode()).hexdigest()
    try:
        d = Path(tempfile.gettempdir()) / f"archdsl-{os.getuid() if hasattr(os, 'getuid') else 0}"
        d.mkdir(exist_ok=True)
        return str(d / f"arch-lark-{key[:12]}.cache")
    except OSError:
        return False


def parse(text: str, file: str = "<string>") -> Program:
    """Parse ``.arch`` source text into a :class:`Program`; raise :class:`ArchError` on bad syntax."""
    try:
        return _parse(text, "start", file)
    except UnexpectedInput as err:
        from .syntax_errors import syntax_error  # only when a parse fails

        raise syntax_error(err, file, text, parser()) from None


def parse_expr(text: str, file: str = "<string>", line: int = 1, col: int = 1) -> Expr:
    """Parse one expression (used for ``{...}`` in interpolated labels and ``-D`` values)."""
    try:
        return _parse(text, "expr", file)
    except UnexpectedInput:
        raise ArchError(f"bad expression {text[:40]!r}", Span(file, line, col)) from None
    except ArchError as err:  # a position inside the label is not a position in the file
        raise ArchError(err.diagnostics[0].message, Span(file, line, col), err.diagnostics[0].hint) from None
