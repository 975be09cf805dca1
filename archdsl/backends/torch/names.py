"""Names and text in generated Python: the one way user text gets in, and one namespace per scope.

``escape`` is the only function through which text a user controls (labels, block and network
names, string values, file names, parameter reprs) enters generated source: string literals,
docstrings and comments all go through it.  A generated name is an ASCII identifier, never a
Python keyword or builtin, and unique in its namespace (after torch.fx's ``_Namespace``: ``conv``,
``conv_1``, ``conv_2``).  Deterministic: the same requests give the same names.
"""
from __future__ import annotations

import builtins
import keyword
import math
import re

# The module-level names a generated file imports or refers to, whether or not this file uses them.
GENERATED_GLOBALS = frozenset({"torch", "nn", "F", "math", "OrderedDict", "Tensor"})
_RESERVED = set(keyword.kwlist) | set(keyword.softkwlist) | set(dir(builtins)) | GENERATED_GLOBALS | {"self"}
# What may stay as written inside a string literal: printable ASCII except the backslash and quotes.
_UNSAFE = re.compile(r"[^ !#-&(-\[\]-~]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def escape(text: str, quote: str = "'", visible: bool = False) -> str:
    """``text`` as the inside of a Python string literal delimited by ``quote`` (``'``, ``"`` or
    ``\"\"\"``; ``""`` for a comment), evaluating back to exactly ``text``.

    The result is one line of printable characters that cannot end the literal: the backslash and
    the delimiter's quote are escaped, and so is every character that is not printable (controls,
    NUL, lone surrogates, format characters, and the line breaks that Python's tokenizer or
    ``str.splitlines`` honour: U+000B, U+000C, U+001C-1E, U+0085, U+2028, U+2029).  Printable
    non-ASCII text stays readable.  Because the result never contains a line break, text that is
    wrapped is wrapped first and escaped line by line; the wrapper never sees an escape to split.

    ``visible`` (for docstrings) keeps those escapes in the value: the docstring shows ``\\x00``
    rather than holding a NUL, because ``type()`` refuses a class docstring with a lone surrogate
    and docstring tools split lines at U+2028.
    """
    q = quote[:1]

    def sub(m: re.Match) -> str:
        ch = m.group()
        if ch == "\\" or ch == q:
            return "\\" + ch
        if ch in "'\"" or (ch.isprintable() and not ch.isascii()):
            return ch
        code = ord(ch)
        out = _NAMED.get(ch) or (f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000
                                 else f"\\U{code:08x}")
        return "\\" + out if visible else out

    return _UNSAFE.sub(sub, text)


def literal(value) -> str:
    """The Python literal of a value from the IR (numbers, booleans, None, strings, tuples, lists);
    strings go through :func:`escape`."""
    if isinstance(value, str):
        return "'" + escape(value) + "'"
    if isinstance(value, (tuple, list)):
        inner = ", ".join(literal(v) for v in value)
        if isinstance(value, list):
            return f"[{inner}]"
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    if value is None or isinstance(value, (bool, int)) or (isinstance(value, float) and math.isfinite(value)):
        return repr(value)
    raise TypeError(f"no Python literal for {value!r}")  # inf, nan, objects: the front end refuses them


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
