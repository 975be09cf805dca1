"""Binding a call's arguments to an op's attributes: positional and keyword arguments, each
converted and checked by its attribute's kind (``Attr.kind``, ``Attr.minimum``), a legal but
implausible value warned about with what it was taken as (``Attr.usual``), defaults filled in."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import ops
from ..errors import ArchError, Span, did_you_mean
from ..lang import ast as S
from ..lang.expr import TensorView, type_name
from ..ops import REQUIRED

Warn = Callable[[str, Span, "str | None"], None]

_ORDINALS = ("first", "second", "third", "fourth", "fifth", "sixth", "seventh", "eighth", "ninth", "tenth",
             "eleventh", "twelfth", "13th", "14th", "15th", "16th")


def bind(spec: ops.OpSpec, call: S.Call, evaluate: Callable[[S.Expr], Any], warn: Warn,
         text: Callable[[Span], str | None]) -> dict:
    """The attributes of ``spec`` from the arguments of ``call``: positional in schema order, then
    by name; each converted by its kind, checked against its plausible range, defaults filled in.
    ``evaluate`` gives an argument's value, ``warn`` reports, ``text`` is the source of a span."""
    values: dict[str, Any] = {}
    positional = [a for a in call.args if a.name is None]
    if len(positional) > len(spec.attrs):
        raise ArchError(f"{spec.name} takes at most {len(spec.attrs)} argument"
                        f"{'s' if len(spec.attrs) != 1 else ''}, got {len(positional)}", call.span,
                        f"{spec.name}({', '.join(a.name for a in spec.attrs)})")
    for attr, a in zip(spec.attrs, positional):
        values[attr.name] = (evaluate(a.value), a.span)
    index = {attr.name: i for i, attr in enumerate(spec.attrs[:len(positional)])}
    for a in call.args:
        if a.name is None:
            continue
        if spec.attr(a.name) is None:
            raise ArchError(f"{spec.name} has no argument '{a.name}'", a.span,
                            did_you_mean(a.name, [t.name for t in spec.attrs]) or
                            f"{spec.name} takes {', '.join(t.name for t in spec.attrs) or 'no arguments'}")
        if a.name in values:
            raise ArchError(f"argument '{a.name}' given twice", a.span)
        values[a.name] = (evaluate(a.value), a.span)
    out = {}
    for attr in spec.attrs:
        if attr.name in values:
            v, span = values[attr.name]
            out[attr.name] = convert(spec.name, attr, v, span)
            _check_usual(spec, attr, out[attr.name], span, call, index.get(attr.name), warn, text)
        elif attr.default is REQUIRED:
            raise ArchError(f"{spec.name} needs '{attr.name}'" + (f" ({attr.doc})" if attr.doc else ""),
                            call.span, f"e.g. {spec.example}" if spec.example else None)
        else:
            out[attr.name] = attr.default
    return out

def _check_usual(spec: ops.OpSpec, attr: ops.Attr, v, span: Span, call: S.Call, index: int | None, warn: Warn,
                 text: Callable[[Span], str | None]) -> None:
    """Warn about a legal but implausible argument, saying what it was taken as: bn(16) is
    PyTorch's BatchNorm2d(16), and sets eps, since bn reads its channels from its input."""
    if attr.usual is None or isinstance(v, bool) or not isinstance(v, (int, float)):
        return
    low, high = attr.usual
    if low <= v <= high:
        return
    call_text = text(call.span) or f"{spec.name}(...)"
    arg = text(span) or repr(v)
    usual = f"{attr.name} is usually from {low} to {high}" + (f" ({attr.doc})" if attr.doc else "")
    if index is None:
        warn(f"{call_text}: {attr.name} {v!r} is outside the usual range, {low} to {high}", span,
                   attr.doc or None)
        return
    message = f"{call_text}: {arg} is taken as {attr.name} (the {_ORDINALS[index]} argument of {spec.name})"
    if spec.has_weights and float(v).is_integer() and v > 1:  # a channel count, the PyTorch way
        warn(message, span, f"{spec.name} infers its channels from its input: leave out {arg}, or write "
                                  f"{attr.name}={attr.default!r} to set {attr.name}")
    else:
        warn(message, span, usual)


def convert(op: str, attr: ops.Attr, v, span: Span):
    """Check an argument against its attribute kind; normalise lists to tuples."""
    kind = attr.kind

    def bad(expect):
        return ArchError(f"{op} argument '{attr.name}' must be {expect}, got {v!r}", span)

    def is_int(x):
        return isinstance(x, int) and not isinstance(x, bool)

    if v is None and attr.default is None:
        return None
    if kind == "int":
        if not is_int(v):
            raise bad("a whole number")
        if v < 0 or v > 1 << 24:
            raise bad("a whole number from 0 to 2**24")
        if v < attr.minimum:
            raise bad(f"at least {attr.minimum}")
        return v
    if kind == "tensor":
        if not isinstance(v, TensorView) or v.value is None:
            raise ArchError(f"{op} argument '{attr.name}' must be a tensor, got a {type_name(v)}", span,
                            "name one: an input or a tensor named with '=' (e.g. to=image)")
        return v
    if kind == "axis":
        if not is_int(v) or not -16 <= v < 16:
            raise bad("an axis number (negative counts from the end)")
        return v
    if kind == "float":
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("a number")
        return float(v)
    if kind == "number":  # an int stays an int: upsample(2) is scale_factor=2 in the generated module
        if isinstance(v, bool) or not isinstance(v, (int, float)):
            raise bad("a number")
        return v
    if kind == "bool":
        if not isinstance(v, bool):
            raise bad("true or false")
        return v
    if kind == "str":
        if not isinstance(v, str):
            raise bad("a string")
        if attr.choices and v not in attr.choices:
            raise ArchError(f"{op} argument '{attr.name}' must be one of {', '.join(map(repr, attr.choices))}",
                            span, did_you_mean(v, attr.choices))
        return v
    if kind in ("pair", "pad"):
        if kind == "pad" and v == "same":
            return v
        if is_int(v):
            v = (v, v)
        if not (isinstance(v, tuple) and len(v) == 2 and all(is_int(x) and 0 <= x <= 1 << 24 for x in v)):
            raise bad('a whole number or a pair (a, b)' + (' or "same"' if kind == "pad" else ""))
        if min(v) < attr.minimum:
            raise bad(f"at least {attr.minimum}")
        return v
    if kind == "ints":
        if is_int(v):
            v = (v,)
        if not (isinstance(v, tuple) and all(is_int(x) for x in v)) or len(v) > 16:
            raise bad("a tuple of whole numbers")
        return v
    return v
