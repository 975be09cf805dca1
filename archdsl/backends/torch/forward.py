"""Per scope: its submodule constructors and the lines of its ``forward()``, with the in-place rules.

An op with ``Trait.IN_PLACE_OK`` runs in place (``ReLU(inplace=True)``, ``F.relu(x, inplace=True)``,
``out += x``) only on a tensor nothing else reads: produced inside the scope by an op with
``Trait.FRESH_OUTPUT`` (one that does not keep its output for backward or alias it).
"""
from __future__ import annotations

from ... import ops
from ...ir import Network, Node, Scope, Value
from ...ops import Trait
from .names import Namespace
from .render import Mod, Raw, call, constructor, self_attr


class ScopeEmitter:
    """Walks the scope tree once, collecting a :class:`Raw` class for every scope that needs one."""

    def __init__(self, net: Network):
        self.net = net
        self.raws: list[Raw] = []

    def _shapes(self, n: Node) -> list:
        return [self.net.shape_of(v) for v in n.inputs]

    def mod_for_node(self, n: Node) -> Mod:
        return constructor(ops.REGISTRY[n.op], n.attrs, self._shapes(n))

    def is_module(self, n: Node, in_seq: bool) -> bool:
        return ops.torch_is_module(n.op, n.attrs, self._shapes(n), n.labeled, in_seq)

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
        """A Sequential's children; one runs in place after a fresh producer (never first: the
        chain's input may be read elsewhere)."""
        mods = []
        for k, item in enumerate(scope.items):
            mod = self.item_mod(item)
            prev = scope.items[k - 1] if k else None
            if (isinstance(item, Node) and _has(item, Trait.IN_PLACE_OK) and isinstance(prev, Node)
                    and _has(prev, Trait.FRESH_OUTPUT) and "inplace" in mod.kwargs):
                mod.kwargs["inplace"] = True
            mods.append(mod)
        return mods

    def item_mod(self, item) -> Mod:
        return self.mod_for_node(item) if isinstance(item, Node) else self.scope_mod(item)

    def raw_class(self, scope: Scope) -> Raw:
        if scope.kind == "block" and self.chain_ok(scope):
            raw = Raw(scope, "nn.Sequential", list(zip((i.name for i in scope.items), self.chain_mods(scope))), [])
        else:
            entries: list[tuple[str, Mod]] = []
            for item in scope.items:
                if isinstance(item, Scope):
                    entries.append((item.name, self.scope_mod(item)))
                elif item.op != "input" and self.is_module(item, scope.kind == "seq"):
                    entries.append((item.name, self.mod_for_node(item)))
            inplace: set[str] = set()
            raw = Raw(scope, "nn.Module", entries, self.forward(scope, {n for n, _ in entries}, inplace))
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
                expr, outs = f"{self_attr(item.name)}({ins[0]})", item.outputs
            else:
                outs = [(item.id, k) for k in range(len(item.shapes))]
                as_module = item.name in modules and self.is_module(item, scope.kind == "seq")
                expr = f"{self_attr(item.name)}({ins[0]})" if as_module else self.functional(item, ins)
                if expr == ins[0] and len(outs) == 1:  # identity: alias, no line
                    var[outs[0]] = ins[0]
                    name_last[ins[0]] = max(name_last.get(ins[0], -1), last.get(outs[0], -1))
                    continue
            # reuse a variable once every value it holds is dead (`out = self.bn1(out)`)
            reuse = (len(outs) == 1 and bool(item.inputs) and name_last.get(var[item.inputs[0]], -1) <= i)
            safe = (reuse and isinstance(item, Node) and _has(item, Trait.IN_PLACE_OK)
                    and self.safe_in_place(item.inputs[0], scope))
            if reuse:
                targets = [var[item.inputs[0]]]
            else:
                targets = [ns.create("out" if len(outs) == 1 else f"out{k}") for k in range(len(outs))]
            for v, t in zip(outs, targets):
                var[v] = t
                name_last[t] = max(name_last.get(t, -1), last.get(v, -1))
            if safe:
                spec = ops.REGISTRY[item.op]
                if as_module and inplace is not None:
                    inplace.add(item.name)
                elif spec.torch.operator is not None and len(item.inputs) == 2:
                    lines.append(f"{targets[0]} {spec.torch.operator}= {ins[1]}")
                    continue
                elif not as_module and isinstance(spec.torch.functional, str):
                    expr = self.functional(item, ins, in_place=True)
            lines.append(f"{', '.join(targets)} = {expr}")
        rets = [var[v] for v in scope.outputs]
        lines.append(f"return {rets[0]}" if len(rets) == 1 else f"return {', '.join(rets)}")
        return [f"def forward(self, {', '.join(params)}):"] + ["    " + ln for ln in lines]

    def safe_in_place(self, v: Value, scope: Scope) -> bool:
        producer = self.net.node(v[0])
        return producer.scope is scope and _has(producer, Trait.FRESH_OUTPUT) and v not in scope.inputs

    def functional(self, n: Node, ins: list[str], in_place: bool = False) -> str:
        return call(ops.REGISTRY[n.op], n.attrs, ins, self._shapes(n), in_place)


def _has(n: Node, trait: Trait) -> bool:
    return ops.has(n.op, trait)
