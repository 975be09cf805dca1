"""Loading a program: a file and its imports into one :class:`Module` of definitions.

Imports are resolved against the importing file and may not leave the include root; cycles, depth
and the total source size are bounded.  Every problem is a diagnostic with the import's span.
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

from .. import ops
from ..errors import ArchError, Diagnostics
from ..files import STDIO, read_source
from ..lang import ast as S, parser as P
from ..lang.lexicon import CONTAINERS
from ..lang.ast import NodeVisitor

MAX_IMPORT_DEPTH = 32


@dataclass
class Module:
    """All definitions visible in a file, its imports included."""

    file: str
    blocks: dict[str, S.BlockDef] = field(default_factory=dict)
    networks: dict[str, S.NetworkDef] = field(default_factory=dict)
    lets: list[S.Let] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)  # network names in definition order


def load_module(path: str | Path | None, text: str | None = None, diags: Diagnostics | None = None,
                include_root: str | Path | None = None) -> Module:
    """Parse a file and its imports.  Errors go to ``diags`` (raised if it is None).

    Imports may not leave ``include_root``, which is the main file's directory unless given (the
    current directory for source text without a file): a downloaded ``.arch`` file cannot make
    archdsl read, and quote in a diagnostic, a file elsewhere on the machine.
    """
    diags = diags if diags is not None else Diagnostics()
    file = str(path) if path is not None else "<string>"
    if text is None:
        text = read_source(file, display="<stdin>" if file == STDIO else None, limit=P.MAX_SOURCE_BYTES)
        if file == STDIO:
            file = "<stdin>"
    if include_root is None:
        include_root = Path(file).parent if path is not None and file not in ("<stdin>", "<string>") else Path.cwd()
    mod = Module(file)
    _load_into(mod, file, text, diags, [], Path(include_root).resolve())
    return mod


def _load_into(mod: Module, file: str, text: str, diags: Diagnostics, stack: list[str],
               root: Path) -> None:
    diags.sources[file] = text
    mod.sources[file] = text
    try:
        prog = P.parse(text, file)
    except ArchError as err:
        diags.extend(err)
        return
    items = _Items(mod, file, diags, stack, root)
    for item in prog.items:
        items.visit(item)


class _Items(NodeVisitor):
    """The top-level items of one file, added to the module."""

    def __init__(self, mod: Module, file: str, diags: Diagnostics, stack: list[str], root: Path):
        self.mod, self.file, self.diags, self.stack, self.root = mod, file, diags, stack, root
        self.here = Path(file).resolve()

    def generic_visit(self, node, *args):  # an item kind the grammar has and the loader lacks
        raise NotImplementedError(f"the loader has no visit_{type(node).__name__}")

    def visit_Import(self, item: S.Import) -> None:
        mod, diags, stack, here = self.mod, self.diags, self.stack, self.here
        target = (here.parent / item.path).resolve()
        display = os.path.normpath(os.path.join(os.path.dirname(self.file), item.path))
        key = str(target)
        if not target.is_relative_to(self.root):
            diags.error(f"import '{item.path}' is outside the include root {self.root}", item.span,
                        "imports stay below the main file's directory; widen it with --include-root DIR")
            return
        if target.suffix != ".arch":
            diags.error(f"import '{item.path}' does not name an .arch file", item.span,
                        "imports read .arch source only")
            return
        if key in stack or key == str(here):
            chain = " -> ".join(Path(s).name for s in [*stack, str(here), key])
            diags.error(f"import cycle: {chain}", item.span, "remove one of the imports")
            return
        if key in (str(Path(f).resolve()) for f in mod.sources):
            return  # already loaded through another import
        if len(stack) >= MAX_IMPORT_DEPTH:
            diags.error(f"imports nested deeper than {MAX_IMPORT_DEPTH} files", item.span)
            return
        try:
            sub = read_source(target, item.span, display, limit=P.MAX_SOURCE_BYTES)
        except ArchError as err:
            diags.extend(err)
            return
        if sum(map(len, mod.sources.values())) + len(sub) > P.MAX_SOURCE_BYTES:
            diags.error(f"with this import the program is longer than {P.MAX_SOURCE_BYTES} characters",
                        item.span, "the limit (syntax.MAX_SOURCE_BYTES) covers a file and its imports")
            return
        _load_into(mod, display, sub, diags, [*stack, str(here)], self.root)

    def visit_Let(self, item: S.Let) -> None:
        self.mod.lets.append(item)

    def visit_BlockDef(self, item: S.BlockDef) -> None:
        _define(self.mod.blocks, item, self.diags, "block", self.mod)

    def visit_NetworkDef(self, item: S.NetworkDef) -> None:
        if _define(self.mod.networks, item, self.diags, "network", self.mod):
            self.mod.order.append(item.name)


def _define(table, item, diags, kind, mod) -> bool:
    other = mod.blocks.get(item.name) or mod.networks.get(item.name)
    if other is not None:
        diags.error(f"{kind} '{item.name}' is already defined at {other.span}", item.span)
        return False
    if item.name in ops.REGISTRY or item.name in CONTAINERS:
        diags.error(f"{kind} '{item.name}' has the name of a built-in op", item.span,
                    "choose another name; built-in ops cannot be redefined")
        return False
    table[item.name] = item
    return True
