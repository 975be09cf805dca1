"""``init`` declarations: checking a scheme and its arguments, and what each declaration reaches.

``init conv: kaiming_normal(mode="fan_out")`` applies to the op kind in the scope where it is
written and below; ``init fc: normal(std=0.01)`` names a module by its label, which may be
defined later in the body, so those are checked once the network is built.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import ops
from ..errors import ArchError, Diagnostics, did_you_mean
from ..ir import Scope
from ..lang import ast as S
from ..ops.init import SCHEMES

_INIT_CHOICES = {  # the string arguments of torch.nn.init
    "mode": ("fan_in", "fan_out"),
    "nonlinearity": ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                     "conv_transpose3d", "sigmoid", "tanh", "relu", "leaky_relu", "selu"),
}
# the ops an init declaration can reach: those with a weight PyTorch initialises
INIT_OPS = ops.with_trait(ops.Trait.INITIALISABLE)
_INIT_REACH = f"init reaches {', '.join(INIT_OPS)}, or a layer by its label"


def declare(stmt: S.Init, scope: Scope, value_of: Callable[[S.Expr], Any]) -> bool:
    """Check an ``init`` statement and record it on ``scope``.  True when it names a module label
    rather than an op kind: :func:`check_labels` checks those at the end."""
    if stmt.scheme not in SCHEMES:
        raise ArchError(f"unknown initialisation '{stmt.scheme}'", stmt.span, did_you_mean(stmt.scheme, SCHEMES))
    args = {}
    for a in stmt.args:
        if a.name is None:
            raise ArchError("initialisation arguments are named, e.g. std=0.01", a.span)
        v = args[a.name] = value_of(a.value)
        choices = _INIT_CHOICES.get(a.name)
        if choices is not None and v not in choices:  # strings reach the generated code: only known ones
            raise ArchError(f"initialisation argument '{a.name}' must be one of {', '.join(map(repr, choices))}",
                            a.span, did_you_mean(str(v), choices))
        if choices is None and (isinstance(v, bool) or not isinstance(v, (int, float))):
            raise ArchError(f"initialisation argument '{a.name}' must be a number", a.span)
    bad = set(args) - set(SCHEMES[stmt.scheme])
    if bad:
        raise ArchError(f"{stmt.scheme} takes {', '.join(SCHEMES[stmt.scheme]) or 'no arguments'}", stmt.span)
    if stmt.op in ops.REGISTRY:
        if stmt.op not in INIT_OPS:
            raise ArchError(f"init {stmt.op}: {stmt.op} has no weights to initialise", stmt.span, _INIT_REACH)
        scope.inits[stmt.op] = (stmt.scheme, args)
        return False
    scope.label_inits[stmt.op] = (stmt.scheme, args)  # a module label: it may be defined later
    return True


def check_labels(label_inits: list[tuple[Scope, S.Init]], failed: set[int], diags: Diagnostics) -> None:
    """Each ``init LABEL`` must reach a conv, linear or normalisation module of that name.
    ``failed``: id() of the scopes where a statement failed, whose missing layers are not errors."""
    for scope, stmt in label_inits:
        nodes = [n for n in scope.nodes() if n.name == stmt.op]
        if any(n.op in INIT_OPS for n in nodes):
            continue
        if nodes:
            diags.error(f"init {stmt.op}: the module '{stmt.op}' is a {nodes[0].op}, which has no weights "
                        "to initialise", stmt.span, _INIT_REACH)
            continue
        if id(scope) in failed:
            continue  # the layer may be in what failed to build: that error is the one to fix
        labels = {n.name for n in scope.nodes() if n.op in INIT_OPS}
        diags.error(f"init {stmt.op}: no op kind or module label '{stmt.op}' here", stmt.span,
                    did_you_mean(stmt.op, [*ops.REGISTRY, *labels])
                    or "init takes an op kind (conv, bn, ...) or the label of a layer in this scope")
