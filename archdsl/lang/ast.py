"""The AST of an ``.arch`` file: frozen dataclasses, each carrying the
:class:`~archdsl.errors.Span` it came from, and :class:`NodeVisitor` to walk them.

The node classes are the whole description (pycparser's ``_c_ast.cfg``, written as dataclasses):
a node's children are its fields that hold nodes or tuples of nodes (:func:`children`).  A job
that walks the tree (evaluating, printing) is a :class:`NodeVisitor` with a ``visit_<Class>``
method per node class it handles.
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Union

from ..errors import Span

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



EXPRESSIONS = tuple(Expr.__subclasses__())
STATEMENTS = (Input, Output, Assign, PipeStmt, Let, For, If, Init)
ITEMS = (Import, Let, BlockDef, NetworkDef)  # what a file holds at the top level
STAGE_CORES = (Call, InRef, Container)


def children(node) -> list:
    """The nodes directly below ``node``: its fields that hold nodes, tuples of them flattened
    (a container's branches are tuples of statements)."""
    out = []
    stack = [getattr(node, f.name) for f in fields(node) if f.name != "span"]
    stack.reverse()
    while stack:
        x = stack.pop()
        if isinstance(x, (tuple, list)):
            stack.extend(reversed(x))
        elif hasattr(type(x), "__dataclass_fields__") and not isinstance(x, Span):
            out.append(x)
    return out


class NodeVisitor:
    """Walks the AST, after pycparser's ``c_ast.NodeVisitor``: ``visit(node, *args)`` calls
    ``self.visit_<Class>(node, *args)``, or :meth:`generic_visit` for a class without one.

    The method is looked up once per visitor class and node class, so dispatch costs one dict
    lookup (``evaluate`` is hot: it runs for every argument of every op).
    """

    _methods: dict = {}

    def __init_subclass__(cls, **kw):
        super().__init_subclass__(**kw)
        cls._methods = {}

    def visit(self, node, *args):
        try:
            method = self._methods[type(node)]
        except KeyError:
            method = self._methods[type(node)] = getattr(type(self), "visit_" + type(node).__name__,
                                                         type(self).generic_visit)
        return method(self, node, *args)

    def generic_visit(self, node, *args):
        for child in children(node):
            self.visit(child, *args)
