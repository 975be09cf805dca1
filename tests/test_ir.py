"""The graph IR: a networkx MultiDiGraph, consistent with the nodes' inputs."""
from __future__ import annotations

from pathlib import Path

import networkx as nx

import archdsl

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def test_graph_is_a_consistent_networkx_dag():
    net = archdsl.load(EXAMPLES / "googlenet.arch").network("googlenet")
    net.verify()
    g = net.graph
    assert isinstance(g, nx.MultiDiGraph)
    assert nx.is_directed_acyclic_graph(g)
    assert g.number_of_nodes() == len(net.nodes) and g.number_of_edges() == sum(len(n.inputs) for n in net.nodes)
    # program order is a topological order, and every output is reachable from the input
    order = {n: i for i, n in enumerate(nx.topological_sort(g))}
    assert all(order[u] < order[v] for u, v in g.edges())
    (inp,) = net.inputs.values()
    assert all(nx.has_path(g, inp[0], v[0]) for v in net.outputs.values())
    assert g.nodes[net.outputs["output"][0]]["node"].op == "linear"


def test_edges_carry_the_port_and_place_of_each_input():
    net = archdsl.loads("network n() {\n    input x: [4, 8, 8]\n    a, b = x -> chunk(2)\n"
                        "    y = concat(b, a, b)\n}\n").network("n")
    (cat,) = [n for n in net.nodes if n.op == "concat"]
    edges = sorted((d["index"], u, d["port"]) for u, _, d in net.graph.in_edges(cat.id, data=True))
    assert [(i, (u, p)) for i, u, p in edges] == list(enumerate(cat.inputs))
    assert net.graph.number_of_edges(cat.inputs[0][0], cat.id) == 3  # parallel edges, one per input
