"""Module names: the labels a program gives its layers, and the numbers it does not.

A module name becomes an attribute of the generated ``nn.Module`` and a ``state_dict`` key, so it
must be a plain, unique name in its scope; unlabelled children are numbered ``0, 1, 2`` like
``nn.Sequential``.  This module also holds the table of named tensors a body sees, and why a
module scope hides the tensors named around it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from ..errors import ArchError, Span
from ..ir import Scope, Value
from ..lang import ast as S, parser as P

# Names that torch.nn.Module already uses: a submodule may not take them.
MODULE_RESERVED = frozenset([
    "T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children",
    "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward",
    "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu",
    "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules",
    "named_parameters", "parameters", "register_backward_hook", "register_buffer",
    "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook",
    "register_full_backward_pre_hook", "register_load_state_dict_post_hook",
    "register_load_state_dict_pre_hook", "register_module", "register_parameter",
    "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_",
    "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train",
    "training", "type", "xpu", "zero_grad",
])
MAX_NAME = 128  # characters of a module name


def label_text(label: S.Label, value_of: Callable[[S.Expr], Any]) -> str:
    """The module name a label gives, ``{...}`` interpolated with ``value_of``; refused unless it
    is a name PyTorch accepts for a submodule."""
    if len(label.text) > 1024:  # before interpolating: each {...} is parsed
        raise ArchError(f"invalid module name {label.text[:40]!r}... ({len(label.text)} characters)", label.span,
                        "a module name has at most 128 characters")
    if not label.interpolated:
        text = label.text
    else:
        def sub(m):
            expr = P.parse_expr(m.group(1), label.span.file, label.span.line, label.span.col)
            return str(value_of(expr))
        try:
            text = re.sub(r"\{([^{}]*)\}", sub, label.text)
        except ArchError as err:
            if not err.diagnostics:  # follows from an error already reported
                raise
            raise ArchError(err.diagnostics[0].message, label.span, err.diagnostics[0].hint) from None
    if not text or "." in text or text.startswith("_") or text in MODULE_RESERVED \
            or any(ch.isspace() or not ch.isprintable() for ch in text) or len(text) > MAX_NAME:
        reason = ("a module name may not be empty, contain '.', whitespace or control characters, "
                  "start with '_', exceed 128 characters, or be an attribute of torch.nn.Module")
        shown = repr(text) if len(text) <= 130 else f"{text[:40]!r}... ({len(text)} characters)"
        raise ArchError(f"invalid module name {shown}", label.span, reason)
    return text


class Namer:
    """The names taken in each scope so far: the elaborator's naming state, kept off the IR."""

    def __init__(self) -> None:
        self._taken: dict[int, set[str]] = {}  # by id() of the scope: scopes live as long as this
        self._counters: dict[int, int] = {}

    def take(self, scope: Scope, label: S.Label | None, value_of: Callable[[S.Expr], Any]) -> tuple[str, bool]:
        """A name for the next child of ``scope``: its label, or the next number; and whether it
        was labelled."""
        taken = self._taken.setdefault(id(scope), set())
        if label is None:
            n = self._counters.get(id(scope), 0)
            self._counters[id(scope)] = n + 1
            name = str(n)
            taken.add(name)
            return name, False
        text = label_text(label, value_of)
        if text in taken:
            where = f" in '{scope.path}'" if scope.path else ""
            raise ArchError(f"module name '{text}' is used twice{where}", label.span,
                            "labels become state_dict keys and must be unique in their scope")
        taken.add(text)
        return text, True

    def child_scope(self, kind: str, label: S.Label | None, parent: Scope, span: Span,
                    value_of: Callable[[S.Expr], Any], block: str | None = None,
                    args: dict[str, Any] | None = None) -> Scope:
        """A new module scope (a block instance, a seq, a labelled merge) named in ``parent``."""
        name, _ = self.take(parent, label, value_of)
        scope = Scope(kind, name, parent, span, block=block, args=dict(args or {}))
        parent.items.append(scope)
        return scope


# why a module scope hides the tensors named around it, and what to do instead
_CROSSING = {
    "block": "a block receives only the tensor it is called on: pass what it needs as an argument "
             "(e.g. x.channels), or merge with the tensor outside the block",
    "seq": "a seq is a module that receives only the tensor flowing in: move the stage that reads "
           "the tensor out of the seq",
    "labelled": "a labelled merge is a module that receives only the tensor flowing in: drop the "
                "label, and the merge sees the tensors named around it",
}


class Tensors:
    """Named tensors visible in a body.  A module scope (a block, a seq, a labelled merge) starts a
    sealed table: it does not see outer names, because its ``forward()`` receives only the tensor
    flowing in.  It keeps the outer table (``hidden``) to say why a name is unknown."""

    def __init__(self, parent: Tensors | None = None, hidden: Tensors | None = None, wall: str = ""):
        self.values: dict[str, Value | tuple[Value, ...]] = {}
        self.parent = parent
        self.hidden, self.wall = hidden, wall

    def get(self, name: str):
        t: Tensors | None = self
        while t is not None:
            if name in t.values:
                return t.values[name]
            t = t.parent
        return None

    def names(self) -> set[str]:
        out: set[str] = set()
        t: Tensors | None = self
        while t is not None:
            out |= set(t.values)
            t = t.parent
        return out

    def wall_hiding(self, name: str) -> str | None:
        """The innermost module scope ("seq 'body'") that hides an outer tensor ``name``, if any."""
        root = self
        while root.parent is not None:
            root = root.parent
        if root.hidden is None:
            return None
        outside = root.hidden.get(name) is not None or root.hidden.wall_hiding(name) is not None
        return root.wall if outside else None

    def hidden_hint(self, name: str) -> tuple[str, str] | None:
        """(message, hint) for a tensor named outside the module scope that uses it."""
        wall = self.wall_hiding(name)
        if wall is None:
            return None
        return (f"tensor '{name}' is named outside this {wall}, and cannot be seen inside it",
                _CROSSING[wall.split()[0]])
