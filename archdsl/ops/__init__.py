"""The op registry: one :class:`OpSpec` per layer kind.

An entry holds everything archdsl knows about an op — its attribute schema and defaults, shape
rule, weights (hence parameter count), MAC count, receptive-field contribution and PyTorch
emitter.  Backends that live elsewhere (ONNX, pictures) attach their per-op pieces to the same
entry with :func:`backend`, so adding an op is one entry in one family module plus one test case.

Shapes never include the batch dimension: an image is ``(C, H, W)``, a feature vector ``(F,)``.
A spatial size that is not known until run time (``input x: [3, H, W]``) is a string.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

Dim = int | str
Shape = tuple[Dim, ...]


class OpError(Exception):
    """Raised by a shape rule; elaboration turns it into a diagnostic at the op's span."""

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message, self.hint = message, hint


REQUIRED = object()


@dataclass(frozen=True)
class Attr:
    """One attribute of an op: name, kind (how a value is checked and normalised), default."""

    name: str
    kind: str = "int"  # int | float | bool | str | pair | pad | ints | axis
    default: Any = REQUIRED  # a value, REQUIRED, or a callable(attrs) for defaults that follow others
    choices: tuple = ()
    doc: str = ""
    minimum: int = 0  # for kind "int": groups, channels and sizes start at 1
    # (low, high): the values that make sense.  One outside is legal but gets a warning that says
    # what it was taken as: bn(16), PyTorch's BatchNorm2d(16), sets eps.
    usual: tuple[float, float] | None = None


@dataclass(frozen=True)
class Weight:
    """A tensor an op owns, named as in the PyTorch ``state_dict`` (``weight``, ``running_mean``)."""

    name: str
    shape: tuple[int, ...]
    trainable: bool = True
    role: str = "weight"  # weight | bias | bn_weight | bn_bias | mean | var | count (for initialisers)


@dataclass
class OpSpec:
    name: str
    attrs: tuple[Attr, ...]
    doc: str
    shape: Callable[[dict, list[Shape]], list[Shape]]
    weights: Callable[[dict, list[Shape]], list[Weight]] = lambda a, ins: []
    macs: Callable[[dict, list[Shape], list[Shape]], int] = lambda a, ins, outs: 0
    # receptive field: (kernel, stride), "global", "resample" (the jump scales with the spatial
    # size: a resize to a size), or None: pointwise (1, 1)
    rf: Callable[[dict], tuple[float, float] | str] | None = None
    torch_module: Callable[[dict, list[Shape]], str] | None = None  # "nn.Conv2d(...)"
    torch_fn: Callable[[dict, list[str], list[Shape]], str] | None = None  # "F.relu(x)"
    inputs: str = "one"  # one | many (merges)
    family: str = ""
    example: str = ""
    rule: str = ""  # the shape rule in words, for `archdsl ops`
    backends: dict[str, Any] = field(default_factory=dict)

    @property
    def has_weights(self) -> bool:
        return self.name in _WEIGHTED

    def attr(self, name: str) -> Attr | None:
        return next((a for a in self.attrs if a.name == name), None)


REGISTRY: dict[str, OpSpec] = {}
_WEIGHTED: set[str] = set()


def register(spec: OpSpec, weighted: bool = False) -> OpSpec:
    assert spec.name not in REGISTRY, spec.name
    REGISTRY[spec.name] = spec
    if weighted:
        _WEIGHTED.add(spec.name)
    return spec


def backend(kind: str, *names: str):
    """Decorator: attach a backend's emitter for ops ``names`` (e.g. ``@backend("onnx", "conv")``)."""

    def deco(fn):
        for n in names:
            REGISTRY[n].backends[kind] = fn
        return fn

    return deco


def get(name: str) -> OpSpec | None:
    return REGISTRY.get(name)


# Functional forms of parameter-free modules, used when such an op is unlabelled outside a seq.
FUNCTIONAL = {"nn.MaxPool2d": "F.max_pool2d", "nn.AvgPool2d": "F.avg_pool2d",
              "nn.AdaptiveAvgPool2d": "F.adaptive_avg_pool2d", "nn.AdaptiveMaxPool2d": "F.adaptive_max_pool2d",
              "nn.LocalResponseNorm": "F.local_response_norm"}


def torch_is_module(op: str, attrs: dict, in_shapes: list, labeled: bool, in_seq: bool) -> bool:
    """Whether a node is a submodule of the compiled PyTorch model (it has a ``named_modules()``
    path and a row of its own in the summary) or a functional call (``F.relu(x)``): weighted,
    labelled and ``seq`` members are modules; other steps are calls where torch has a function."""
    spec = REGISTRY[op]
    if spec.torch_module is None:
        return False
    if spec.has_weights or in_seq or labeled:
        return True
    return spec.torch_fn is None and spec.torch_module(attrs, in_shapes).split("(", 1)[0] not in FUNCTIONAL


# ---------------------------------------------------------------------------------------------
# PyTorch's spellings: people write the class they know (BatchNorm2d, conv2d, Linear).  Each op's
# doc names its PyTorch class ("... (nn.BatchNorm2d)"); the words below are the few that no doc
# names.  Names match without case, underscores or a 1d/2d/3d suffix: batch_norm is BatchNorm2d.
_MORE_SPELLINGS = {"nn.Sequential": "seq", "torch.cat": "concat", "Dense": "linear", "swish": "silu"}


def _key(name: str) -> str:
    return re.sub(r"[123]d$", "", name.lower().replace("_", ""))


def torch_spelling(name: str) -> tuple[str, str] | None:
    """``(archdsl op, PyTorch spelling)`` for a name written the PyTorch way, e.g.
    ``batchnorm`` -> ``("bn", "nn.BatchNorm2d")``; None if it is not one."""
    table = {_key(n.split(".")[-1]): (op, n) for n, op in _MORE_SPELLINGS.items()}
    for spec in REGISTRY.values():
        for ns, cls in re.findall(r"\b(nn|torch|F)\.(\w+)", spec.doc):
            table.setdefault(_key(cls), (spec.name, f"{ns}.{cls}"))
    for spec in REGISTRY.values():  # GlobalAvgPool, LayerNorm: archdsl's own name, spelt otherwise
        table.setdefault(_key(spec.name), (spec.name, spec.name))
    found = table.get(_key(name))
    return found if found is not None and found[0] != name else None


def torch_hint(name: str) -> str | None:
    """A hint for a name written the PyTorch way: the archdsl op and how it is called."""
    found = torch_spelling(name)
    if found is None:
        return None
    op, torch = found
    if torch == op:
        return f"did you mean '{op}'?"
    text = f"archdsl's name for {torch} is '{op}'"
    spec = REGISTRY.get(op)
    if spec is None:  # seq, a container
        return text + f": {op} {{ ... }}"
    if spec.inputs == "many":
        return text + f": {op} {{ ... | ... }} or {op}(a, b)"
    if spec.attrs:
        text += f", called as {op}({', '.join(a.name for a in spec.attrs)})"
    if spec.has_weights:  # nn.Conv2d(3, 16, 3) names its input size; archdsl reads it from the flow
        text += "; it reads its input size from the tensor flowing in"
    return text


# ---------------------------------------------------------------------------------------------
# shared arithmetic


def pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def conv_dim(size: Dim, k: int, s: int, p: int, d: int = 1, ceil: bool = False, what: str = "conv",
             axis: str = "height") -> Dim:
    """Output length of a sliding window: ``floor((H + 2P - D(K-1) - 1) / S) + 1``."""
    eff = d * (k - 1) + 1
    if isinstance(size, str):
        if s == 1 and 2 * p == eff - 1:
            return size
        if s > 1 and (2 * p == eff - 1 or 2 * p - eff + s == 0):
            return f"{size}/{s}"
        return f"({size}+{2 * p - eff})/{s}+1" if s != 1 else f"{size}{2 * p - eff + 1:+d}"
    span = size + 2 * p - eff
    if ceil:  # PyTorch lets the last window overhang the input by up to stride - 1
        out = -(-span // s) + 1
        if (out - 1) * s >= size + p:  # ... but it must start inside the input or left padding
            out -= 1
        if out >= 1:
            return out
    if span < 0:
        raise OpError(f"{what} window {eff} is larger than the padded {axis} {size + 2 * p}",
                      "use a smaller kernel, more padding, or a larger input")
    out = span // s + 1
    # Warn only when real (non-padding) pixels lie beyond the last window and windows tile
    # without gaps: a 1x1 stride-2 conv skips every other pixel by design.
    dropped = (p + size) - ((out - 1) * s + eff)
    if span % s and dropped > 0 and eff >= s:
        warn(f"{what} does not tile the {axis} evenly: ({size} + 2*{p} - {eff}) / {s} + 1 = "
             f"{span / s + 1:.2f}; the last {dropped} pixel{'s' if dropped > 1 else ''} "
             f"{'are' if dropped > 1 else 'is'} dropped",
             "change the padding or stride, or set ceil_mode=true on a pool")
    return out


_WARNINGS: list[tuple[str, str | None]] = []


def warn(message: str, hint: str | None = None) -> None:
    """Report a non-fatal finding from a shape rule (collected by the elaborator)."""
    _WARNINGS.append((message, hint))


def drain_warnings() -> list[tuple[str, str | None]]:
    out = list(_WARNINGS)
    _WARNINGS.clear()
    return out


def numel(shape: Shape) -> int | None:
    n = 1
    for d in shape:
        if not isinstance(d, int):
            return None
        n *= d
    return n


def fmt_shape(shape: Shape) -> str:
    return "[" + ", ".join(str(d) for d in shape) + "]"


def need_rank(ins: list[Shape], rank: int, op: str, hint: str | None = None) -> Shape:
    s = ins[0]
    if len(s) != rank:
        what = {3: "an image [C, H, W]", 1: "a feature vector [F]"}.get(rank, f"a {rank}-d tensor")
        raise OpError(f"{op} expects {what}, got {fmt_shape(s)}", hint)
    return s


# Import the families so that every entry is registered when archdsl.ops is imported.
from . import act, conv, merge, norm, pool  # noqa: E402,F401
from . import shape as _shape_ops  # noqa: E402,F401
