"""Weight initialisation schemes: ``init conv: kaiming_normal(mode="fan_out", nonlinearity="relu")``
for every op of a kind, ``init bn3: constant(value=0)`` for the modules labelled ``bn3``.

A scheme sets an op's main weight; ``bias=`` (a constant) sets its bias.  Without an ``init``
declaration an op keeps PyTorch's own default initialisation.
"""
from __future__ import annotations

import math

from ..errors import ArchError

# scheme -> the arguments it accepts
SCHEMES: dict[str, tuple[str, ...]] = {
    "kaiming_normal": ("mode", "nonlinearity", "a", "bias"),
    "kaiming_uniform": ("mode", "nonlinearity", "a", "bias"),
    "xavier_normal": ("gain", "bias"),
    "xavier_uniform": ("gain", "bias"),
    "normal": ("mean", "std", "bias"),
    "uniform": ("a", "b", "bias"),
    "trunc_normal": ("mean", "std", "a", "b", "bias"),
    "constant": ("value", "bias"),
    "default": ("bias",),
}


def torch_statements(scheme: str, args: dict, target: str) -> list[str]:
    """PyTorch statements that initialise module ``target`` (e.g. ``m``) with a scheme."""
    kw = {k: v for k, v in args.items() if k != "bias"}
    call = ", ".join(f"{k}={v!r}" for k, v in kw.items())
    call = f", {call}" if call else ""
    if scheme == "default":
        lines = []  # keep PyTorch's own initialisation of the weight
    elif scheme == "constant":
        lines = [f"nn.init.constant_({target}.weight, {kw.get('value', 1)!r})"]
    else:
        lines = [f"nn.init.{scheme}_({target}.weight{call})"]
    if "bias" in args:
        lines.append(f"if {target}.bias is not None:")
        lines.append(f"    nn.init.constant_({target}.bias, {args['bias']!r})")
    return lines


def gain(nonlinearity: str, a) -> float:
    """``torch.nn.init.calculate_gain``: the numpy initialisation of the ONNX backend follows it."""
    if nonlinearity in ("linear", "conv1d", "conv2d", "conv3d", "conv_transpose1d", "conv_transpose2d",
                        "conv_transpose3d", "sigmoid"):
        return 1.0
    table = {"tanh": 5 / 3, "relu": math.sqrt(2.0), "selu": 0.75}
    if nonlinearity in table:
        return table[nonlinearity]
    if nonlinearity == "leaky_relu":
        slope = 0.01 if a is None else a
        return math.sqrt(2.0 / (1 + slope ** 2))
    raise ArchError(f"unknown nonlinearity '{nonlinearity}' in an init declaration",
                    hint="linear, sigmoid, tanh, relu, leaky_relu or selu")
