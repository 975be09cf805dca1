"""archdsl: a language and compiler for neural-network architectures.

>>> import archdsl
>>> arch = archdsl.load("examples/lenet5.arch")
>>> net = arch.network()            # elaborate and shape-check the (first) network
>>> net.summary().totals["params"]
61706
>>> model = arch.to_torch()          # an nn.Module built from the generated source
"""
from __future__ import annotations

from .api import ArchFile, Network, load, loads
from .errors import ArchError, Diagnostic, Span
from .lang.parser import parse
from .version import __version__

__all__ = ["ArchError", "ArchFile", "Diagnostic", "Network", "Span", "__version__", "load", "loads", "parse"]
