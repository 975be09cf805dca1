"""Arithmetic the op families share: window sizes, pairs, element counts, shape text."""
from __future__ import annotations

from .spec import Dim, OpError, OpWarning, Shape


def pair(v) -> tuple:
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def one(v):
    """A pair whose halves agree as one number (PyTorch's ``kernel_size=3``), else the pair."""
    return v[0] if isinstance(v, tuple) and len(set(v)) == 1 else v


def torch_kwargs(a: dict, names_defaults) -> dict:
    """Keyword arguments that differ from PyTorch's defaults, in PyTorch's spelling:
    ``names_defaults`` is ``[(attribute, PyTorch name, PyTorch default), ...]``."""
    out = {}
    for key, torch_name, default in names_defaults:
        v = one(a[key])
        if v != default:
            out[torch_name] = v
    return out


def conv_dim(size: Dim, k: int, s: int, p: int, d: int = 1, ceil: bool = False, what: str = "conv",
             axis: str = "height", notes: list[OpWarning] | None = None) -> Dim:
    """Output length of a sliding window: ``floor((H + 2P - D(K-1) - 1) / S) + 1``; a window that
    drops real pixels at the end adds a warning to ``notes``."""
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
    if span % s and dropped > 0 and eff >= s and notes is not None:
        notes.append(OpWarning(
            f"{what} does not tile the {axis} evenly: ({size} + 2*{p} - {eff}) / {s} + 1 = "
            f"{span / s + 1:.2f}; the last {dropped} pixel{'s' if dropped > 1 else ''} "
            f"{'are' if dropped > 1 else 'is'} dropped",
            "change the padding or stride, or set ceil_mode=true on a pool"))
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


def known(*dims) -> bool:
    return all(isinstance(d, int) for d in dims)
