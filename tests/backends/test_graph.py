"""Pictures of the graph: DOT and Mermaid goldens, SVG/PNG/PDF through Graphviz, escaping, depth,
the missing-Graphviz path and the ``archdsl graph`` command.

Regenerate the goldens (and the pictures under docs/img) with
``ARCHDSL_REGEN=1 python -m pytest tests/backends/test_graph.py`` and review the diff.
"""
from __future__ import annotations

import os
import re
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

import archdsl
from archdsl import ArchError
from archdsl.passes.analysis import summarize
from archdsl.backends import graph
from archdsl.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "graph"
EXAMPLES = ROOT / "examples"
DOCS_IMG = ROOT / "docs" / "img"
REGEN = bool(os.environ.get("ARCHDSL_REGEN"))
HAVE_DOT = shutil.which("dot") is not None
needs_dot = pytest.mark.skipif(not HAVE_DOT, reason="Graphviz 'dot' is not installed")

CHAIN = """
network chain(classes = 10) {
    input image: [1, 28, 28]
    image -> conv1: conv(6, 5, pad=2) -> relu -> maxpool(2)
          -> conv2: conv(16, 5) -> relu -> avgpool(2, stride=2)
          -> flatten -> fc: linear(classes)
}
"""

RESIDUAL = """
block basic(planes, stride = 1) {
    add {
        conv1: conv(planes, 3, stride=stride, pad=1, bias=false) -> bn1: bn -> relu
        -> conv2: conv(planes, 3, pad=1, bias=false) -> bn2: bn
      | if stride != 1 or in.channels != planes {
            downsample: seq { conv(planes, 1, stride=stride, bias=false) -> bn }
        }
    } -> relu
}

network residual() {
    input x: [4, 16, 16]
    x -> stem: conv(8, 3, pad=1) -> layer1: seq { basic(16, stride=2) -> basic(16) }
      -> adaptive_avgpool(1) -> flatten -> fc: linear(5)
}
"""

BRANCHES = """
block mixed(c) {
    concat {
        b1: conv(c, 1)
      | b2: seq { conv(c, 1) -> conv(c, 3, pad=1, groups=c) }
      | b3: seq { maxpool(3, stride=1, pad=1) -> conv(c, 1) }
    }
}

network branches() {
    input x: [8, 12, 12]
    y = x -> m: mixed(4)
    a, b = y -> chunk(2)
    g = b -> gate: mul { sigmoid | identity }
    output logits = concat(a, g) -> conv(2, 1, dilation=2)
}
"""

CASES = {  # golden name -> (source, depth, rankdir)
    "chain": (CHAIN, None, "TB"),
    "residual": (RESIDUAL, None, "TB"),
    "residual_depth1": (RESIDUAL, 1, "TB"),
    "branches_lr": (BRANCHES, None, "LR"),
}


def net_of(text: str, name: str | None = None):
    return archdsl.loads(text).network(name)


def check_golden(path: Path, got: str) -> None:
    if REGEN:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(got, encoding="utf-8")
    assert path.exists(), f"missing golden {path.name}; run with ARCHDSL_REGEN=1"
    assert got == path.read_text(encoding="utf-8"), f"{path.name} changed; review, then ARCHDSL_REGEN=1"


# ------------------------------------------------------------------------------------ goldens


@pytest.mark.parametrize("name", sorted(CASES))
def test_dot_golden(name):
    source, depth, rankdir = CASES[name]
    check_golden(GOLDEN / f"{name}.dot", graph.to_dot(net_of(source), depth=depth, rankdir=rankdir))


@pytest.mark.parametrize("name", sorted(CASES))
def test_mermaid_golden(name):
    source, depth, rankdir = CASES[name]
    check_golden(GOLDEN / f"{name}.mmd", graph.to_mermaid(net_of(source), depth=depth, rankdir=rankdir))


def test_output_is_deterministic():
    for source, depth, rankdir in CASES.values():
        a, b = net_of(source), net_of(source)
        assert graph.to_dot(a, depth, rankdir) == graph.to_dot(b, depth, rankdir)
        assert graph.to_mermaid(a, depth, rankdir) == graph.to_mermaid(b, depth, rankdir)


# ------------------------------------------------------------------------------------ content


@pytest.mark.parametrize("stage, label", [
    ("conv(128, 3, stride=2, pad=1)", "conv 3x3/2, 128"),
    ("conv(16, (1, 7), pad=(0, 3))", "conv 1x7, 16"),
    ("conv(8, 3, pad=2, dilation=2)", "conv 3x3, 8, dilation 2x2"),
    ("conv(8, 3, pad=1, groups=8)", "conv 3x3, 8, depthwise"),
    ("conv(16, 3, pad=1, groups=2)", "conv 3x3, 16, groups 2"),
    ("conv_transpose(4, 2, stride=2)", "conv_transpose 2x2/2, 4"),
    ("maxpool(3, stride=2, pad=1)", "maxpool 3x3/2"),
    ("maxpool(2)", "maxpool 2x2/2"),
    ("avgpool(3, stride=1, pad=1)", "avgpool 3x3"),
    ("adaptive_avgpool(1)", "adaptive_avgpool 1x1"),
    ("bn(eps=0.001)", "bn"),
    ("dropout(0.2)", "dropout 0.2"),
    ("channel_shuffle(2)", "channel_shuffle 2"),
    ("leaky_relu(0.2)", "leaky_relu slope=0.2"),
    ("upsample(2)", "upsample x2 nearest"),
    ("flatten -> linear(1000)", "linear 1000"),
])
def test_node_labels_show_the_attributes_that_matter(stage, label):
    net = net_of(f"network n() {{ input x: [8, 16, 16]\n x -> {stage} }}")
    assert graph.op_label(net, net.nodes[-1]) == label
    assert f"<b>{label}</b>" in graph.to_dot(net)


def test_nodes_show_name_and_output_shape_and_merges_differ():
    dot = graph.to_dot(net_of(RESIDUAL))
    assert "conv1 · [16, 8, 8]" in dot
    merges = [line for line in dot.splitlines() if "<b>add</b>" in line]
    assert merges and all("shape=ellipse" in line for line in merges)
    assert all("shape=box" in line for line in dot.splitlines() if "<b>conv " in line)
    mmd = graph.to_mermaid(net_of(RESIDUAL))
    assert re.search(r'n\d+\{\{"<b>add</b>', mmd)  # a hexagon


def test_scopes_become_nested_clusters_named_by_module_path():
    dot = graph.to_dot(net_of(RESIDUAL))
    labels = re.findall(r"^( *)label=<<b>([^<]*)</b><br/><font[^>]*>([^<]*)</font>>;", dot, re.M)
    got = [(len(indent) // 4, path, note) for indent, path, note in labels]
    assert got == [(2, "layer1", "seq"), (3, "layer1.0", "basic"), (4, "layer1.0.downsample", "seq"),
                   (3, "layer1.1", "basic")]
    assert dot.count("subgraph cluster_") == 4
    mmd = graph.to_mermaid(net_of(RESIDUAL))
    assert re.findall(r'subgraph s\d+\["([^"]*)"\]', mmd) == [
        "layer1 · seq", "layer1.0 · basic", "layer1.0.downsample · seq", "layer1.1 · basic"]


def test_unlabelled_seq_and_labelled_merge_are_clusters():
    dot = graph.to_dot(net_of(BRANCHES))
    for path in ("m", "m.b2", "m.b3", "gate"):
        assert f"label=<<b>{path}</b>" in dot
    net = net_of("network n() { input x: [3, 8, 8]\n x -> seq { conv(4, 1) -> relu } -> conv(2, 1) }")
    assert "label=<<b>0</b>" in graph.to_dot(net)


def test_depth_collapses_scopes_into_boxes_with_name_shape_and_params():
    net = net_of(RESIDUAL)
    view = graph.build_view(net, depth=0)
    (block,) = [b for b in view.root.items if isinstance(b, graph.Box) and b.kind == "block"]
    params = summarize(net, depth=0).rows
    row = next(r for r in params if r.path == "layer1")
    assert block.title == "layer1"
    assert block.detail == (f"seq · {row.params:,} params", "[16, 8, 8]")
    assert not any(isinstance(i, graph.Cluster) for i in view.root.items)
    dot = graph.to_dot(net, depth=0)
    assert "box3d" in dot and "subgraph" not in dot
    # depth 1: layer1 stays a cluster, the blocks inside are boxes
    dot1 = graph.to_dot(net, depth=1)
    assert dot1.count("subgraph cluster_") == 1 and dot1.count("shape=box3d") == 2
    assert "layer1.0" in dot1 and "basic · " in dot1
    # collapsing keeps the data flow connected: one path from input to output
    edges = graph.build_view(net, depth=0).edges
    assert [(e.src, e.dst) for e in edges][:3] == [("n0", "n1"), ("n1", edges[1].dst), (edges[1].dst, edges[2].dst)]


def test_big_networks_fit_when_collapsed():
    arch = archdsl.load(EXAMPLES / "resnet.arch")
    net = arch.network("resnet152")
    full, collapsed = graph.build_view(net), graph.build_view(net, depth=1)
    assert len(full.edges) > 500 and len(collapsed.edges) < 70


def test_edges_follow_data_flow_order():
    net = net_of(BRANCHES)
    view = graph.build_view(net)
    order = {f"n{n.id}": n.id for n in net.nodes}
    targets = [order.get(e.dst, len(order)) for e in view.edges]
    assert targets == sorted(targets)
    ports = [e.label for e in view.edges if e.label]
    assert ports == ["1", "1", "0"]  # chunk: b feeds both gate branches, a the final concat


def test_every_output_is_drawn():
    net = net_of("network n() { input x: [3, 8, 8]\n y = x -> conv(4, 1)\n output a = y -> relu\n"
                 " output b = y -> sigmoid }")
    mmd = graph.to_mermaid(net)
    assert '"<b>output a</b>' in mmd and '"<b>output b</b>' in mmd


def test_bad_options():
    net = net_of(CHAIN)
    with pytest.raises(ArchError, match="rankdir"):
        graph.to_dot(net, rankdir="XY")
    with pytest.raises(ArchError, match="depth"):
        graph.to_mermaid(net, depth=-1)


# ------------------------------------------------------------------------------------ escaping

HOSTILE = 'q"uo\\te {br}aces} <b>&amp; ü⊕ñ 日本 \\N \\G %%{init}%% #35; `tick` end --> |x|\n\t\x00\x07\ud800'


def hostile_net():
    net = net_of("""
network evil() {
    input x: [3, 8, 8]
    x -> "a\\"b\\\\c": conv(4, 3) -> relu -> "ü⊕ñ": seq { conv(4, 1) } -> pick: concat { identity | relu }
}""")
    assert [n.path for n in net.nodes if n.op == "conv"] == ['a"b\\c', "ü⊕ñ.0"]
    relu = next(n for n in net.nodes if n.op == "relu")
    relu.name, relu.labeled = HOSTILE, True  # beyond what the parser lets through
    net.name = HOSTILE
    return net


def dot_tokens_balanced(text: str) -> None:
    """A small DOT lexer: strings, HTML strings and comments close; braces balance outside them."""
    i, depth, n = 0, 0, len(text)
    while i < n:
        c = text[i]
        if c == '"':
            i += 1
            while text[i] != '"':
                assert text[i] != "\n", "newline inside a quoted string"
                i += 2 if text[i] == "\\" else 1
        elif c == "<":
            level = 1
            i += 1
            while level:
                assert text[i] != "\n", "newline inside an HTML label"
                level += {"<": 1, ">": -1}.get(text[i], 0)
                i += 1
            continue
        elif text.startswith("//", i):
            i = text.index("\n", i)
        elif c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            assert depth >= 0
        i += 1
    assert depth == 0


def html_labels_are_xml(text: str) -> None:
    for label in re.findall(r"label=<(.*?)>[,;\]]", text):
        ET.fromstring(f"<x>{label}</x>")


def test_dot_escapes_user_text():
    text = graph.to_dot(hostile_net())
    dot_tokens_balanced(text)
    html_labels_are_xml(text)
    assert "\x00" not in text and "\ud800" not in text
    assert "\\\\N \\\\G" in text  # tooltips: backslashes doubled, so no \N expansion
    text.encode("utf-8")


def test_mermaid_escapes_user_text():
    text = graph.to_mermaid(hostile_net())
    text.encode("utf-8")
    for line in text.splitlines()[2:]:
        # outside our own <b>, </b> and <br/>, no raw markup, quotes, or Mermaid comment/entity starts
        inner = re.sub(r"</?b>|<br/>", "", line)
        label = re.findall(r'"(.*?)"', inner)
        assert len(re.findall('"', inner)) % 2 == 0
        for part in label:
            assert not set(part) & set("<>`%\\"), part
            assert re.fullmatch(r"([^#]|#(\d+|quot|amp|lt|gt);)*", part), part
    assert "#quot;" in text and "#lt;b#gt;" in text and "ü⊕ñ" in text


@needs_dot
def test_hostile_labels_render_to_valid_svg():
    net = hostile_net()
    svg = graph.to_svg(net)
    root = ET.fromstring(svg)
    texts = " ".join(t.text or "" for t in root.iter("{http://www.w3.org/2000/svg}text"))
    assert 'a"b\\c' in texts and "ü⊕ñ" in texts and "<b>&amp;" in texts and "日本" in texts


# ------------------------------------------------------------------------------------ Graphviz


@needs_dot
def test_svg_parses_as_xml():
    svg = graph.to_svg(net_of(RESIDUAL))
    root = ET.fromstring(svg)
    assert root.tag == "{http://www.w3.org/2000/svg}svg"
    assert "conv 3x3/2, 16" in svg and "layer1.0.downsample" in svg
    assert archdsl.loads(RESIDUAL).network()._repr_svg_().lstrip().startswith("<?xml")


@needs_dot
@pytest.mark.parametrize("suffix, magic", [(".svg", b"<?xml"), (".png", b"\x89PNG"), (".pdf", b"%PDF")])
def test_write_renders_each_format(tmp_path, suffix, magic):
    out = tmp_path / f"net{suffix}"
    graph.write(net_of(CHAIN), out, depth=1, rankdir="LR")
    assert out.read_bytes().startswith(magic)
    assert sorted(p.name for p in tmp_path.iterdir()) == [out.name]  # no temp files, no .dot


@needs_dot
def test_parallel_branches_read_left_to_right():
    """Whatever the Graphviz version, branches appear in program order (see render_view)."""
    net = net_of(BRANCHES)
    view = graph.build_view(net)
    exe = shutil.which("dot")
    chosen = graph.view_to_dot(view)
    score = graph._order_score(graph._run_dot(exe, chosen, "plain"), view.order_pairs(), "TB")
    mirrored = graph.view_to_dot(view, mirror=True)
    mscore = graph._order_score(graph._run_dot(exe, mirrored, "plain"), view.order_pairs(), "TB")
    best = max(score, mscore)
    assert best > 0
    svg = graph.to_svg(net)
    heads = {}
    for g in ET.fromstring(svg).iter("{http://www.w3.org/2000/svg}g"):
        title = g.find("{http://www.w3.org/2000/svg}title")
        if title is not None and title.text in {"n1", "n2", "n4"}:  # the three branch heads of m
            text = next(g.iter("{http://www.w3.org/2000/svg}text"))
            heads[title.text] = float(text.get("x"))
    assert heads["n1"] < heads["n2"] < heads["n4"]


def test_missing_dot_writes_dot_and_says_how_to_install(tmp_path, monkeypatch):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    net = net_of(CHAIN)
    out = tmp_path / "chain.svg"
    with pytest.raises(ArchError) as err:
        graph.write(net, out)
    message = str(err.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert "chain.dot" in message
    assert not out.exists()
    assert (tmp_path / "chain.dot").read_text() == graph.to_dot(net)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["chain.dot"]
    assert net._repr_svg_() is None  # a notebook falls back to text


def test_dot_and_mermaid_need_no_graphviz(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    net = net_of(CHAIN)
    graph.write(net, tmp_path / "a.dot")
    graph.write(net, tmp_path / "a.gv", depth=0)
    graph.write(net, tmp_path / "a.mmd", rankdir="LR")
    assert (tmp_path / "a.dot").read_text() == graph.to_dot(net)
    assert (tmp_path / "a.mmd").read_text().startswith("%% chain: generated by archdsl\nflowchart LR\n")


def test_unknown_suffix_is_an_error(tmp_path):
    with pytest.raises(ArchError, match="picture format"):
        graph.write(net_of(CHAIN), tmp_path / "a.jpeg")
    assert list(tmp_path.iterdir()) == []


def test_graphviz_failure_keeps_the_dot(tmp_path, monkeypatch):
    fake = tmp_path / "bin" / "dot"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho 'Error: syntax error in line 1' >&2\nexit 1\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(fake.parent))
    with pytest.raises(ArchError, match="syntax error in line 1") as err:
        graph.write(net_of(CHAIN), tmp_path / "x.png")
    assert "x.dot" in str(err.value)
    assert (tmp_path / "x.dot").exists() and not (tmp_path / "x.png").exists()


# ------------------------------------------------------------------------------------ CLI


def test_cli_graph_writes_dot_and_mermaid(tmp_path):
    src = tmp_path / "chain.arch"
    src.write_text(CHAIN)
    assert main(["graph", str(src), "-o", str(tmp_path / "c.dot"), "--depth", "1"]) == 0
    assert (tmp_path / "c.dot").read_text() == graph.to_dot(net_of(CHAIN), depth=1)
    assert main(["graph", str(src), "-o", str(tmp_path / "c.mmd"), "--rankdir", "LR", "-D", "classes=3"]) == 0
    assert "linear 3" in (tmp_path / "c.mmd").read_text()


@needs_dot
def test_cli_graph_writes_svg(tmp_path):
    src = tmp_path / "res.arch"
    src.write_text(RESIDUAL)
    out = tmp_path / "res.svg"
    assert main(["graph", str(src), "-o", str(out)]) == 0
    ET.parse(out)


def test_cli_graph_without_graphviz(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(graph.shutil, "which", lambda name: None)
    src = tmp_path / "chain.arch"
    src.write_text(CHAIN)
    assert main(["graph", str(src), "-o", str(tmp_path / "c.pdf")]) == 1
    err = capsys.readouterr().err
    assert "error:" in err and "apt-get install graphviz" in err and "Traceback" not in err
    assert (tmp_path / "c.dot").exists() and not (tmp_path / "c.pdf").exists()


def test_cli_graph_bad_suffix(tmp_path, capsys):
    src = tmp_path / "chain.arch"
    src.write_text(CHAIN)
    assert main(["graph", str(src), "-o", str(tmp_path / "c.txt")]) == 1
    assert "use one of: .svg .png .pdf .dot .gv .mmd" in capsys.readouterr().err


# ------------------------------------------------------------------------------------ docs pictures


def docs_pictures():
    """The pictures docs/img holds: name -> (network, depth)."""
    pictures = {}
    if (EXAMPLES / "lenet5.arch").exists():
        pictures["lenet5"] = (lambda: archdsl.load(EXAMPLES / "lenet5.arch").network(), None)
    if (EXAMPLES / "resnet.arch").exists():
        pictures["resnet18_depth2"] = (lambda: archdsl.load(EXAMPLES / "resnet.arch").network("resnet18"), 2)
    if (EXAMPLES / "googlenet.arch").exists():
        src = ('import "googlenet.arch"\nnetwork inception_block() {\n    input x: [192, 28, 28]\n'
               "    x -> inception3a: inception(64, 96, 128, 16, 32, 32)\n}\n")
        pictures["inception_block"] = (
            lambda: archdsl.loads(src, str(EXAMPLES / "inception_block.arch")).network("inception_block"), None)
    if (EXAMPLES / "densenet.arch").exists():
        src2 = ('import "densenet.arch"\nnetwork denseblock() {\n    input x: [64, 56, 56]\n'
                "    x -> denseblock1: dense_block(3, 32)\n}\n")
        pictures["dense_block"] = (
            lambda: archdsl.loads(src2, str(EXAMPLES / "dense_block.arch")).network("denseblock"), None)
    return pictures


@pytest.mark.parametrize("name", sorted(docs_pictures()))
def test_docs_pictures(name):
    make, depth = docs_pictures()[name]
    path = DOCS_IMG / f"{name}.svg"
    if REGEN and HAVE_DOT:
        path.parent.mkdir(parents=True, exist_ok=True)
        graph.write(make(), path, depth=depth)
    if not path.exists():
        pytest.skip(f"{path.name} not rendered yet; run with ARCHDSL_REGEN=1 where Graphviz is installed")
    ET.parse(path)
    assert path.stat().st_size < 200_000
