"""The graph IR: op nodes in a networkx ``MultiDiGraph``, the module-scope tree, and :class:`Network`.

Elaboration creates nodes in program order, so node ids are already a topological order.  The
graph maps each node id to ``{"node": Node, "op", "path", "shape"}`` and has one edge per input
of a node, ``src -> dst`` with ``port`` (the source's output) and ``index`` (the input's place).
Each node knows its op, normalised attributes, inputs, output shapes, module path and source
span.  Scopes mirror the PyTorch module tree that the backends emit: the network, each block
instance, each ``seq`` and each labelled container is a scope; its children are named by their
labels, and unlabelled children are numbered ``0, 1, 2`` like ``nn.Sequential``.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from .errors import Diagnostics, Span
from .ops import Shape

if TYPE_CHECKING:  # pragma: no cover
    import networkx as nx

Value = tuple[int, int]  # (node id, output port)


@dataclass
class Node:
    id: int
    op: str  # a registry name, or "input"
    attrs: dict[str, Any]
    inputs: list[Value]
    shapes: list[Shape]
    name: str  # local name in its scope: a label or an index; "" for un-named functional nodes
    scope: Scope
    span: Span
    labeled: bool = False

    @property
    def path(self) -> str:
        """Dotted module path (``layer1.0.conv1``), as in the PyTorch state_dict."""
        return ".".join(p for p in (*self.scope.path_parts, self.name) if p)

    @property
    def shape(self) -> Shape:
        return self.shapes[0]


@dataclass
class Scope:
    kind: str  # network | block | seq | group
    name: str
    parent: Scope | None
    span: Span
    block: str | None = None  # the block definition this scope instantiates
    args: dict[str, Any] = field(default_factory=dict)
    items: list[Node | Scope] = field(default_factory=list)
    inputs: list[Value] = field(default_factory=list)
    outputs: list[Value] = field(default_factory=list)
    inits: dict[str, tuple[str, dict]] = field(default_factory=dict)  # by op kind
    label_inits: dict[str, tuple[str, dict]] = field(default_factory=dict)  # by module label, below here

    @property
    def path_parts(self) -> tuple[str, ...]:
        parts: list[str] = []
        s: Scope | None = self
        while s is not None and s.parent is not None:
            parts.append(s.name)
            s = s.parent
        return tuple(reversed(parts))

    @property
    def path(self) -> str:
        return ".".join(self.path_parts)

    @property
    def depth(self) -> int:
        return len(self.path_parts)

    def walk(self) -> Iterator[Node | Scope]:
        """Every node and scope below this one, in program order."""
        for item in self.items:
            yield item
            if isinstance(item, Scope):
                yield from item.walk()

    def nodes(self) -> Iterator[Node]:
        return (i for i in self.walk() if isinstance(i, Node))

    def init_for(self, op: str) -> tuple[str, dict] | None:
        """The nearest ``init`` declaration for an op kind, searching outwards."""
        s: Scope | None = self
        while s is not None:
            if op in s.inits:
                return s.inits[op]
            s = s.parent
        return None


@dataclass
class Network:
    """An elaborated network: its nodes, scopes, inputs and outputs, and the findings.

    ``node_table`` holds the nodes by id in program order, which is a topological order; each
    node's ``inputs`` are its edges.  ``graph`` is the same IR as a ``networkx.MultiDiGraph``, for
    the passes that want graph algorithms: it is built on first use and kept, so the commands
    that never need one (check, summary, compile) do not pay for importing networkx.
    """

    name: str
    file: str
    node_table: dict[int, Node]
    root: Scope
    inputs: dict[str, Value]
    outputs: dict[str, Value]
    params: dict[str, Any]
    diagnostics: Diagnostics
    block_defs: dict[str, Any] = field(default_factory=dict)
    _graph: Any = field(default=None, repr=False, compare=False)

    @property
    def graph(self) -> nx.MultiDiGraph:
        """The IR as a networkx ``MultiDiGraph``: node id -> ``{"node": Node, "op", "path",
        "shape"}``, and one edge per input of a node (``port``: the producer's output, ``index``:
        the input's place), so a tensor used twice is two parallel edges."""
        if self._graph is None:
            import networkx as nx

            g = nx.MultiDiGraph()
            for n in self.node_table.values():
                g.add_node(n.id, node=n, op=n.op, path=n.path, shape=n.shapes[0] if n.shapes else None)
                g.add_edges_from((src, n.id, {"port": port, "index": i}) for i, (src, port) in enumerate(n.inputs))
            self._graph = g
        return self._graph

    # ----------------------------------------------------------------------- graph access
    def node(self, nid: int) -> Node:
        return self.node_table[nid]

    @property
    def nodes(self) -> list[Node]:
        """All nodes in topological (program) order: the order they were made in, always the
        same one (the generated code follows it)."""
        return list(self.node_table.values())

    def shape_of(self, value: Value) -> Shape:
        return self.node(value[0]).shapes[value[1]]

    def verify(self) -> None:
        """Internal consistency: ids topological (so acyclic), edges match node inputs."""
        assert all(u < v for u, v in self.graph.edges())  # stronger than nx.is_directed_acyclic_graph
        assert self.graph.number_of_edges() == sum(len(n.inputs) for n in self.nodes)
        for n in self.nodes:
            for src, _port in n.inputs:
                assert src < n.id and self.graph.has_edge(src, n.id)
