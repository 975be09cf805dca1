"""Pictures of a network: Graphviz DOT (rendered to SVG/PNG/PDF by ``dot``) and Mermaid.

Both writers draw the same :class:`View`: one box per op node, showing the op with the
attributes that matter (``conv 3x3/2, 128``), its module name and its output shape; merges
(``add``, ``concat``, ``mul``) as orange ellipses; every module scope (network, block instance,
``seq``, labelled merge) as a labelled cluster named by its module path.  With ``depth=N`` a
scope deeper than ``N`` (the same rule as ``archdsl summary --depth``) becomes one box showing
the block's name, output shape and parameter count.

The text is written by hand, not through a Graphviz binding, and every piece of user text is
escaped: module labels may hold quotes, backslashes, braces and any Unicode.  Output is
deterministic: nodes, clusters and edges follow program order.
"""
from __future__ import annotations

import shutil
import subprocess
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .. import ops
from ..errors import ArchError, Span
from ..ir import Network, Node, Scope
from ..ops import Style, fmt_shape

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot", ".mmd": "mermaid"}
RANKDIRS = ("TB", "LR", "BT", "RL")
INSTALL_HINT = ("install Graphviz: apt-get install graphviz (Debian, Ubuntu), brew install graphviz (macOS), "
                "or see https://graphviz.org/download/")
MERMAID_MAX_EDGES = 500  # Mermaid's default maxEdges: a bigger chart does not render in Markdown

def op_label(net: Network, n: Node) -> str:
    """``conv 3x3/2, 128``, ``maxpool 3x3/2``, ``linear 1000``, ``concat``: the op's ``label`` facet."""
    return ops.REGISTRY[n.op].picture(n.attrs, [net.shape_of(v) for v in n.inputs])


# ------------------------------------------------------------------------------------------ the view


@dataclass
class Box:
    """One drawn node: an op node, a collapsed scope, an input or an output."""

    id: str
    kind: str  # style class: conv linear pool norm act merge shape input output block
    title: str  # first line, bold
    detail: tuple[str, ...]  # further lines: name, shape, parameters
    tooltip: str


@dataclass
class Cluster:
    id: str
    label: str  # module path
    note: str  # block definition or scope kind
    depth: int
    items: list[Box | Cluster] = field(default_factory=list)


@dataclass(frozen=True)
class Edge:
    src: str
    dst: str
    label: str = ""  # the output port, for ops with several outputs
    main: bool = True  # the input of a single-input op: weighted to run straight


@dataclass
class View:
    name: str
    title: str
    root: Cluster
    edges: list[Edge]  # in data-flow order
    merges: set[str] = field(default_factory=set)  # boxes whose inputs are parallel branches

    def order_pairs(self) -> list[tuple[str, str]]:
        """Boxes that should read left to right: consecutive consumers of one output, and
        consecutive inputs of a merge."""
        outs: dict[str, list[str]] = {}
        ins: dict[str, list[str]] = {}
        for e in self.edges:
            outs.setdefault(e.src, []).append(e.dst)
            if e.dst in self.merges:
                ins.setdefault(e.dst, []).append(e.src)
        return [(a, b) for group in (*outs.values(), *ins.values()) for a, b in zip(group, group[1:])]


def _style_kind(op: str) -> str:
    return ops.REGISTRY[op].style.value


def _shapes(shapes) -> str:
    return " ".join(fmt_shape(s) for s in shapes)


def _params(net: Network, nodes) -> int:
    from ..passes.analysis import node_params

    return sum(node_params(net, n)[0] for n in nodes)


def build_view(net: Network, depth: int | None = None) -> View:
    """What to draw: boxes grouped in clusters, and the edges between them."""
    if depth is not None and (not isinstance(depth, int) or depth < 0):
        raise ArchError(f"depth must be a whole number >= 0, got {depth!r}")
    input_names = {v[0]: k for k, v in net.inputs.items()}
    owner: dict[int, str] = {}  # node id -> id of the box that draws it
    counter = [0]

    def node_box(n: Node) -> Box:
        if n.op == "input":
            name = input_names.get(n.id, n.name)
            return Box(f"n{n.id}", "input", f"input {name}", (_shapes(n.shapes),), name)
        title = op_label(net, n)
        detail = _shapes(n.shapes)
        if n.labeled and n.name != n.op:
            detail = f"{n.name} · {detail}"
        params = _params(net, [n])
        tip = n.path or n.op
        return Box(f"n{n.id}", _style_kind(n.op), title, (detail,),
                   f"{tip}: {title}" + (f" ({params:,} params)" if params else ""))

    def collapsed(s: Scope) -> Box:
        nodes = list(s.nodes())
        bid = f"b{nodes[0].id}"
        for n in nodes:
            owner[n.id] = bid
        outs = [net.shape_of(v) for v in s.outputs] or nodes[-1].shapes
        params = _params(net, nodes)
        return Box(bid, "block", s.path, (f"{s.block or s.kind} · {params:,} params", _shapes(outs)),
                   f"{s.path}: {s.block or s.kind}, {len(nodes)} ops, {params:,} params")

    def cluster(s: Scope) -> Cluster:
        counter[0] += 1
        c = Cluster(f"cluster_{counter[0]}", s.path, s.block or s.kind, s.depth)
        for item in s.items:
            if isinstance(item, Node):
                owner[item.id] = f"n{item.id}"
                c.items.append(node_box(item))
            elif not any(True for _ in item.nodes()):
                continue  # an empty scope draws nothing
            elif depth is not None and item.depth > depth:
                c.items.append(collapsed(item))
            else:
                c.items.append(cluster(item))
        return c

    root = Cluster("root", net.name, "network", 0)
    for item in net.root.items:
        if isinstance(item, Node):
            owner[item.id] = f"n{item.id}"
            root.items.append(node_box(item))
        elif any(True for _ in item.nodes()):
            root.items.append(collapsed(item) if depth is not None and item.depth > depth else cluster(item))

    edges: list[Edge] = []
    seen: set[tuple[str, str, str]] = set()

    def edge(a: str, b: str, label: str = "", main: bool = True) -> None:
        if a != b and (a, b, label) not in seen:
            seen.add((a, b, label))
            edges.append(Edge(a, b, label, main))

    for n in net.nodes:
        for k, (src, port) in enumerate(n.inputs):
            many = len(net.node(src).shapes) > 1 and owner[src].startswith("n")
            edge(owner[src], owner[n.id], f"{port}" if many else "", k == 0 and len(n.inputs) == 1)
    for k, (name, (src, port)) in enumerate(net.outputs.items()):
        title = "output" if name == "output" else f"output {name}"
        root.items.append(Box(f"out{k}", "output", title, (_shapes([net.shape_of((src, port))]),), name))
        many = len(net.node(src).shapes) > 1 and owner[src].startswith("n")
        edge(owner[src], f"out{k}", f"{port}" if many else "")
    title = f"{net.name} · {_params(net, net.nodes):,} params"
    merges = {f"n{n.id}" for n in net.nodes if len(n.inputs) > 1 and owner[n.id] == f"n{n.id}"}
    return View(net.name, title, root, edges, merges)


# ------------------------------------------------------------------------------------------ escaping


def clean(text: Any) -> str:
    """User text made safe for any label: control characters become spaces, lone surrogates and
    XML-invalid code points become U+FFFD."""
    out = []
    for ch in str(text):
        o = ord(ch)
        if 0xD800 <= o <= 0xDFFF or o in (0xFFFE, 0xFFFF):
            out.append("\ufffd")
        elif unicodedata.category(ch) == "Cc":
            out.append(" ")
        else:
            out.append(ch)
    return "".join(out)


def dot_html(text: Any) -> str:
    """Text inside a Graphviz HTML-like label ``<...>``."""
    return (clean(text).replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
            .replace('"', "&quot;"))


def dot_quote(text: Any) -> str:
    """A DOT double-quoted string; backslashes doubled so ``\\N`` or ``\\G`` stay literal."""
    return '"' + clean(text).replace("\\", "\\\\").replace('"', '\\"') + '"'


_MERMAID_ENTITIES = {"&": "#amp;", "<": "#lt;", ">": "#gt;", '"': "#quot;", "#": "#35;", "`": "#96;",
                     "%": "#37;", "\\": "#92;"}


def mermaid_text(text: Any) -> str:
    """Text inside a Mermaid ``"..."`` label: Mermaid entity codes for the characters its
    parser or its HTML labels would read."""
    return "".join(_MERMAID_ENTITIES.get(ch, ch) for ch in clean(text))


# ------------------------------------------------------------------------------------------ DOT

_FILL = {  # box kind (an op's Style, or input, output, block) -> fill, border
    Style.CONV.value: ("#dbe8f7", "#4f7cb3"), Style.LINEAR.value: ("#e4dcf1", "#7a62a8"),
    Style.POOL.value: ("#dcefd6", "#5b9a4b"), Style.NORM.value: ("#fdf2cc", "#b89a2e"),
    Style.ACT.value: ("#f5f5f5", "#999999"), Style.MERGE.value: ("#fde0c5", "#d0792a"),
    Style.SHAPE.value: ("#ffffff", "#999999"), "input": ("#e8e8e8", "#555555"), "output": ("#e8e8e8", "#555555"),
    "block": ("#f6dbe6", "#b0507a"),
}
_SHAPE = {Style.MERGE.value: "ellipse", "block": "box3d"}
_CLUSTER_FILL = ("#f7f7f7", "#eeeeee", "#e4e4e4", "#dadada", "#d0d0d0")


def _dot_box(b: Box, indent: str) -> str:
    fill, border = _FILL[b.kind]
    shape = _SHAPE.get(b.kind, "box")
    margin = ', margin="0.14,0.07"' if shape == "box3d" else ""
    if b.kind in ("input", "output"):
        style = '"filled,bold"'
    else:
        style = '"rounded,filled"' if shape == "box" else "filled"
    detail = "<br/>".join(dot_html(line) for line in b.detail)
    label = f"<<b>{dot_html(b.title)}</b><br/><font point-size=\"9\" color=\"#444444\">{detail}</font>>"
    return (f"{indent}{b.id} [label={label}, shape={shape}, style={style}, fillcolor=\"{fill}\", "
            f"color=\"{border}\"{margin}, tooltip={dot_quote(b.tooltip)}];")


def _dot_cluster(c: Cluster, lines: list[str], indent: str, mirror: bool) -> None:
    lines.append(f"{indent}subgraph {c.id} {{")
    inner = indent + "    "
    fill = _CLUSTER_FILL[min(c.depth - 1, len(_CLUSTER_FILL) - 1)]
    lines.append(f"{inner}label=<<b>{dot_html(c.label)}</b><br/><font point-size=\"9\" color=\"#666666\">"
                 f"{dot_html(c.note)}</font>>;")
    lines.append(f"{inner}style=\"rounded,filled\"; fillcolor=\"{fill}\"; color=\"#aaaaaa\"; fontsize=10; "
                 f"labeljust=l; tooltip={dot_quote(c.label + ': ' + c.note)};")
    _dot_items(c.items[::-1] if mirror else c.items, lines, inner, mirror)
    lines.append(f"{indent}}}")


def _dot_items(items, lines: list[str], indent: str, mirror: bool) -> None:
    for item in items:
        if isinstance(item, Box):
            lines.append(_dot_box(item, indent))
        else:
            _dot_cluster(item, lines, indent, mirror)


def to_dot(net: Network, depth: int | None = None, rankdir: str = "TB") -> str:
    """The network as Graphviz DOT text."""
    _check_rankdir(rankdir)
    return view_to_dot(build_view(net, depth), rankdir)


def view_to_dot(view: View, rankdir: str = "TB", mirror: bool = False) -> str:
    """DOT text of a view.  ``mirror=True`` lists each cluster's contents in reverse, for the
    Graphviz versions that lay out the nodes of a subgraph in reverse input order (issue #1585,
    fixed in Graphviz 10): :func:`render_view` keeps whichever keeps branches in program order."""
    lines = [
        f"// {clean(view.name)}: generated by archdsl",
        "digraph network {",
        f"    graph [rankdir={rankdir}, label=<<b>{dot_html(view.title)}</b>>, labelloc=t, "
        "fontname=\"Helvetica\", fontsize=12, nodesep=0.25, ranksep=0.3, newrank=true];",
        "    node [fontname=\"Helvetica\", fontsize=10, height=0.3, margin=\"0.10,0.03\"];",
        "    edge [arrowsize=0.6, color=\"#555555\", fontname=\"Helvetica\", fontsize=8, weight=4];",
    ]
    _dot_items(view.root.items, lines, "    ", mirror)
    for e in view.edges:
        # the main flow (a single-input node's input) is weighted to run straight; merges bend
        attrs = ([f"label={dot_quote(e.label)}"] if e.label else []) + ([] if e.main else ["weight=1"])
        lines.append(f"    {e.src} -> {e.dst}" + (f" [{', '.join(attrs)}];" if attrs else ";"))
    lines.append("}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ Mermaid

_MERMAID_SHAPE = {Style.MERGE.value: ("{{", "}}"), "input": ("[/", "/]"), "output": ("([", "])"), "block": ("[[", "]]")}


def to_mermaid(net: Network, depth: int | None = None, rankdir: str = "TB") -> str:
    """The network as a Mermaid flowchart, for Markdown documents (no external tool needed)."""
    _check_rankdir(rankdir)
    return view_to_mermaid(build_view(net, depth), rankdir)


def view_to_mermaid(view: View, rankdir: str = "TB") -> str:
    """Mermaid flowchart text of a view."""
    lines = [f"%% {mermaid_text(view.name)}: generated by archdsl", f"flowchart {rankdir}"]
    classes: dict[str, list[str]] = {}
    subgraphs = [0]

    def emit(items, indent: str) -> None:
        for item in items:
            if isinstance(item, Box):
                left, right = _MERMAID_SHAPE.get(item.kind, ("[", "]"))
                text = "<br/>".join([f"<b>{mermaid_text(item.title)}</b>", *map(mermaid_text, item.detail)])
                lines.append(f"{indent}{item.id}{left}\"{text}\"{right}")
                classes.setdefault(item.kind, []).append(item.id)
            else:
                subgraphs[0] += 1
                label = f"{mermaid_text(item.label)} · {mermaid_text(item.note)}"
                lines.append(f"{indent}subgraph s{subgraphs[0]}[\"{label}\"]")
                emit(item.items, indent + "    ")
                lines.append(f"{indent}end")

    emit(view.root.items, "    ")
    for e in view.edges:
        arrow = f"-->|\"{mermaid_text(e.label)}\"|" if e.label else "-->"
        lines.append(f"    {e.src} {arrow} {e.dst}")
    for kind, (fill, border) in _FILL.items():
        if kind in classes:
            lines.append(f"    classDef {kind} fill:{fill},stroke:{border},color:#000000")
            lines.append(f"    class {','.join(classes[kind])} {kind}")
    return "\n".join(lines) + "\n"


# ------------------------------------------------------------------------------------------ rendering


def _check_rankdir(rankdir: str) -> None:
    if rankdir not in RANKDIRS:
        raise ArchError(f"rankdir must be one of {', '.join(RANKDIRS)}, got {rankdir!r}")


def _dot_exe() -> str | None:
    return shutil.which("dot")


PNG_DPI = 192  # Graphviz's own 96 blurs as soon as the picture is zoomed


def _run_dot(exe: str, text: str, fmt: str, dpi: int | None = None) -> bytes:
    """``dot -T<fmt>``; ``dpi`` sets the resolution of raster output (PNG)."""
    extra = [f"-Gdpi={dpi or PNG_DPI}"] if fmt == "png" else []
    proc = subprocess.run([exe, f"-T{fmt}", *extra], input=text.encode("utf-8"), capture_output=True, check=False)
    if proc.returncode != 0 or not proc.stdout:
        err = proc.stderr.decode("utf-8", "replace").strip().splitlines()
        why = err[-1] if err else f"exit status {proc.returncode}"
        raise ArchError(f"Graphviz 'dot -T{fmt}' failed: {why}", Span("", 0, 0))
    return proc.stdout


def _order_score(plain: bytes, pairs: list[tuple[str, str]], rankdir: str) -> int:
    """How many (first, second) pairs a layout (``dot -Tplain``) draws in reading order, minus
    how many it draws the other way round."""
    pos: dict[str, float] = {}
    for line in plain.decode("utf-8", "replace").splitlines():
        f = line.split()
        if len(f) > 3 and f[0] == "node":
            pos[f[1]] = float(f[2]) if rankdir in ("TB", "BT") else -float(f[3])
    return sum((pos[a] < pos[b]) - (pos[a] > pos[b]) for a, b in pairs if a in pos and b in pos)


def render_view(view: View, fmt: str, rankdir: str = "TB", dpi: int | None = None) -> bytes:
    """Lay out and render a view with Graphviz; :class:`ArchError` when dot is missing or fails.

    Sibling branches should read left to right in program order, but Graphviz before 10 reverses
    the nodes of each cluster: both listings are laid out and the one that keeps more branches in
    order is rendered."""
    exe = _dot_exe()
    if exe is None:
        raise ArchError("Graphviz 'dot' was not found", Span("", 0, 0), INSTALL_HINT)
    text = view_to_dot(view, rankdir)
    pairs = view.order_pairs()
    if pairs:
        mirrored = view_to_dot(view, rankdir, mirror=True)
        if (_order_score(_run_dot(exe, mirrored, "plain"), pairs, rankdir)
                > _order_score(_run_dot(exe, text, "plain"), pairs, rankdir)):
            text = mirrored
    return _run_dot(exe, text, fmt, dpi)


def render(text: str, fmt: str) -> bytes:
    """Run Graphviz ``dot -T<fmt>`` on DOT text; :class:`ArchError` when dot is missing or fails."""
    exe = _dot_exe()
    if exe is None:
        raise ArchError("Graphviz 'dot' was not found", Span("", 0, 0), INSTALL_HINT)
    return _run_dot(exe, text, fmt)


def to_svg(net: Network, depth: int | None = None, rankdir: str = "TB") -> str:
    """The network as SVG text, rendered by Graphviz (``Network._repr_svg_`` uses this)."""
    _check_rankdir(rankdir)
    return render_view(build_view(net, depth), "svg", rankdir).decode("utf-8")


def write(net: Network, path: str | Path, depth: int | None = None, rankdir: str = "TB", diags=None,
          dpi: int | None = None) -> None:
    """Write a picture of ``net``; the suffix of ``path`` picks the format (.svg .png .pdf .dot .gv .mmd).
    ``dpi``: the resolution of a PNG (default :data:`PNG_DPI`).

    The file is written atomically.  When Graphviz is missing (or fails) for .svg/.png/.pdf, the
    DOT text is written next to ``path`` as ``.dot`` and an :class:`ArchError` says how to install
    Graphviz; the requested file is not created.
    """
    from ..files import write_atomic

    target = Path(path)
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise ArchError(f"cannot tell the picture format from '{target.name}'", Span(str(target), 0, 0),
                        "use one of: " + " ".join(FORMATS))
    _check_rankdir(rankdir)
    view = build_view(net, depth)
    if fmt == "mermaid":
        if diags is not None and len(view.edges) >= MERMAID_MAX_EDGES:
            diags.warning(f"the Mermaid chart has {len(view.edges)} edges; Mermaid draws at most "
                          f"{MERMAID_MAX_EDGES} by default", Span(str(target), 0, 0),
                          "collapse blocks with --depth 1 or 2")
        write_atomic(str(target), view_to_mermaid(view, rankdir))
        return
    text = view_to_dot(view, rankdir)
    if fmt == "dot":
        write_atomic(str(target), text)
        return
    try:
        data = render_view(view, fmt, rankdir, dpi)
    except ArchError as err:
        fallback = target.with_suffix(".dot")
        write_atomic(str(fallback), text)
        d = err.diagnostics[0]
        then = f"dot -T{fmt} {fallback} -o {target}"
        hint = f"{d.hint}, then run: {then}" if d.hint else f"try: {then}"
        raise ArchError(f"cannot render {target.name}: {d.message}; wrote {fallback} instead",
                        Span(str(target), 0, 0), hint) from None
    write_atomic(str(target), data)
