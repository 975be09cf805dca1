"""Constructors from an op's TorchSpec values, and the text of classes, calls and imports.

A :class:`Mod` is one submodule constructor whose literal leaves are *slots*: the class grouping
(``classes.py``) compares slots across instances and names the ones that differ; this module
renders a Mod back to text with those names in place.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ... import ops
from ...ir import Network, Scope
from .names import escape, is_plain_attr, literal

if TYPE_CHECKING:  # pragma: no cover
    from .classes import Group


@dataclass
class Mod:
    """A submodule constructor call whose literal leaves are slots."""

    func: Any  # "nn.Conv2d", "nn.Sequential", or a Raw (a generated class)
    args: list = field(default_factory=list)  # literals or Mods, passed by position
    kwargs: dict = field(default_factory=dict)  # name -> literal; PyTorch's defaults included
    labels: list[str] | None = None  # nn.Sequential(OrderedDict) keys
    roles: tuple[str, ...] = ()  # PyTorch's names of the positional args (in_channels, ...)
    defaults: dict = field(default_factory=dict)  # PyTorch's keyword defaults, left out when rendering

    def signature(self):
        func = self.func.key if isinstance(self.func, Raw) else self.func
        return (func, tuple(a.signature() if isinstance(a, Mod) else "L" for a in self.args),
                tuple(self.kw_order()), tuple(self.labels or ()))

    def kw_order(self) -> list[str]:
        """Keywords in a canonical, readable order: kernel_size, then PyTorch's own order."""
        known = ["kernel_size", *self.defaults]
        return sorted(self.kwargs, key=lambda k: (known.index(k) if k in known else len(known), k))

    def slots(self) -> list:
        out: list = []
        for a in self.args:
            out.extend(a.slots() if isinstance(a, Mod) else [a])
        for k in self.kw_order():
            out.append(self.kwargs[k])
        return out


def constructor(spec: ops.OpSpec, attrs: dict, in_shapes: list) -> Mod:
    """The Mod of an op's module form, from its TorchSpec values."""
    t = spec.torch
    values = t.args(attrs, in_shapes)
    names = list(values)
    roles = tuple(names[:t.positional])
    kwargs = {**t.defaults, **{k: values[k] for k in names[t.positional:]}}
    return Mod(t.module_class(attrs, in_shapes), [values[k] for k in roles], kwargs, roles=roles,
               defaults=t.defaults)


def call(spec: ops.OpSpec, attrs: dict, xs: list[str], in_shapes: list, in_place: bool = False) -> str:
    """The forward() expression of an op used as a function: its operator, its functional
    builder, or its named function called with the input and the constructor's arguments."""
    t = spec.torch
    if t.operator is not None:
        return f" {t.operator} ".join(xs)
    if callable(t.functional):
        return t.functional(attrs, xs, in_shapes)
    values = t.args(attrs, in_shapes)
    parts = [xs[0]]
    for k, (name, v) in enumerate(values.items()):
        parts.append(literal(v) if k < t.positional else f"{name}={literal(v)}")
    if in_place:
        parts.append("inplace=True")
    return f"{t.functional}({', '.join(parts)})"


@dataclass
class Raw:
    """A scope that needs a class, before instances are grouped."""

    scope: Scope
    base: str  # nn.Module | nn.Sequential
    entries: list[tuple[str, Mod]]
    forward: list[str]
    key: tuple = ()
    group: Group | None = None

    def slots(self) -> list:
        out: list = []
        for _, m in self.entries:
            out.extend(m.slots())
        return out


# ------------------------------------------------------------------------------------ text


def docstring(text: str, indent: str) -> str:
    """A triple-quoted docstring of ``text``, each of its lines filled to 96 columns.

    The raw text is wrapped and each line is escaped afterwards, so the wrapper never splits an
    escape and no line can end in a backslash or hold a closing quote.  Words are never broken:
    a long label stays whole (and searchable) on its own line.  The wrapper may turn ASCII
    whitespace into line breaks; every other unprintable character is shown as its escape.
    """
    lines: list[str] = []
    for line in text.split("\n"):
        lines += textwrap.wrap(line, 96 - len(indent), break_long_words=False, break_on_hyphens=False) or [""]
    body = "\n".join((indent if k and ln else "") + escape(ln, '"""', visible=True) for k, ln in enumerate(lines))
    return f'{indent}"""{body}\n{indent}"""' if len(lines) > 1 else f'{indent}"""{body}"""'


def self_attr(name: str) -> str:
    return f"self.{name}" if is_plain_attr(name) else f"getattr(self, {literal(name)})"


def render_mod(mod: Mod, names: list[str | None], pos: list[int], indent: int) -> str:
    """A constructor's text; ``names[k]`` is the parameter that fills slot ``k`` (None: the
    literal), ``pos`` the cursor over the slots."""
    def take():
        k = pos[0]
        pos[0] += 1
        return k

    pad = " " * indent
    if isinstance(mod.func, Raw):
        g = mod.func.group
        vals: dict[str, Any] = {}
        derived: dict[str, str] = {}
        for slot_name, v in zip(g.slot_names, mod.args):
            k = take()
            if not slot_name:
                continue
            if slot_name.isidentifier():
                vals.setdefault(slot_name, names[k] if names[k] else literal(v))
                continue
            base, op, m = slot_name.split(" ")  # "planes * 4": recover planes from the slot
            m = int(m)
            if names[k]:
                derived.setdefault(base, f"({names[k]}) // {m}" if op == "*" else f"({names[k]}) * {m}")
            else:
                derived.setdefault(base, literal(v // m if op == "*" else v * m))
        return f"{g.name}(" + ", ".join(f"{p}={vals.get(p, derived.get(p))}" for p in g.params) + ")"
    if mod.func == "nn.Sequential":
        parts = []
        for i, a in enumerate(mod.args):
            inner = render_mod(a, names, pos, indent + 4)
            parts.append(f"({literal(mod.labels[i])}, {inner})" if mod.labels else inner)
        body = ",\n".join(pad + "    " + p for p in parts)
        if mod.labels:
            return "nn.Sequential(OrderedDict([\n" + body + ",\n" + pad + "]))"
        return "nn.Sequential(\n" + body + ",\n" + pad + ")"
    out = []
    for a in mod.args:
        k = take()
        out.append(names[k] or literal(a))
    for kw in mod.kw_order():
        k = take()
        v = mod.kwargs[kw]
        if names[k]:
            out.append(f"{kw}={names[k]}")
        elif not (kw in mod.defaults and type(mod.defaults[kw]) is type(v) and mod.defaults[kw] == v):
            out.append(f"{kw}={literal(v)}")
    return f"{mod.func}({', '.join(out)})"


def render_class(g: Group, net: Network, source_name: str) -> list[str]:
    raw = g.raws[0]
    scope = raw.scope
    if scope.kind == "network":
        s = net.summary().totals
        doc = (f"Network `{net.name}` from {source_name}: {s['input']} -> {s['output']}; "
               f"{s['params']:,} parameters, {s['macs']:,} MACs.")
    elif scope.kind == "block":
        doc = f"Block `{scope.block}` from {source_name}."
    else:
        doc = f"The `{scope.name}` {('sequence' if scope.kind == 'seq' else 'group')} of {source_name}."
    if g.note:
        doc += "\n\n" + g.note
    lines = [f"class {g.name}({raw.base}):", docstring(doc, "    "), ""]
    lines.append(f"    def __init__(self{''.join(', ' + p for p in g.params)}):")
    pos = [0]
    if raw.base == "nn.Sequential":
        items = [(n, render_mod(m, g.slot_names, pos, 12)) for n, m in raw.entries]
        if all(n == str(i) for i, (n, _) in enumerate(items)):
            lines.append("        super().__init__(")
            lines += [f"            {t}," for _, t in items]
            lines.append("        )")
        else:
            lines.append("        super().__init__(OrderedDict([")
            lines += [f"            ({literal(n)}, {t})," for n, t in items]
            lines.append("        ]))")
        return lines
    lines.append("        super().__init__()")
    for n, m in raw.entries:
        text = render_mod(m, g.slot_names, pos, 8)
        if is_plain_attr(n):
            lines.append(f"        self.{n} = {text}")
        else:
            lines.append(f"        self.add_module({literal(n)}, {text})")
    if scope.kind == "network":
        lines += init_lines(net)
    lines.append("")
    lines += ["    " + ln if ln else "" for ln in raw.forward]
    return lines


def _init_class(op: str) -> str | None:
    spec = ops.REGISTRY.get(op)
    if spec is None or not spec.has(ops.Trait.INITIALISABLE) or spec.torch is None:
        return None
    return spec.torch.isinstance_of()


def init_lines(net: Network) -> list[str]:
    """The network constructor's ``init`` loops: op kinds by ``isinstance``, then labels."""
    from ...ops.init import torch_statements

    out: list[str] = []
    scopes = [net.root] + [s for s in net.root.walk() if isinstance(s, Scope)]
    for s in scopes:
        target = "self" if s is net.root else f"self.get_submodule({literal(s.path)})"
        if s.inits:
            out.append(f"        for m in {target}.modules():")
            first = True
            for op, (scheme, args) in s.inits.items():
                cls = _init_class(op)
                if cls is None:
                    continue
                stmts = torch_statements(scheme, args, "m") or ["pass"]
                out.append(f"            {'if' if first else 'elif'} isinstance(m, {cls}):")
                out += [f"                {st}" for st in stmts]
                first = False
            if first:
                out.pop()
        if s.label_inits:  # after the op kinds: a label is the more specific declaration
            out.append(f"        for name, m in {target}.named_modules():")
            out.append("            label = name.rpartition('.')[2]")
            for k, (label, (scheme, args)) in enumerate(s.label_inits.items()):
                stmts = torch_statements(scheme, args, "m") or ["pass"]
                out.append(f"            {'if' if k == 0 else 'elif'} label == {literal(label)}:")
                out += [f"                {st}" for st in stmts]
    return out


def imports(text: str) -> list[str]:
    """The imports the class bodies use, read from their AST (user text in strings cannot add one)."""
    try:
        used = {n.id for n in ast.walk(ast.parse(text)) if isinstance(n, ast.Name)}
    except SyntaxError:  # a bug: check_generated() reports it on the whole file
        used = set()
    std = [line for name, line in (("OrderedDict", "from collections import OrderedDict"), ("math", "import math"))
           if name in used]
    third = [line for name, line in (("torch", "import torch"), ("F", "import torch.nn.functional as F"))
             if name in used]
    return std + [""] * bool(std) + third + ["from torch import nn"]
