"""archdsl: a language and compiler for neural-network architectures.

>>> import archdsl
>>> arch = archdsl.load("examples/lenet5.arch")
>>> net = arch.network()            # elaborate and shape-check the (first) network
>>> net.summary().totals["params"]
61706
>>> model = arch.to_torch()          # an nn.Module built from the generated source
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from .errors import ArchError, Diagnostic, Diagnostics, Span
from .ir import Network
from .lang.parser import parse

__version__ = "0.1.0"
__all__ = ["ArchError", "ArchFile", "Diagnostic", "Network", "Span", "__version__", "load", "loads", "parse"]


class ArchFile:
    """A loaded ``.arch`` file (with its imports): its networks, elaborated on demand."""

    def __init__(self, module, diagnostics: Diagnostics, strict: bool = False, max_nodes: int | None = None):
        self.module = module
        self.diagnostics = diagnostics
        self.strict = strict
        self.max_nodes = max_nodes

    @property
    def file(self) -> str:
        return self.module.file

    @property
    def networks(self) -> list[str]:
        """Network names in definition order."""
        return list(self.module.order)

    def network(self, name: str | None = None, **params: Any) -> Network:
        """Elaborate one network (the first by default) with parameters overridden by ``params``.

        Raises :class:`ArchError` carrying every error found; warnings stay on
        ``network.diagnostics``.
        """
        if not self.module.order:
            raise ArchError("no network is defined", Span(self.file, 0, 0),
                            "define one: network name() { input x: [3, 32, 32] ... }")
        if name is None:
            name = self.module.order[0]
        if name not in self.module.networks:
            from .errors import did_you_mean

            raise ArchError(f"no network '{name}' in {self.file}", Span(self.file, 0, 0),
                            did_you_mean(name, self.module.networks) or f"networks: {', '.join(self.networks)}")
        diags = Diagnostics(sources=self.diagnostics.sources)
        net = self.elaborate(name, diags, **params)
        if diags.errors:
            raise ArchError(diags.errors)
        return net

    def elaborate(self, name: str, diags: Diagnostics, **params: Any) -> Network | None:
        """Elaborate network ``name``, sending every finding to ``diags`` instead of raising."""
        from .front.elaborate import DEFAULT_MAX_NODES, Elaborator

        el = Elaborator(self.module, diags, self.max_nodes or DEFAULT_MAX_NODES, self.strict)
        try:
            return el.network(name, params)
        except ArchError as err:
            diags.extend(err)
            return None

    # conveniences on the default network
    def summary(self, network: str | None = None, **params):
        return self.network(network, **params).summary()

    def to_torch(self, network: str | None = None, **params):
        return self.network(network, **params).to_torch()

    def torch_source(self, network: str | None = None, **params) -> str:
        return self.network(network, **params).torch_source()

    def to_onnx(self, path: str | None = None, network: str | None = None, **params):
        return self.network(network, **params).to_onnx(path)

    def _repr_html_(self) -> str:
        """Jupyter: the first network's summary table, or the diagnostics that stop it."""
        from html import escape

        try:
            net = self.network()
        except ArchError as err:
            text = "\n".join(d.render(self.diagnostics.sources) for d in err.diagnostics)
            return f"<pre>{escape(text)}</pre>"
        names = ", ".join(f"<code>{escape(n)}</code>" for n in self.networks)
        return f"<p>{escape(self.file)}: {names}</p>" + net._repr_html_()

    def _repr_svg_(self) -> str | None:
        """Jupyter: the first network's picture (None, so text is shown, when it cannot be drawn)."""
        try:
            return self.network()._repr_svg_()
        except ArchError:
            return None


def _finish(module, diags: Diagnostics, strict: bool, max_nodes: int | None) -> ArchFile:
    if diags.errors:
        raise ArchError(diags.errors)
    return ArchFile(module, diags, strict, max_nodes)


def load(path: str | Path, *, strict: bool = False, max_nodes: int | None = None,
         include_root: str | Path | None = None) -> ArchFile:
    """Parse an ``.arch`` file and its imports.  Raises :class:`ArchError` on syntax errors."""
    from .front.elaborate import load_module

    diags = Diagnostics()
    try:
        module = load_module(path, diags=diags, include_root=include_root)
    except ArchError as err:
        diags.extend(err)
        module = None
    return _finish(module, diags, strict, max_nodes)


def loads(text: str, file: str = "<string>", *, strict: bool = False, max_nodes: int | None = None) -> ArchFile:
    """Like :func:`load`, from source text."""
    from .front.elaborate import load_module

    diags = Diagnostics()
    module = load_module(file, text=text, diags=diags)
    return _finish(module, diags, strict, max_nodes)
