"""Passes over the graph: parameters, MACs, activation memory, receptive field; the summary table."""
from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import asdict, dataclass

from .. import ops
from ..ir import Network, Node
from ..ops import RFKind, Trait, fmt_shape, numel

BYTES = 4  # float32


@dataclass
class Row:
    path: str
    op: str
    shape: str
    params: int
    macs: int
    activations: int  # values written by this row's output(s); 0 for aliasing ops
    rf: str  # receptive field "size/jump", or "global"
    depth: int = 0

    def cells(self) -> list[str]:
        return [self.path, self.op, self.shape, f"{self.params:,}", f"{self.macs:,}",
                f"{self.activations:,}", self.rf]


class Summary:
    """The summary of a network: ``totals`` and the per-layer ``rows``.

    The rows are built on first use: ``archdsl check`` and the generated file's header need only
    the totals, and formatting a row per node is most of the cost on a large network.
    """

    COLUMNS = ("module", "op", "output", "params", "MACs", "activations", "receptive field")

    def __init__(self, network: str, rows: list[Row] | Callable[[], list[Row]], totals: dict | None = None):
        self.network = network
        self._rows = rows
        self.totals = totals if totals is not None else {}

    @property
    def rows(self) -> list[Row]:
        if callable(self._rows):
            self._rows = self._rows()
        return self._rows

    def __repr__(self) -> str:
        return f"Summary(network={self.network!r}, totals={self.totals!r})"

    def to_json(self) -> dict:
        return {"network": self.network, "rows": [asdict(r) for r in self.rows], "totals": self.totals}

    def totals_lines(self) -> list[str]:
        t = self.totals
        buffers = t["weights_and_buffers"] - t["params"]
        return [
            f"parameters:             {t['params']:,} (all trainable)",
            f"buffers:                {buffers:,} values"
            + (" (batch-norm running statistics; not trained, saved in the state_dict)" if buffers else ""),
            f"MACs:                   {t['macs']:,} ({t['macs'] / 1e9:.2f} G)",
            f"forward activations:    {t['activations']:,} values ({t['activation_bytes'] / 2**20:.1f} MiB float32)",
            f"parameter memory:       {t['param_bytes'] / 2**20:.1f} MiB float32",
            f"input:                  {t['input']}   output: {t['output']}",
        ]

    FOOTER = ("receptive field SIZE/JUMP, in input pixels: one output value sees a SIZE x SIZE window of the\n"
              "input, and neighbouring values are JUMP pixels apart; 'global': it sees the whole input\n"
              "<op>: a functional step of forward() (F.relu, torch.flatten, a merge), not a submodule")

    def to_text(self) -> str:
        table = [list(self.COLUMNS)] + [r.cells() for r in self.rows]
        widths = [max(len(row[i]) for row in table) for i in range(len(self.COLUMNS))]
        right = {3, 4, 5}
        lines = []
        for k, row in enumerate(table):
            lines.append("  ".join(c.rjust(w) if i in right else c.ljust(w)
                                   for i, (c, w) in enumerate(zip(row, widths))).rstrip())
            if k == 0:
                lines.append("  ".join("-" * w for w in widths))
        return "\n".join(lines + [""] + self.totals_lines() + ["", self.FOOTER])

    def to_rich(self):
        from rich.table import Table

        table = Table(title=f"{self.network}", show_lines=False)
        for i, c in enumerate(self.COLUMNS):
            table.add_column(c, justify="right" if i in (3, 4, 5) else "left",
                             style={0: "cyan", 1: "magenta"}.get(i))
        for r in self.rows:
            table.add_row(*r.cells())
        return table

    def to_html(self) -> str:
        from html import escape

        head = "".join(f"<th>{c}</th>" for c in self.COLUMNS)
        body = "".join("<tr>" + "".join(f"<td>{escape(c)}</td>" for c in r.cells()) + "</tr>" for r in self.rows)
        foot = "<br>".join(escape(x) for x in [*self.totals_lines(), *self.FOOTER.split("\n")])
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table><p>{foot}</p>"

    def __str__(self) -> str:
        return self.to_text()

    def _repr_html_(self) -> str:  # Jupyter
        return self.to_html()


def node_params(net: Network, n: Node) -> tuple[int, int]:
    """(trainable parameters, all weights incl. buffers) of one node."""
    spec = ops.REGISTRY.get(n.op)
    if spec is None:
        return 0, 0
    ins = [net.shape_of(v) for v in n.inputs]
    ws = spec.weights(n.attrs, ins)
    train = sum(numel(w.shape) or 0 for w in ws if w.trainable)
    return train, sum(numel(w.shape) or 0 for w in ws if w.role != "count")


def node_macs(net: Network, n: Node) -> int:
    spec = ops.REGISTRY.get(n.op)
    if spec is None:
        return 0
    return spec.macs(n.attrs, [net.shape_of(v) for v in n.inputs], n.shapes)


def node_activations(n: Node) -> int:
    """Values written by the node's outputs.  An op whose output can share its input's memory (an
    in-place activation, a view) adds none: the convention of the course notes' VGG table."""
    if ops.REGISTRY[n.op].has(Trait.ALIASES_INPUT):
        return 0
    return sum(numel(s) or 0 for s in n.shapes)


def receptive_fields(net: Network) -> dict[int, tuple[float, float] | str]:
    """Receptive field (size, jump) in input pixels per node; the largest over merging paths."""
    rf: dict[int, tuple[float, float] | str] = {}
    for n in net.nodes:
        if n.op == "input":
            rf[n.id] = (1, 1)
            continue
        spec = ops.REGISTRY[n.op]
        # a single-input op's further inputs are references to sizes (resize(to=image)), not data
        data = n.inputs if spec.inputs == "many" else n.inputs[:1]
        ins = [rf[src] for src, _ in data]
        if any(r == "global" for r in ins):
            rf[n.id] = "global"
            continue
        size, jump = max(ins, key=lambda r: (r[0], r[1]))
        contrib = spec.rf(n.attrs)
        if contrib.kind is RFKind.GLOBAL:
            rf[n.id] = "global"
        elif contrib.kind is RFKind.RESAMPLE:  # a resize to a size: output pixels are in_h / out_h input pixels apart
            h_in, h_out = net.shape_of(n.inputs[0])[-2], n.shapes[0][-2]
            known = isinstance(h_in, int) and isinstance(h_out, int)
            rf[n.id] = (size, jump * h_in / h_out) if known else (size, jump)
        else:
            rf[n.id] = (size + (contrib.kernel - 1) * jump, jump * contrib.stride)
    return rf


def _fmt_rf(r) -> str:
    if r == "global":
        return "global"
    size, jump = r
    j = f"{jump:g}"
    return f"{size:g}/{j}"


def _costs(net: Network, nodes: list[Node]) -> list[tuple[int, int, int, int]]:
    """(trainable params, weights and buffers, MACs, activations) of every node.

    Layers repeat (every bottleneck of a stage, every line of a generated chain), so the op's
    rules run once per distinct (op, attributes, input shapes) and are looked up after that.
    """
    out = []
    memo: dict[tuple, tuple[int, int, int]] = {}
    for n in nodes:
        try:
            key: tuple | None = (n.op, tuple(n.attrs.items()), tuple(net.shape_of(v) for v in n.inputs))
            hash(key)
        except TypeError:  # an unhashable attribute value: compute without the memo
            key = None
        pwm = memo.get(key) if key is not None else None
        if pwm is None:
            pwm = (*node_params(net, n), node_macs(net, n))
            if key is not None:
                memo[key] = pwm
        a = (numel(n.shape) or 0) if n.op == "input" else node_activations(n)
        out.append((*pwm, a))
    return out


def summarize(net: Network, depth: int | None = None) -> Summary:
    """Per-node rows (or per-scope rows below ``depth``) and network totals."""
    nodes = net.nodes
    costs = _costs(net, nodes)
    total_p = sum(c[0] for c in costs)
    totals = {
        # every parameter archdsl makes has requires_grad; "trainable_params" stays for old readers
        "params": total_p, "trainable_params": total_p, "weights_and_buffers": sum(c[1] for c in costs),
        "buffers": sum(c[1] for c in costs) - total_p,
        "macs": sum(c[2] for c in costs), "activations": sum(c[3] for c in costs),
        "activation_bytes": sum(c[3] for c in costs) * BYTES, "param_bytes": total_p * BYTES,
        "input": ", ".join(f"{k} {fmt_shape(net.shape_of(v))}" for k, v in net.inputs.items()),
        "output": ", ".join(f"{k} {fmt_shape(net.shape_of(v))}" for k, v in net.outputs.items()),
        "nodes": len(net.node_table),
    }
    return Summary(net.name, lambda: _rows(net, nodes, costs, depth), totals)


def _rows(net: Network, nodes: list[Node], costs, depth: int | None) -> list[Row]:
    rf = receptive_fields(net)
    rows: list[Row] = []
    groups: dict[str, Row] = {}
    parts_of: dict[int, tuple[str, ...]] = {}  # scope id -> path parts, computed once per scope
    input_names = {v[0]: k for k, v in net.inputs.items()}
    for n, (p, _w, m, a) in zip(nodes, costs):
        parts = parts_of.get(id(n.scope))
        if parts is None:
            parts = parts_of[id(n.scope)] = n.scope.path_parts
        if n.op == "input":
            path = input_names[n.id]
        elif n.name and ops.torch_is_module(n.op, n.attrs, [net.shape_of(v) for v in n.inputs], n.labeled,
                                            n.scope.kind == "seq"):
            path = ".".join(x for x in (*parts, n.name) if x)
        else:  # a functional step (F.relu, torch.flatten, a merge): no module has this path
            path = ".".join([*parts, f"<{n.op}>"])
        shape = fmt_shape(n.shapes[0]) if len(n.shapes) == 1 else " ".join(fmt_shape(s) for s in n.shapes)
        if depth is not None and len(parts) > depth:
            key = ".".join(parts[:depth + 1])
            row = groups.get(key)
            if row is None:
                scope = n.scope
                while scope.depth > depth + 1:
                    scope = scope.parent
                row = Row(key, scope.block or scope.kind, "", 0, 0, 0, "", depth + 1)
                groups[key] = row
                rows.append(row)
            row.params += p
            row.macs += m
            row.activations += a
            row.shape = shape
            row.rf = _fmt_rf(rf[n.id])
            continue
        rows.append(Row(path, n.op, shape, p, m, a, _fmt_rf(rf[n.id]), len(parts)))
    return rows


def summary_json(s: Summary) -> str:
    return json.dumps(s.to_json(), indent=2)


def state_dict_shapes(net: Network) -> dict[str, tuple[int, ...]]:
    """The PyTorch ``state_dict`` the compiled module will have: key -> shape, in module order."""
    out: dict[str, tuple[int, ...]] = {}
    for n in net.nodes:
        spec = ops.REGISTRY.get(n.op)
        if spec is None:
            continue
        for w in spec.weights(n.attrs, [net.shape_of(v) for v in n.inputs]):
            out[f"{n.path}.{w.name}"] = tuple(w.shape)
    return out
