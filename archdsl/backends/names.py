"""One sanitising namespace for generated identifiers (after torch.fx's ``_Namespace``).

A generated name is an ASCII identifier, never a Python keyword or builtin, and unique in its
namespace (``conv``, ``conv_1``, ``conv_2``).  Deterministic: the same requests give the same names.
"""
from __future__ import annotations

import builtins
import keyword
import re

_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | {
    "self", "torch", "nn", "F", "OrderedDict", "super"}


def sanitize(candidate: str) -> str:
    name = re.sub(r"[^0-9a-zA-Z_]", "_", candidate) or "v"
    if name[0].isdigit():
        name = "m" + name
    if name in _RESERVED:
        name += "_"
    return name


def is_plain_attr(name: str) -> bool:
    """Whether ``self.NAME`` spells exactly this module name (ASCII, not a keyword)."""
    return name.isascii() and name.isidentifier() and not keyword.iskeyword(name)


class Namespace:
    def __init__(self, reserved=()):
        self.used: set[str] = set(reserved)

    def create(self, candidate: str) -> str:
        base = sanitize(candidate)
        name, i = base, 1
        while name in self.used or name in _RESERVED:
            name = f"{base}_{i}"
            i += 1
        self.used.add(name)
        return name


def camel(name: str) -> str:
    parts = re.split(r"[^0-9a-zA-Z]+", name)
    out = "".join(p[:1].upper() + p[1:] for p in parts if p) or "Module"
    return ("M" + out) if out[0].isdigit() else out
