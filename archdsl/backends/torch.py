"""PyTorch backend: one readable, standalone Python module per network.

Each module scope of the IR becomes a class, or an inline ``nn.Sequential`` when it is a plain
chain of modules.  Instances of one ``block`` that share a structure share one class: every
number in their submodule constructors is a *slot*; slots equal across all instances stay
literals, slots that differ become constructor arguments named after the block parameter (or the
input channel count) they always equal.  Instances whose structure differs (a projection shortcut
present in some, absent in others) get one class per variant, and the class docstring says why.

``build()`` executes the same source that ``compile`` writes, so there is one code path.
"""
from __future__ import annotations

import ast
import textwrap
from dataclasses import dataclass, field
from typing import Any

from .. import __version__, ops
from ..ir import Network, Node, Scope, Value
from .names import Namespace, camel, escape, is_plain_attr, literal, sanitize
from .torch_check import check_generated

# Keyword defaults of the torch classes the emitters use, so that instances which omit a
# default can share a class with instances that set it.
TORCH_DEFAULTS: dict[str, dict[str, Any]] = {
    "nn.Conv2d": {"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True},
    "nn.ConvTranspose2d": {"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True,
                           "dilation": 1},
    "nn.Linear": {"bias": True},
    "nn.BatchNorm2d": {"eps": 1e-5, "momentum": 0.1, "affine": True},
    "nn.BatchNorm1d": {"eps": 1e-5, "momentum": 0.1, "affine": True},
    "nn.MaxPool2d": {"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False},
    "nn.AvgPool2d": {"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True},
    "nn.Dropout": {"p": 0.5},
    "nn.ReLU": {"inplace": False}, "nn.ReLU6": {"inplace": False}, "nn.SiLU": {"inplace": False},
    "nn.Hardswish": {"inplace": False}, "nn.Hardsigmoid": {"inplace": False},
    "nn.LeakyReLU": {"negative_slope": 0.01, "inplace": False},
    "nn.ELU": {"alpha": 1.0, "inplace": False},
    "nn.GELU": {"approximate": "none"},
    "nn.GroupNorm": {"eps": 1e-5},
    "nn.LayerNorm": {"eps": 1e-5},
}
ROLE_NAMES: dict[str, tuple[str, ...]] = {
    "nn.Conv2d": ("in_channels", "out_channels", "kernel_size"),
    "nn.ConvTranspose2d": ("in_channels", "out_channels", "kernel_size"),
    "nn.Linear": ("in_features", "out_features"),
    "nn.BatchNorm2d": ("num_features",), "nn.BatchNorm1d": ("num_features",),
    "nn.GroupNorm": ("num_groups", "num_channels"),
}
# Functional forms of parameter-free modules, used when such an op is unlabelled outside a seq.
FUNCTIONAL = ops.FUNCTIONAL
# In-place activations (as torchvision writes them) are safe only on a tensor nothing else reads:
# produced inside the scope by an op that does not keep its output for backward or alias it.
INPLACE_OPS = {"relu", "relu6", "leaky_relu", "elu", "silu", "hardswish", "hardsigmoid"}
SAFE_PRODUCERS = {"conv", "conv_transpose", "linear", "bn", "group_norm", "layer_norm", "add", "concat",
                  "maxpool", "avgpool", "adaptive_avgpool", "adaptive_maxpool", "upsample"}
INIT_CLASSES = {"conv": "nn.Conv2d", "conv_transpose": "nn.ConvTranspose2d", "linear": "nn.Linear",
                "bn": "(nn.BatchNorm2d, nn.BatchNorm1d)", "group_norm": "nn.GroupNorm", "layer_norm": "nn.LayerNorm"}


# ------------------------------------------------------------------------------------ constructors


@dataclass
class Mod:
    """A submodule constructor call whose literal leaves are slots."""

    func: Any  # "nn.Conv2d", "nn.Sequential", or a _Raw (a generated class)
    args: list = field(default_factory=list)  # literals or Mods
    kwargs: dict = field(default_factory=dict)  # name -> literal
    labels: list[str] | None = None  # nn.Sequential(OrderedDict) keys

    def signature(self):
        func = self.func.key if isinstance(self.func, _Raw) else self.func
        return (func, tuple(a.signature() if isinstance(a, Mod) else "L" for a in self.args),
                tuple(self.kw_order()), tuple(self.labels or ()))

    def kw_order(self) -> list[str]:
        """Keywords in a canonical, readable order: kernel_size, then PyTorch's own order."""
        known = ["kernel_size", *TORCH_DEFAULTS.get(self.func, {})] if isinstance(self.func, str) else []
        return sorted(self.kwargs, key=lambda k: (known.index(k) if k in known else len(known), k))

    def slots(self) -> list:
        out: list = []
        for a in self.args:
            out.extend(a.slots() if isinstance(a, Mod) else [a])
        for k in self.kw_order():
            out.append(self.kwargs[k])
        return out


def parse_mod(text: str) -> Mod:
    call = ast.parse(text, mode="eval").body
    assert isinstance(call, ast.Call)
    func = ast.unparse(call.func)
    kwargs = dict(TORCH_DEFAULTS.get(func, {}))
    kwargs.update({k.arg: ast.literal_eval(k.value) for k in call.keywords})
    return Mod(func, [ast.literal_eval(a) for a in call.args], kwargs)


@dataclass
class _Raw:
    """A scope that needs a class, before instances are grouped."""

    scope: Scope
    base: str  # nn.Module | nn.Sequential
    entries: list[tuple[str, Mod]]
    forward: list[str]
    key: tuple = ()
    group: _Group | None = None

    def slots(self) -> list:
        out: list = []
        for _, m in self.entries:
            out.extend(m.slots())
        return out


@dataclass
class _Group:
    name: str
    raws: list[_Raw]
    params: list[str]  # constructor parameter names
    slot_names: list[str | None]  # per slot: parameter name, or None for a literal
    note: str = ""


# ------------------------------------------------------------------------------------ per scope


class _Emitter:
    def __init__(self, net: Network):
        self.net = net
        self.raws: list[_Raw] = []

    def mod_for_node(self, n: Node) -> Mod:
        spec = ops.REGISTRY[n.op]
        return parse_mod(spec.torch_module(n.attrs, [self.net.shape_of(v) for v in n.inputs]))

    def is_module(self, n: Node, in_seq: bool) -> bool:
        return ops.torch_is_module(n.op, n.attrs, [self.net.shape_of(v) for v in n.inputs], n.labeled, in_seq)

    def chain_ok(self, scope: Scope) -> bool:
        """A plain chain of single-input modules: can be an nn.Sequential."""
        prev = scope.inputs[0] if len(scope.inputs) == 1 else None
        if prev is None or not scope.items:
            return False
        for item in scope.items:
            if isinstance(item, Node):
                if not self.is_module(item, True) or item.inputs != [prev] or len(item.shapes) != 1:
                    return False
                prev = (item.id, 0)
            else:
                if item.inputs != [prev] or len(item.outputs) != 1:
                    return False
                prev = item.outputs[0]
        return scope.outputs == [prev]

    def scope_mod(self, scope: Scope) -> Mod:
        """The constructor of a child scope: an inline Sequential or a generated class."""
        if scope.kind == "seq" and self.chain_ok(scope):
            children = self.chain_mods(scope)
            names = [i.name for i in scope.items]
            labels = None if names == [str(k) for k in range(len(names))] else names
            return Mod("nn.Sequential", children, {}, labels)
        raw = self.raw_class(scope)
        return Mod(raw, raw.slots(), {})

    def chain_mods(self, scope: Scope) -> list[Mod]:
        mods = []
        for k, item in enumerate(scope.items):
            mod = self.item_mod(item)
            prev = scope.items[k - 1] if k else None
            if (isinstance(item, Node) and item.op in INPLACE_OPS and isinstance(prev, Node)
                    and prev.op in SAFE_PRODUCERS and "inplace" in mod.kwargs):
                mod.kwargs["inplace"] = True
            mods.append(mod)
        return mods

    def item_mod(self, item) -> Mod:
        return self.mod_for_node(item) if isinstance(item, Node) else self.scope_mod(item)

    def raw_class(self, scope: Scope) -> _Raw:
        if scope.kind == "block" and self.chain_ok(scope):
            raw = _Raw(scope, "nn.Sequential", list(zip((i.name for i in scope.items), self.chain_mods(scope))), [])
        else:
            entries: list[tuple[str, Mod]] = []
            for item in scope.items:
                if isinstance(item, Scope):
                    entries.append((item.name, self.scope_mod(item)))
                elif item.op != "input" and self.is_module(item, scope.kind == "seq"):
                    entries.append((item.name, self.mod_for_node(item)))
            inplace: set[str] = set()
            raw = _Raw(scope, "nn.Module", entries, self.forward(scope, {n for n, _ in entries}, inplace))
            for name, mod in entries:  # activations whose input nothing else reads: inplace=True
                if name in inplace and "inplace" in mod.kwargs:
                    mod.kwargs["inplace"] = True
        raw.key = (scope.kind, scope.block or scope.name if scope.kind != "network" else "", raw.base,
                   tuple(raw.forward), tuple((n, m.signature()) for n, m in raw.entries))
        self.raws.append(raw)
        return raw

    def forward(self, scope: Scope, modules: set[str], inplace: set[str] | None = None) -> list[str]:
        """The lines of ``forward()``; ``inplace`` collects the activation modules that may run
        in place (their input is produced here and read by nothing else)."""
        ns = Namespace()
        var: dict[Value, str] = {}
        if scope.kind == "network":
            for name, v in self.net.inputs.items():
                var[v] = ns.create(name)
        else:
            var[scope.inputs[0]] = ns.create("x")
        params = list(var.values())
        name_last: dict[str, int] = {}  # per variable: the last item that reads any value it holds
        # last use of every value inside this scope, to reuse dead variables like `out = f(out)`
        last: dict[Value, int] = {}
        for i, item in enumerate(scope.items):
            for v in item.inputs:
                last[v] = i
        for v in scope.outputs:
            last[v] = len(scope.items)
        for v, name in var.items():  # the forward() arguments
            name_last[name] = max(name_last.get(name, -1), last.get(v, -1))
        lines = []
        for i, item in enumerate(scope.items):
            if isinstance(item, Node) and item.op == "input":
                continue
            ins = [var[v] for v in item.inputs]
            as_module = False  # a call of a submodule of this class (not a scope, not a function)
            if isinstance(item, Scope):
                expr, outs = f"{_self(item.name)}({ins[0]})", item.outputs
                hint = "out"
            else:
                outs = [(item.id, k) for k in range(len(item.shapes))]
                hint = "out"
                as_module = item.name in modules and self.is_module(item, scope.kind == "seq")
                if as_module:
                    expr = f"{_self(item.name)}({ins[0]})"
                else:
                    expr = self.functional(item, ins)
                if expr == ins[0] and len(outs) == 1:  # identity: alias, no line
                    var[outs[0]] = ins[0]
                    name_last[ins[0]] = max(name_last.get(ins[0], -1), last.get(outs[0], -1))
                    continue
            # reuse a variable once every value it holds is dead (`out = self.bn1(out)`)
            reuse = (len(outs) == 1 and bool(item.inputs) and name_last.get(var[item.inputs[0]], -1) <= i)
            safe = reuse and isinstance(item, Node) and self.safe_in_place(item.inputs[0], scope)
            if reuse:
                targets = [var[item.inputs[0]]]
            else:
                targets = [ns.create(hint if len(outs) == 1 else f"{hint}{k}") for k in range(len(outs))]
            for v, t in zip(outs, targets):
                var[v] = t
                name_last[t] = max(name_last.get(t, -1), last.get(v, -1))
            if safe and as_module and item.op in INPLACE_OPS and inplace is not None:
                inplace.add(item.name)
            if safe and item.op in INPLACE_OPS and expr.startswith("F.") and expr.endswith(")"):
                expr = expr[:-1] + ", inplace=True)"
            if safe and item.op == "add" and len(item.inputs) == 2 and expr == f"{ins[0]} + {ins[1]}":
                lines.append(f"{targets[0]} += {ins[1]}")
                continue
            lines.append(f"{', '.join(targets)} = {expr}")
        rets = [var[v] for v in scope.outputs]
        lines.append(f"return {rets[0]}" if len(rets) == 1 else f"return {', '.join(rets)}")
        return [f"def forward(self, {', '.join(params)}):"] + ["    " + ln for ln in lines]

    def safe_in_place(self, v: Value, scope: Scope) -> bool:
        producer = self.net.node(v[0])
        return producer.scope is scope and producer.op in SAFE_PRODUCERS and v not in scope.inputs

    def functional(self, n: Node, ins: list[str]) -> str:
        spec = ops.REGISTRY[n.op]
        shapes = [self.net.shape_of(v) for v in n.inputs]
        if spec.torch_fn is not None:
            return spec.torch_fn(n.attrs, ins, shapes)
        text = spec.torch_module(n.attrs, shapes)
        head, _, rest = text.partition("(")
        fn = FUNCTIONAL[head]
        return f"{fn}({ins[0]}, {rest}" if rest != ")" else f"{fn}({ins[0]})"


def _docstring(text: str, indent: str) -> str:
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


def _self(name: str) -> str:
    return f"self.{name}" if is_plain_attr(name) else f"getattr(self, {literal(name)})"


# ------------------------------------------------------------------------------------ grouping


def _same(values: list, others: list) -> bool:
    return all(type(a) is type(b) and a == b for a, b in zip(values, others))


def _group(raws: list[_Raw], class_ns: Namespace, net: Network) -> list[_Group]:
    by_key: dict[tuple, list[_Raw]] = {}
    for r in raws:
        by_key.setdefault(r.key, []).append(r)
    groups: list[_Group] = []
    variants: dict[tuple[str, str], list[_Group]] = {}  # per block (or label): its classes
    for members in by_key.values():  # all class names first: constructor parameters must avoid them
        first = members[0].scope
        origin = first.block if first.kind in ("block", "network") else (first.name if not first.name.isdigit() else first.kind)
        gs = variants.setdefault((first.kind, origin or ""), [])
        base = camel(origin or "Module")
        gs.append(_Group(class_ns.create(f"{base}{len(gs) + 1}" if gs else base), members, [], []))
        groups.append(gs[-1])
    for g in groups:
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
    for gs in variants.values():
        if len(gs) > 1:
            for g in gs:
                g.note = _variant_note(g, gs)
    return groups


def _derived(col: list, members: list[_Raw], first: Scope, net: Network) -> str | None:
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


def _slot_role(raw: _Raw, k: int) -> str:
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
                roles = ROLE_NAMES.get(mod.func if isinstance(mod.func, str) else "", ())
                return roles[idx] if idx < len(roles) else f"arg{idx}"
            k -= 1
    keys = mod.kw_order()
    return keys[k] if 0 <= k < len(keys) else None


def _variant_note(g: _Group, gs: list[_Group]) -> str:
    mine = {n for n, _ in g.raws[0].entries}
    sets = [{n for n, _ in o.raws[0].entries} for o in gs]
    common, everyone = set.intersection(*sets), set.union(*sets)
    extra, missing = sorted(mine - common), sorted(everyone - mine)
    block = g.raws[0].scope.block or g.raws[0].scope.name
    parts = ([f"with {', '.join(extra)}"] if extra else []) + ([f"without {', '.join(missing)}"] if missing else [])
    why = " and ".join(parts) or "with different arguments baked into forward()"
    return (f"Specialised: `{block}` builds different modules depending on its arguments and input shape, "
            f"so each variant is its own class; this one is {why} ({len(g.raws)} use{'s' if len(g.raws) > 1 else ''}).")


# ------------------------------------------------------------------------------------ rendering


def _render_mod(mod: Mod, names: list[str | None], pos: list[int], indent: int) -> str:
    def take():
        k = pos[0]
        pos[0] += 1
        return k

    pad = " " * indent
    if isinstance(mod.func, _Raw):
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
            inner = _render_mod(a, names, pos, indent + 4)
            parts.append(f"({literal(mod.labels[i])}, {inner})" if mod.labels else inner)
        body = ",\n".join(pad + "    " + p for p in parts)
        if mod.labels:
            return "nn.Sequential(OrderedDict([\n" + body + ",\n" + pad + "]))"
        return "nn.Sequential(\n" + body + ",\n" + pad + ")"
    out = []
    for a in mod.args:
        k = take()
        out.append(names[k] or literal(a))
    defaults = TORCH_DEFAULTS.get(mod.func, {})
    for kw in mod.kw_order():
        k = take()
        v = mod.kwargs[kw]
        if names[k]:
            out.append(f"{kw}={names[k]}")
        elif not (kw in defaults and type(defaults[kw]) is type(v) and defaults[kw] == v):
            out.append(f"{kw}={literal(v)}")
    return f"{mod.func}({', '.join(out)})"


def _render_class(g: _Group, net: Network, source_name: str) -> list[str]:
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
    lines = [f"class {g.name}({raw.base}):", _docstring(doc, "    "), ""]
    lines.append(f"    def __init__(self{''.join(', ' + p for p in g.params)}):")
    pos = [0]
    if raw.base == "nn.Sequential":
        items = [(n, _render_mod(m, g.slot_names, pos, 12)) for n, m in raw.entries]
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
        text = _render_mod(m, g.slot_names, pos, 8)
        if is_plain_attr(n):
            lines.append(f"        self.{n} = {text}")
        else:
            lines.append(f"        self.add_module({literal(n)}, {text})")
    if scope.kind == "network":
        lines += _init_lines(net)
    lines.append("")
    lines += ["    " + ln if ln else "" for ln in raw.forward]
    return lines


def _init_lines(net: Network) -> list[str]:
    from ..passes.init import torch_statements

    out: list[str] = []
    scopes = [net.root] + [s for s in net.root.walk() if isinstance(s, Scope)]
    for s in scopes:
        target = "self" if s is net.root else f"self.get_submodule({literal(s.path)})"
        if s.inits:
            out.append(f"        for m in {target}.modules():")
            first = True
            for op, (scheme, args) in s.inits.items():
                if op not in INIT_CLASSES:
                    continue
                stmts = torch_statements(scheme, args, "m") or ["pass"]
                out.append(f"            {'if' if first else 'elif'} isinstance(m, {INIT_CLASSES[op]}):")
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


def generate(net: Network, source_name: str | None = None) -> str:
    """The complete Python source of a module defining ``net``, checked by the AST allow-list."""
    return _module(net, source_name)[0]


def _module(net: Network, source_name: str | None) -> tuple[str, str]:
    """The source and the name of the network's class in it."""
    source_name = source_name or net.file.rsplit("/", 1)[-1]
    em = _Emitter(net)
    net.root.inputs = list(net.inputs.values())
    net.root.outputs = list(net.outputs.values())
    em.raw_class(net.root)
    top = Namespace()  # the file's top-level names; imports and builtins are reserved in every Namespace
    net_class = top.create(camel(net.name))
    groups = _group([r for r in em.raws if r.scope is not net.root], top, net)
    root_raw = next(r for r in em.raws if r.scope is net.root)
    root_group = _Group(net_class, [root_raw], [], [None] * len(root_raw.slots()))
    root_raw.group = root_group
    body: list[str] = []
    for g in groups + [root_group]:
        body += ["", ""] + _render_class(g, net, source_name)
    text = "\n".join(body)
    # `MODEL` is the alias tools look for; where a block's class owns the name, the alias is renamed
    alias = top.create("MODEL") if net_class != "MODEL" else ""
    params = ", ".join(f"{k}={v!r}" for k, v in net.params.items())
    doc = (f"{net.name}({params}), compiled from {source_name} by archdsl.\n\n"
           f"Build it with ``{net_class}()``; submodule names are the labels of the .arch file, so\n"
           "``state_dict`` keys match the source (and torchvision, for the zoo models).")
    if alias not in ("MODEL", ""):
        doc += f"\n\n``{alias}`` is an alias of ``{net_class}``: ``MODEL`` names another class of this file."
    header = [
        f"# Generated by archdsl {__version__} from {escape(source_name, '')} (network {escape(net.name, '')}). "
        "Do not edit:",
        "# change the .arch file and compile again.",
        _docstring(doc, ""),
        *_imports(text),
    ]
    source = "\n".join(header) + "\n" + text.rstrip() + "\n" + (f"\n\n{alias} = {net_class}\n" if alias else "")
    compile(check_generated(source), f"<archdsl:{net.name}>", "exec")  # a violation raises: nothing is written
    return source, net_class


def _imports(text: str) -> list[str]:
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


def build(net: Network):
    """Instantiate the generated module in memory (the same source ``compile`` writes)."""
    import types

    source, net_class = _module(net, None)
    module = types.ModuleType(f"archdsl_generated_{sanitize(net.name)}")
    code = compile(source, f"<archdsl:{net.name}>", "exec")
    exec(code, module.__dict__)  # noqa: S102 - our own generated, allow-listed source
    return getattr(module, net_class)()
