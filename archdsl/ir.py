"""The graph IR: op nodes in a directed multigraph, the module-scope tree, and :class:`Network`.

Elaboration creates nodes in program order, so node ids are already a topological order.
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

# Names that torch.nn.Module already uses: a submodule may not take them.
MODULE_RESERVED = frozenset(["T_destination", "add_module", "apply", "bfloat16", "buffers", "call_super_init", "children", "compile", "cpu", "cuda", "double", "dump_patches", "eval", "extra_repr", "float", "forward", "get_buffer", "get_extra_state", "get_parameter", "get_submodule", "half", "ipu", "load_state_dict", "modules", "mtia", "named_buffers", "named_children", "named_modules", "named_parameters", "parameters", "register_backward_hook", "register_buffer", "register_forward_hook", "register_forward_pre_hook", "register_full_backward_hook", "register_full_backward_pre_hook", "register_load_state_dict_post_hook", "register_load_state_dict_pre_hook", "register_module", "register_parameter", "register_state_dict_post_hook", "register_state_dict_pre_hook", "requires_grad_", "set_extra_state", "set_submodule", "share_memory", "state_dict", "to", "to_empty", "train", "training", "type", "xpu", "zero_grad"])


class Graph:
    """A directed multigraph with networkx's interface, the part the IR uses.

    ``import networkx`` costs about a third of a second at startup (it imports every algorithm and
    scans the installed packages for backends), more than the rest of ``archdsl summary``; the IR
    needs only to add nodes and edges and look them up.  ``graph.nodes[n]`` is the node's attribute
    dict, as in networkx; :meth:`to_networkx` gives a real ``nx.MultiDiGraph`` for the algorithms.
    """

    def __init__(self) -> None:
        self.nodes: dict[int, dict[str, Any]] = {}
        # node -> neighbour -> attribute dicts of the parallel edges between them (networkx's layout)
        self._succ: dict[int, dict[int, list[dict[str, Any]]]] = {}
        self._pred: dict[int, dict[int, list[dict[str, Any]]]] = {}
        self._edges = 0

    def add_node(self, n: int, **attrs: Any) -> None:
        if n in self.nodes:
            self.nodes[n].update(attrs)
            return
        self.nodes[n] = attrs
        self._succ[n] = {}
        self._pred[n] = {}

    def add_edge(self, u: int, v: int, **attrs: Any) -> int:
        """Add an edge (parallel edges allowed); returns its key among the u -> v edges."""
        for x in (u, v):
            if x not in self.nodes:
                self.add_node(x)
        parallel = self._succ[u].setdefault(v, [])
        parallel.append(attrs)
        self._pred[v].setdefault(u, []).append(attrs)
        self._edges += 1
        return len(parallel) - 1

    def has_edge(self, u: int, v: int) -> bool:
        return v in self._succ.get(u, ())

    def successors(self, n: int) -> Iterator[int]:
        return iter(self._succ[n])

    def predecessors(self, n: int) -> Iterator[int]:
        return iter(self._pred[n])

    def out_degree(self, n: int) -> int:
        return sum(map(len, self._succ[n].values()))

    def in_degree(self, n: int) -> int:
        return sum(map(len, self._pred[n].values()))

    def edges(self, data: bool = False) -> Iterator[tuple]:
        for u, out in self._succ.items():
            for v, parallel in out.items():
                for attrs in parallel:
                    yield (u, v, attrs) if data else (u, v)

    def number_of_nodes(self) -> int:
        return len(self.nodes)

    def number_of_edges(self) -> int:
        return self._edges

    def __len__(self) -> int:
        return len(self.nodes)

    def __iter__(self) -> Iterator[int]:
        return iter(self.nodes)

    def __contains__(self, n: object) -> bool:
        return n in self.nodes

    def to_networkx(self) -> nx.MultiDiGraph:
        import networkx as nx

        g = nx.MultiDiGraph()
        g.add_nodes_from(self.nodes.items())
        g.add_edges_from(self.edges(data=True))
        return g


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
    counter: int = 0
    names: set[str] = field(default_factory=set)

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
    """An elaborated network: the graph, its scopes, inputs and outputs, and the findings."""

    name: str
    file: str
    graph: Graph  # or an nx.MultiDiGraph: only the methods of Graph are used
    root: Scope
    inputs: dict[str, Value]
    outputs: dict[str, Value]
    params: dict[str, Any]
    diagnostics: Diagnostics
    block_defs: dict[str, Any] = field(default_factory=dict)

    # ----------------------------------------------------------------------- graph access
    def node(self, nid: int) -> Node:
        return self.graph.nodes[nid]["node"]

    @property
    def nodes(self) -> list[Node]:
        """All nodes in topological (program) order."""
        nodes = self.graph.nodes
        return [nodes[n]["node"] for n in sorted(nodes)]

    def shape_of(self, value: Value) -> Shape:
        return self.node(value[0]).shapes[value[1]]

    def verify(self) -> None:
        """Internal consistency: ids topological (so acyclic), edges match node inputs."""
        assert all(u < v for u, v in self.graph.edges())
        assert self.graph.number_of_edges() == sum(len(n.inputs) for n in self.nodes)
        for n in self.nodes:
            for src, _port in n.inputs:
                assert src < n.id and self.graph.has_edge(src, n.id)
