"""Element-wise activations: one table row each."""
from __future__ import annotations

from . import Attr, OpError, OpSpec, register


def _same(a, ins):
    return [ins[0]]


def _softmax_shape(a, ins):
    if not -len(ins[0]) <= a["axis"] < len(ins[0]):
        raise OpError(f"softmax axis {a['axis']} out of range for a {len(ins[0])}-d tensor")
    return [ins[0]]


def _arg(a, key, default, torch_name=None):
    return "" if a[key] == default else f"{torch_name or key}={a[key]!r}"


# name, module class, functional, attrs, how attrs are spelt for torch
_ACTS = [
    ("relu", "ReLU", "F.relu({x})", (), lambda a: ""),
    ("relu6", "ReLU6", "F.relu6({x})", (), lambda a: ""),
    ("leaky_relu", "LeakyReLU", "F.leaky_relu({x}{args})", (Attr("slope", "float", 0.01, usual=(0, 1)),),
     lambda a: _arg(a, "slope", 0.01, "negative_slope")),
    ("elu", "ELU", "F.elu({x}{args})", (Attr("alpha", "float", 1.0),), lambda a: _arg(a, "alpha", 1.0)),
    ("gelu", "GELU", "F.gelu({x}{args})", (Attr("approximate", "str", "none", ("none", "tanh")),),
     lambda a: _arg(a, "approximate", "none")),
    ("silu", "SiLU", "F.silu({x})", (), lambda a: ""),
    ("sigmoid", "Sigmoid", "torch.sigmoid({x})", (), lambda a: ""),
    ("tanh", "Tanh", "torch.tanh({x})", (), lambda a: ""),
    ("hardswish", "Hardswish", "F.hardswish({x})", (), lambda a: ""),
    ("hardsigmoid", "Hardsigmoid", "F.hardsigmoid({x})", (), lambda a: ""),
]

for _name, _cls, _fn, _attrs, _args in _ACTS:
    register(OpSpec(
        _name, _attrs, f"Element-wise {_name} (nn.{_cls}).", _same, family="act", example=_name,
        torch_module=lambda a, ins, _cls=_cls, _args=_args: f"nn.{_cls}({_args(a)})",
        torch_fn=lambda a, x, ins, _fn=_fn, _args=_args: _fn.format(
            x=x[0], args=(", " + _args(a)) if _args(a) else ""),
        rule="shape unchanged"))


def _softmax_dim(a, ins):
    return a["axis"] + 1 if a["axis"] >= 0 else a["axis"]


register(OpSpec(
    "softmax", (Attr("axis", "axis", 0, doc="axis without the batch; 0 is the channel axis"),),
    "Softmax along an axis (channels by default).", _softmax_shape, family="act", example="softmax",
    torch_module=lambda a, ins: f"nn.Softmax(dim={_softmax_dim(a, ins)})",
    torch_fn=lambda a, x, ins: f"torch.softmax({x[0]}, dim={_softmax_dim(a, ins)})",
    rule="shape unchanged"))
