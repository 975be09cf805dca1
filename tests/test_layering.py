"""The pipeline's layering: imports point one way (ops -> language -> IR -> front end -> passes ->
backends -> API -> tools), with no cycle among archdsl's modules, lazy imports inside functions
included."""
from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "archdsl"


def modules() -> dict[str, Path]:
    out = {}
    for p in PACKAGE.rglob("*.py"):
        parts = list(p.relative_to(PACKAGE.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = p
    return out


def import_graph() -> nx.DiGraph:
    """Every import statement anywhere in a module (top level or inside a function; not those under
    ``if TYPE_CHECKING:``, which never run), as an edge from the importing module to the archdsl
    module it names."""
    mods = modules()
    g = nx.DiGraph()
    for name, path in mods.items():
        g.add_node(name)
        package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
        tree = ast.parse(path.read_text(encoding="utf-8"))
        typing_only = {id(n) for block in ast.walk(tree) if _type_checking(block) for stmt in block.body
                       for n in ast.walk(stmt)}
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            targets = []
            if isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - node.level + 1]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                for alias in node.names:  # `from . import ops` imports the module archdsl.ops
                    sub = f"{origin}.{alias.name}"
                    targets.append(sub if sub in mods else origin)
            elif isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            for t in targets:
                if t in mods and t != name:
                    g.add_edge(name, t, line=node.lineno)
    return g


def _type_checking(node) -> bool:
    """``if TYPE_CHECKING:``: imports a type checker reads, which never run."""
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def test_no_import_cycles():
    g = import_graph()
    cycles = [sorted(c) for c in nx.strongly_connected_components(g) if len(c) > 1]
    assert not cycles, "import cycles among archdsl's modules: " + "; ".join(" <-> ".join(c) for c in cycles)


# The op catalogue comes before the language: expressions see shapes, and syntax errors name ops.
LAYERS = ["errors", "version", "files", "ops", "lang", "ir", "front", "passes", "weights", "backends", "api",
          "tools"]


def _layer(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_imports_point_down_the_pipeline():
    """A module may import its own layer or one before it: the front end never imports a backend,
    nothing imports the CLI."""
    upward = []
    for a, b, data in import_graph().edges(data=True):
        la, lb = _layer(a), _layer(b)
        if la is not None and lb is not None and lb > la:
            upward.append(f"{a} imports {b} (line {data['line']})")
    assert not upward, "\n".join(upward)
