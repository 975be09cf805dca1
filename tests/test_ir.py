"""The graph IR: consistent, and a real networkx graph on demand."""
from __future__ import annotations

from pathlib import Path

import networkx as nx

import archdsl

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_graph_is_consistent_and_converts_to_networkx():
    net = archdsl.load(EXAMPLES / "googlenet.arch").network("googlenet")
    net.verify()
    g = net.graph.to_networkx()
    assert isinstance(g, nx.MultiDiGraph)
    assert nx.is_directed_acyclic_graph(g)
    assert g.number_of_nodes() == len(net.nodes) and g.number_of_edges() == sum(len(n.inputs) for n in net.nodes)
    # program order is a topological order, and every output is reachable from the input
    order = {n: i for i, n in enumerate(nx.topological_sort(g))}
    assert all(order[u] < order[v] for u, v in g.edges())
    (inp,) = net.inputs.values()
    assert all(nx.has_path(g, inp[0], v[0]) for v in net.outputs.values())
    assert g.nodes[net.outputs["output"][0]]["node"].op == "linear"
