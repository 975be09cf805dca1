"""Calling a block or a network: resolving network aliases and binding a call's arguments to the
definition's parameters, with the signature in every message about them.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from ..errors import ArchError, Diagnostic, Span, did_you_mean
from ..lang import ast as S
from ..lang.expr import Env, evaluate


def resolve_alias(netdef: S.NetworkDef, networks: Mapping[str, S.NetworkDef]) -> tuple[S.NetworkDef, tuple[S.Arg, ...]]:
    """The network whose body ``netdef`` builds (``network resnet50 = resnet(layers=...)``
    follows aliases to it) and the arguments the aliases pass, outermost last."""
    params_from = netdef
    call_args: tuple[S.Arg, ...] = ()
    seen = {netdef.name}
    while params_from.alias_of is not None:
        target = networks.get(params_from.alias_of)
        if target is None or target.name in seen:
            what = "cycle of network aliases" if target else f"unknown network '{params_from.alias_of}'"
            raise ArchError(what, params_from.span,
                            did_you_mean(params_from.alias_of, networks) if not target else None)
        seen.add(target.name)
        call_args = params_from.alias_args + call_args
        params_from = target
    return params_from, call_args


def bind_params(d: S.BlockDef | S.NetworkDef, args: Sequence[S.Arg], env: Env, globals_env: Env,
                span: Span, text: Callable[[Span], str | None]) -> dict[str, Any]:
    """The parameters of block or network ``d`` for a call with ``args``, evaluated in ``env``
    (defaults in ``globals_env``, where a block's body runs); a mistake shows the signature, as a
    compiler shows a function's declaration.  ``text(span)`` quotes the source."""
    params = d.params
    kind = "block" if isinstance(d, S.BlockDef) else "network"
    what = f"{kind} '{d.name}'"
    sig = f"{kind} {d.name}({', '.join(text(p.span) or p.name for p in params)})"

    def error(message, where, hint=None):
        return ArchError(Diagnostic("error", message, where, hint or f"the signature is {sig}",
                                    (f"'{d.name}' is defined at {d.span}",)))

    values: dict[str, Any] = {}
    names = [p.name for p in params]
    positional = [a for a in args if a.name is None]
    if len(positional) > len(params):
        raise error(f"{what} takes {len(params)} argument{'s' if len(params) != 1 else ''}, "
                    f"got {len(positional)}", span)
    for p, a in zip(params, positional):
        values[p.name] = evaluate(a.value, env)
    for a in args:
        if a.name is None:
            continue
        if a.name not in names:
            close = did_you_mean(a.name, names)
            raise error(f"{what} has no parameter '{a.name}'", a.span,
                        f"{close} The signature is {sig}" if close else None)
        if a.name in values:
            raise ArchError(f"parameter '{a.name}' given twice", a.span)
        values[a.name] = evaluate(a.value, env)
    scope_env = globals_env.child(values)
    for p in params:
        if p.name not in values:
            if p.default is None:
                raise error(f"{what} needs a value for '{p.name}'", span)
            values[p.name] = evaluate(p.default, scope_env)
            scope_env.values[p.name] = values[p.name]
    return {n: values[n] for n in names}
