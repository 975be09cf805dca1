"""Safe evaluation of ``.arch`` expressions (no ``eval``): numbers, strings, tuples, tensor shapes."""
from __future__ import annotations

import math
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from . import ast as S
from .lexicon import SHAPE_ALIASES, SHAPE_ATTRS
from ..errors import ArchError, did_you_mean
from ..ops import Shape

MAX_INT = 2 ** 62


@dataclass(frozen=True)
class TensorView:
    """What an expression sees of a tensor: ``x.channels``, ``x.h``, ``x.w``, ``x.shape``; and,
    for an op argument that takes a tensor (``resize(to=image)``), the graph value it names."""

    shape: Shape
    value: Any = None

    def attr(self, name: str):
        if name not in SHAPE_ATTRS:  # the lexicon says which attributes there are; this computes them
            raise KeyError(name)
        s = self.shape
        table = {"shape": tuple(s), "rank": len(s), "channels": s[0] if s else None,
                 "c": s[0] if s else None, "features": s[-1] if s else None,
                 "h": s[1] if len(s) == 3 else None, "w": s[2] if len(s) == 3 else None}
        if name not in table or table[name] is None:
            raise KeyError(name)
        return table[name]


def make_divisible(v, divisor, min_value=None):
    """torchvision's ``_make_divisible`` (MobileNet): round to a multiple, never down by >10%."""
    min_value = divisor if min_value is None else min_value
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def round_to_multiple(v, divisor, round_up_bias=0.9):
    """torchvision's MNASNet ``_round_to_multiple_of``."""
    new_v = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new_v if new_v >= round_up_bias * v else new_v + divisor


FUNCTIONS: dict[str, Callable] = {
    "min": min, "max": max, "abs": abs, "int": int, "float": float, "round": round, "len": len,
    "floor": math.floor, "ceil": math.ceil, "str": str,
    "make_divisible": make_divisible, "round_to_multiple": round_to_multiple,
}

_BIN: dict[str, Callable] = {
    "+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv,
    "//": operator.floordiv, "%": operator.mod, "**": operator.pow,
    "==": operator.eq, "!=": operator.ne, "<": operator.lt, "<=": operator.le,
    ">": operator.gt, ">=": operator.ge,
}


class FollowOnError(ArchError):
    """An error that follows from one already reported (a name whose definition failed): it
    carries no diagnostic of its own, so that one mistake gets one message."""

    def __init__(self):
        super().__init__([])

    @property
    def span(self):
        from ..errors import NO_SPAN

        return NO_SPAN


FAILED = object()  # the value of a name whose definition was an error (reported there)


class Env:
    """Constants visible at a point in the program (lexically nested)."""

    def __init__(self, values: dict[str, Any] | None = None, parent: Env | None = None):
        self.values = dict(values or {})
        self.parent = parent

    def lookup(self, name: str):
        e: Env | None = self
        while e is not None:
            if name in e.values:
                return e.values[name]
            e = e.parent
        raise KeyError(name)

    def names(self) -> set[str]:
        out: set[str] = set()
        e: Env | None = self
        while e is not None:
            out |= set(e.values)
            e = e.parent
        return out

    def child(self, values: dict[str, Any] | None = None) -> Env:
        return Env(values, self)


def type_name(v) -> str:
    return {bool: "bool", int: "int", float: "float", str: "string", tuple: "tuple"}.get(type(v), "tensor")


MAX_LEN = 1_000_000  # characters of a string
MAX_ITEMS = 100_000  # the size of a tuple: its items through nested tuples, a string's characters each


def value_size(v, limit: int = MAX_ITEMS) -> int:
    """The size of ``v`` about as printed: an item each, nested tuples counted through, a string
    its characters; the count stops once past ``limit``.

    Tuples share their items, so ``(t, t)`` nested 60 deep is small in memory but has 2**60 items
    once printed; counting with a budget keeps the check as cheap as the value is allowed to be.
    """
    n, stack = 0, [v]
    while stack and n <= limit:
        x = stack.pop()
        if isinstance(x, str):
            n += len(x)
        elif isinstance(x, tuple):
            n += len(x)
            stack.extend(i for i in x if isinstance(i, (tuple, str)))
    return n


def _check_size(v, span):
    if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
        raise ArchError(f"number too large ({str(v)[:20]}...)", span, "archdsl works with numbers below 2**62")
    if isinstance(v, float) and not math.isfinite(v):
        raise ArchError(f"the result is not a finite number ({v})", span)
    if isinstance(v, complex):  # (-8) ** 0.5
        raise ArchError("the result is not a real number", span)
    if isinstance(v, str) and len(v) > MAX_LEN:
        raise ArchError(f"string too long ({len(v):,} characters; the limit is {MAX_LEN:,})", span)
    if isinstance(v, tuple) and value_size(v) > MAX_ITEMS:
        raise ArchError(f"tuple too large (over {MAX_ITEMS:,} items, nested tuples counted)", span,
                        "archdsl values are small configuration tables")
    return v


def evaluate(e: S.Expr, env: Env, tensors: Callable[[str], TensorView | None] | None = None,
             flow: TensorView | None = None, symbolic: bool = False) -> Any:
    """Evaluate ``e``.  ``tensors(name)`` resolves tensor names; ``flow`` is ``in``.

    With ``symbolic`` (input dimensions), an unknown name evaluates to itself as a symbolic size.
    """
    if type(e) in _LITERALS:  # most arguments are literals: no evaluator for them
        return e.value
    return _Evaluator(env, tensors, flow, symbolic).visit(e)


class _Evaluator(S.NodeVisitor):
    """One evaluation: the names it sees, and a ``visit_<Class>`` per expression node."""

    __slots__ = ("env", "tensors", "flow", "symbolic")

    def __init__(self, env: Env, tensors, flow, symbolic: bool):
        self.env, self.tensors, self.flow, self.symbolic = env, tensors, flow, symbolic

    def _value(self, e: S.Num | S.Str | S.Bool | S.Const):
        return e.value

    visit_Num = visit_Str = visit_Bool = visit_Const = _value

    def visit_Name(self, e: S.Name):
        try:
            v = self.env.lookup(e.id)
        except KeyError:
            pass
        else:
            if v is FAILED:
                raise FollowOnError()
            return v
        if self.tensors is not None:
            view = self.tensors(e.id)
            if view is not None:
                return view
        if self.symbolic:
            return e.id
        raise ArchError(f"unknown name '{e.id}'", e.span, did_you_mean(e.id, self.env.names()))

    def visit_InName(self, e: S.InName):
        if self.flow is None:
            raise ArchError("'in' is not defined here: nothing flows into this point", e.span)
        return self.flow

    def visit_Attr(self, e: S.Attr):
        v = self.visit(e.value)
        if not isinstance(v, TensorView):
            raise ArchError(f"a {type_name(v)} has no attribute '{e.name}'", e.span)
        try:
            return v.attr(e.name)
        except KeyError:
            raise ArchError(f"a tensor of shape {list(v.shape)} has no '{e.name}'", e.span,
                            did_you_mean(e.name, [a for a in SHAPE_ATTRS if a not in SHAPE_ALIASES])) from None

    def visit_BoolOp(self, e: S.BoolOp):
        left = self.visit(e.left)
        if e.op == "and":
            return self.visit(e.right) if left else left
        return left if left else self.visit(e.right)

    def visit_Not(self, e: S.Not):
        return not self.visit(e.operand)

    def visit_Neg(self, e: S.Neg):
        v = self.visit(e.operand)
        if not isinstance(v, (int, float)) or isinstance(v, bool):
            raise ArchError(f"cannot negate a {type_name(v)}", e.span)
        return -v

    def visit_Ternary(self, e: S.Ternary):
        return self.visit(e.then) if self.visit(e.cond) else self.visit(e.orelse)

    def _items(self, e: S.TupleExpr | S.ListExpr):
        return _check_size(tuple(self.visit(i) for i in e.items), e.span)

    visit_TupleExpr = visit_ListExpr = _items

    def visit_Index(self, e: S.Index):
        v, i = self.visit(e.value), self.visit(e.index)
        if isinstance(v, TensorView):
            v = v.shape
        if not isinstance(v, (tuple, str)) or not isinstance(i, int) or isinstance(i, bool):
            raise ArchError(f"cannot index a {type_name(v)} with a {type_name(i)}", e.span)
        if not -len(v) <= i < len(v):
            raise ArchError(f"index {i} out of range for a tuple of {len(v)}", e.span)
        return v[i]

    def visit_Func(self, e: S.Func):
        fn = FUNCTIONS.get(e.name)
        if fn is None:
            raise ArchError(f"unknown function '{e.name}'", e.span, did_you_mean(e.name, FUNCTIONS))
        args = [self.visit(a) for a in e.args]
        try:
            return _check_size(fn(*args), e.span)
        except (TypeError, ValueError, OverflowError, ZeroDivisionError) as err:
            raise ArchError(f"{e.name}(): {err}", e.span) from None

    def visit_BinOp(self, e: S.BinOp):
        left, right = self.visit(e.left), self.visit(e.right)
        _check_operands(e, left, right)
        try:
            if e.op in _ARITHMETIC and (isinstance(left, TensorView) or isinstance(right, TensorView)):
                raise TypeError
            if e.op in _NUMERIC and not all(isinstance(v, (int, float)) for v in (left, right)):
                raise TypeError
            return _check_size(_BIN[e.op](left, right), e.span)
        except ZeroDivisionError:
            raise ArchError("division by zero", e.span) from None
        except (TypeError, ValueError, OverflowError):
            raise ArchError(f"cannot apply '{e.op}' to a {type_name(left)} and a {type_name(right)}",
                            e.span) from None

    def generic_visit(self, e):  # pragma: no cover - tests/lang/test_visitor.py checks every class
        raise ArchError("unsupported expression", e.span)


_LITERALS = {S.Num, S.Str, S.Bool, S.Const}
_ARITHMETIC = {"+", "-", "*", "/", "//", "%", "**", "<", "<=", ">", ">="}  # not for tensors
_NUMERIC = {"-", "/", "//", "%", "**"}  # numbers only: no string formatting ("%999999999d" % 1)


def _check_operands(e: S.BinOp, left, right) -> None:
    """Refuse a result too large to build, before building it."""
    if e.op == "**" and isinstance(right, (int, float)) and isinstance(left, (int, float)):
        if abs(right) > 256 and abs(left) > 1:
            raise ArchError("exponent too large", e.span)
    if e.op == "*" and {type(left), type(right)} & {str, tuple}:
        seq, n = (left, right) if isinstance(left, (str, tuple)) else (right, left)
        size, limit = (len(seq), MAX_LEN) if isinstance(seq, str) else (max(1, value_size(seq)), MAX_ITEMS)
        if isinstance(n, int) and size * n > limit:
            raise ArchError("repetition too large", e.span, f"the limit is {limit:,} items")
