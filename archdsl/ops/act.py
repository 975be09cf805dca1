"""Element-wise activations (one table row each) and softmax."""
from __future__ import annotations

import math

from .spec import Attr, Example, OpError, OpSpec, TorchSpec, Trait, Weight, register, same_shape

# An activation's output may take its input's memory: it adds no activation memory (the course
# notes' VGG table), and torchvision's ReLU(inplace=True) runs in place where that is safe.
_ACT = frozenset({Trait.ELEMENTWISE, Trait.ALIASES_INPUT})
_IN_PLACE = _ACT | {Trait.IN_PLACE_OK}


def _differs(key, default, torch_name=None):
    """args: the attribute ``key`` as PyTorch's ``torch_name`` when it is not the default."""
    return lambda a, ins: {} if a[key] == default else {torch_name or key: a[key]}


def _gelu_onnx(e, n, xs):
    approx = n.attrs["approximate"]
    if e.opset >= 20:
        return [e.op("Gelu", xs, approximate=approx)]
    x = xs[0]
    if approx == "tanh":  # 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
        cube = e.op("Mul", [e.op("Mul", [x, x]), x])
        inner = e.op("Add", [x, e.op("Mul", [cube, e.const(0.044715)])])
        t = e.op("Tanh", [e.op("Mul", [inner, e.const(math.sqrt(2 / math.pi))])])
    else:  # exact: 0.5 x (1 + erf(x / sqrt(2)))
        t = e.op("Erf", [e.op("Mul", [x, e.const(1 / math.sqrt(2))])])
    half = e.op("Mul", [x, e.const(0.5)])
    return [e.op("Mul", [half, e.op("Add", [t, e.const(1.0)])])]


def _hardswish_onnx(e, n, xs):
    if e.opset >= 14:
        return [e.op("HardSwish", xs)]
    return [e.op("Mul", [xs[0], e.op("HardSigmoid", xs, alpha=1 / 6, beta=0.5)])]


def _mish_onnx(e, n, xs):
    if e.opset >= 18:
        return [e.op("Mish", xs)]
    return [e.op("Mul", [xs[0], e.op("Tanh", [e.op("Softplus", xs)])])]


def _softplus_onnx(e, n, xs):
    """ONNX's Softplus has no beta and no threshold: both spelt out."""
    beta, x = n.attrs["beta"], xs[0]
    bx = e.op("Mul", [x, e.const(beta)]) if beta != 1 else x
    y = e.op("Softplus", [bx])
    if beta != 1:
        y = e.op("Div", [y, e.const(beta)])
    return [e.op("Where", [e.op("Greater", [bx, e.const(n.attrs["threshold"])]), x, y])]


_NO_ARGS = lambda a, ins: {}  # noqa: E731
_INPLACE = {"inplace": False}

# name, nn class, functional, attrs, args, PyTorch's defaults, ONNX lowering, traits, examples
_ACTS = [
    ("relu", "ReLU", "F.relu", (), _NO_ARGS, _INPLACE, lambda e, n, xs: [e.op("Relu", xs)], _IN_PLACE, ()),
    ("relu6", "ReLU6", "F.relu6", (), _NO_ARGS, _INPLACE,
     lambda e, n, xs: [e.op("Clip", [xs[0], e.const(0.0), e.const(6.0)])], _IN_PLACE, ()),
    ("leaky_relu", "LeakyReLU", "F.leaky_relu", (Attr("slope", "float", 0.01, usual=(0, 1)),),
     _differs("slope", 0.01, "negative_slope"), {"negative_slope": 0.01, "inplace": False},
     lambda e, n, xs: [e.op("LeakyRelu", xs, alpha=n.attrs["slope"])], _IN_PLACE, (Example("leaky_relu(0.2)"),)),
    ("elu", "ELU", "F.elu", (Attr("alpha", "float", 1.0),), _differs("alpha", 1.0), {"alpha": 1.0, "inplace": False},
     lambda e, n, xs: [e.op("Elu", xs, alpha=n.attrs["alpha"])], _IN_PLACE, (Example("elu(0.7)"),)),
    ("gelu", "GELU", "F.gelu", (Attr("approximate", "str", "none", ("none", "tanh")),),
     _differs("approximate", "none"), {"approximate": "none"}, _gelu_onnx, _ACT,
     (Example("gelu"), Example('gelu(approximate="tanh")', id="gelu_tanh"))),
    ("silu", "SiLU", "F.silu", (), _NO_ARGS, _INPLACE,
     lambda e, n, xs: [e.op("Mul", [xs[0], e.op("Sigmoid", xs)])], _IN_PLACE, ()),
    ("sigmoid", "Sigmoid", "torch.sigmoid", (), _NO_ARGS, {}, lambda e, n, xs: [e.op("Sigmoid", xs)], _ACT, ()),
    ("tanh", "Tanh", "torch.tanh", (), _NO_ARGS, {}, lambda e, n, xs: [e.op("Tanh", xs)], _ACT, ()),
    ("hardswish", "Hardswish", "F.hardswish", (), _NO_ARGS, _INPLACE, _hardswish_onnx, _IN_PLACE, ()),
    # x * tanh(softplus(x)); ONNX has Mish from opset 18
    ("mish", "Mish", "F.mish", (), _NO_ARGS, _INPLACE, _mish_onnx, _IN_PLACE,
     (Example("mish"), Example("mish", (6,), id="mish_vector"))),
    # log(1 + exp(beta x)) / beta, and x itself where beta x > threshold (as PyTorch); no inplace
    ("softplus", "Softplus", "F.softplus", (Attr("beta", "float", 1.0), Attr("threshold", "float", 20.0)),
     lambda a, ins: {k: a[k] for k, d in (("beta", 1.0), ("threshold", 20.0)) if a[k] != d},
     {"beta": 1.0, "threshold": 20.0}, _softplus_onnx, _ACT,
     (Example("softplus"), Example("softplus(beta=2, threshold=1)", id="softplus_beta"))),
    # ONNX's Selu defaults are PyTorch's alpha and scale (in float32)
    ("selu", "SELU", "F.selu", (), _NO_ARGS, _INPLACE, lambda e, n, xs: [e.op("Selu", xs)], _IN_PLACE, ()),
    # PyTorch's hardsigmoid is relu6(x + 3) / 6, not ONNX's default slope
    ("hardsigmoid", "Hardsigmoid", "F.hardsigmoid", (), _NO_ARGS, _INPLACE,
     lambda e, n, xs: [e.op("HardSigmoid", xs, alpha=1 / 6, beta=0.5)], _IN_PLACE, ()),
]

for _name, _cls, _fn, _attrs, _args, _defaults, _onnx, _traits, _examples in _ACTS:
    register(OpSpec(
        _name, _attrs, f"Element-wise {_name} (nn.{_cls}).", same_shape, family="act", example=_name,
        examples=_examples,
        torch=TorchSpec(f"nn.{_cls}", _args, defaults=dict(_defaults), functional=_fn),
        onnx=_onnx, traits=_traits, rule="shape unchanged"))


def _softmax_shape(a, ins):
    if not -len(ins[0]) <= a["axis"] < len(ins[0]):
        raise OpError(f"softmax axis {a['axis']} out of range for a {len(ins[0])}-d tensor")
    return [ins[0]], []


def _softmax_dim(a) -> int:
    """PyTorch's dim: the .arch axis counts without the batch."""
    return a["axis"] + 1 if a["axis"] >= 0 else a["axis"]


register(OpSpec(
    "softmax", (Attr("axis", "axis", 0, doc="axis without the batch; 0 is the channel axis"),),
    "Softmax along an axis (channels by default).", _softmax_shape, family="act", example="softmax",
    examples=(Example("softmax"), Example("softmax(axis=2)", id="softmax_last")),
    torch=TorchSpec("nn.Softmax", lambda a, ins: {"dim": _softmax_dim(a)}, functional="torch.softmax"),
    onnx=lambda e, n, xs: [e.op("Softmax", xs, axis=_softmax_dim(n.attrs))],
    traits={Trait.ALIASES_INPUT}, rule="shape unchanged"))


# nn.PReLU's default is one slope shared by every channel; per_channel=true is
# nn.PReLU(num_parameters=C).  Either way the slope starts at PyTorch's 0.25.
def _prelu_shape(a, ins):
    if a["per_channel"] and not (ins[0] and isinstance(ins[0][0], int)):
        raise OpError(f"prelu(per_channel=true) needs a known channel count, got {list(ins[0])}")
    return [ins[0]], []


def _prelu_onnx(e, n, xs):
    slope = e.weight(n, "weight")
    extra = list(range(1, len(e.in_shape(n))))
    if n.attrs["per_channel"] and extra:  # [C] -> [C, 1, 1]: the channel axis, not the last one
        slope = e.op("Unsqueeze", [slope, e.ints(extra)])
    return [e.op("PRelu", [xs[0], slope])]


register(OpSpec(
    "prelu", (Attr("per_channel", "bool", False,
                   doc="one learned slope per channel (nn.PReLU(num_parameters=C)); default: one shared slope"),),
    "Parametric ReLU with a learned negative slope (nn.PReLU), 0.25 to begin with.", _prelu_shape, family="act",
    weights=lambda a, ins: [Weight("weight", (ins[0][0] if a["per_channel"] else 1,), fill=0.25)],
    traits={Trait.ELEMENTWISE, Trait.FRESH_OUTPUT},
    torch=TorchSpec("nn.PReLU", lambda a, ins: {"num_parameters": ins[0][0]} if a["per_channel"] else {},
                    defaults={"num_parameters": 1, "init": 0.25}),
    onnx=_prelu_onnx, example="prelu(per_channel=true)",
    examples=(Example("prelu"), Example("prelu(per_channel=true)", id="prelu_per_channel"),
              Example("prelu(per_channel=true)", (6,), id="prelu_vector"),
              Example("conv(4, 3) -> prelu(true) -> relu", id="prelu_then_relu")),
    rule="shape unchanged; weight [1] or [C]"))
