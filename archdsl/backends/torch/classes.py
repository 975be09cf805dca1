"""Grouping the instances of a scope into generated classes, and naming their parameters.

Instances of one ``block`` that share a structure share one class: every number in their
submodule constructors is a *slot*; slots equal across all instances stay literals, slots that
differ become constructor arguments named after the block parameter (or the input channel count)
they always equal, else after the PyTorch argument they fill (``conv1_out_channels``).  Instances
whose structure differs (a projection shortcut present in some, absent in others) get one class
per variant, and the class docstring says why.
"""
from __future__ import annotations

from dataclasses import dataclass

from ...ir import Network, Scope
from .names import Namespace, camel, sanitize
from .render import Mod, Raw


@dataclass
class Group:
    name: str
    raws: list[Raw]
    params: list[str]  # constructor parameter names
    slot_names: list[str | None]  # per slot: parameter name, or None for a literal
    note: str = ""


def _same(values: list, others: list) -> bool:
    return all(type(a) is type(b) and a == b for a, b in zip(values, others))


def group(raws: list[Raw], class_ns: Namespace, net: Network) -> list[Group]:
    by_key: dict[tuple, list[Raw]] = {}
    for r in raws:
        by_key.setdefault(r.key, []).append(r)
    groups: list[Group] = []
    variants: dict[tuple[str, str], list[Group]] = {}  # per block (or label): its classes
    for members in by_key.values():  # all class names first: constructor parameters must avoid them
        first = members[0].scope
        origin = first.block if first.kind in ("block", "network") else (first.name if not first.name.isdigit() else first.kind)
        gs = variants.setdefault((first.kind, origin or ""), [])
        base = camel(origin or "Module")
        gs.append(Group(class_ns.create(f"{base}{len(gs) + 1}" if gs else base), members, [], []))
        groups.append(gs[-1])
    for g in groups:
        _name_slots(g, class_ns, net)
    for gs in variants.values():
        if len(gs) > 1:
            for g in gs:
                g.note = _variant_note(g, gs)
    return groups


def _name_slots(g: Group, class_ns: Namespace, net: Network) -> None:
    members, first = g.raws, g.raws[0].scope
    columns = list(zip(*(m.slots() for m in members))) if members[0].slots() else []
    pns = Namespace(reserved=class_ns.used)
    chosen: dict[str, str] = {}

    def param(wanted: str) -> str:
        if wanted not in chosen:
            chosen[wanted] = pns.create(wanted)
        return chosen[wanted]

    named_columns: list[tuple[list, str]] = []
    for k, col in enumerate(columns):
        col = list(col)
        if all(type(v) is type(col[0]) and v == col[0] for v in col):
            g.slot_names.append(None)
            continue
        twin = next((n for c, n in named_columns if _same(c, col)), None)
        if twin is not None:  # the same value in every instance: one argument serves both
            g.slot_names.append(twin)
            continue
        pname = None
        if first.kind == "block":
            for p in first.args:
                if _same(col, [m.scope.args.get(p) for m in members]):
                    pname = p
                    break
        if pname is None:
            chans = [net.shape_of(m.scope.inputs[0])[0] if m.scope.inputs else None for m in members]
            if _same(col, chans):
                pname = "in_channels"
        if pname is None:
            derived = _derived(col, members, first, net)
            if derived is not None:
                base, rest = derived.split(" ", 1)  # its base is named like any other parameter
                derived = f"{param(base)} {rest}"
                g.slot_names.append(derived)
                named_columns.append((col, derived))
                continue
            pname = _slot_role(members[0], k)
        g.slot_names.append(param(pname))
        named_columns.append((col, param(pname)))
    g.params = list(dict.fromkeys(n for n in g.slot_names if n and n.isidentifier()))
    for n in g.slot_names:  # a derived slot ("planes * 4") needs its base as a parameter
        if n and not n.isidentifier() and n.split(" ")[0] not in g.params:
            g.params.append(n.split(" ")[0])
    if "in_channels" in g.params:
        g.params.remove("in_channels")
        g.params.insert(0, "in_channels")
    for m in members:
        m.group = g


def _derived(col: list, members: list[Raw], first: Scope, net: Network) -> str | None:
    """``planes * 4`` or ``in_channels // 2`` when a slot is a fixed multiple of a parameter."""
    if not all(type(v) is int for v in col):
        return None
    bases: list[tuple[str, list]] = []
    if first.kind == "block":
        bases += [(p, [m.scope.args.get(p) for m in members]) for p in first.args]
    if all(m.scope.inputs for m in members):
        bases.append(("in_channels", [net.shape_of(m.scope.inputs[0])[0] for m in members]))
    for name, vals in bases:
        if not all(type(v) is int and v > 0 for v in vals):
            continue
        if all(c % v == 0 for c, v in zip(col, vals)) and len({c // v for c, v in zip(col, vals)}) == 1:
            return f"{name} * {col[0] // vals[0]}"
        if all(v % c == 0 for c, v in zip(col, vals) if c) and all(col) and len({v // c for c, v in zip(col, vals)}) == 1:
            return f"{name} // {vals[0] // col[0]}"
    return None


def _slot_role(raw: Raw, k: int) -> str:
    """A readable name for slot ``k``: the submodule and argument it fills."""
    i = 0
    for name, mod in raw.entries:
        n = len(mod.slots())
        if k < i + n:
            role = _role_in(mod, k - i)
            return f"{sanitize(name)}_{role}" if role else f"{sanitize(name)}_arg"
        i += n
    return "arg"


def _role_in(mod: Mod, k: int) -> str | None:
    for idx, a in enumerate(mod.args):
        if isinstance(a, Mod):
            n = len(a.slots())
            if k < n:
                return _role_in(a, k)
            k -= n
        else:
            if k == 0:
                return mod.roles[idx] if idx < len(mod.roles) else f"arg{idx}"
            k -= 1
    keys = mod.kw_order()
    return keys[k] if 0 <= k < len(keys) else None


def _variant_note(g: Group, gs: list[Group]) -> str:
    mine = {n for n, _ in g.raws[0].entries}
    sets = [{n for n, _ in o.raws[0].entries} for o in gs]
    common, everyone = set.intersection(*sets), set.union(*sets)
    extra, missing = sorted(mine - common), sorted(everyone - mine)
    block = g.raws[0].scope.block or g.raws[0].scope.name
    parts = ([f"with {', '.join(extra)}"] if extra else []) + ([f"without {', '.join(missing)}"] if missing else [])
    why = " and ".join(parts) or "with different arguments baked into forward()"
    return (f"Specialised: `{block}` builds different modules depending on its arguments and input shape, "
            f"so each variant is its own class; this one is {why} ({len(g.raws)} use{'s' if len(g.raws) > 1 else ''}).")
