"""Normalisation and regularisation layers."""
from __future__ import annotations


from .arith import fmt_shape
from .spec import (Attr, Example, OpError, OpSpec, Style, TorchSpec, Trait, Weight, label_num, register,
                   same_shape)

# eps guards a division (1e-5 in PyTorch, 1e-3 in Keras); a whole number there is a channel count
# written the PyTorch way (BatchNorm2d(64), GroupNorm(32, 64)) that archdsl takes as eps
_EPS = Attr("eps", "float", 1e-5, doc="added to the variance", usual=(0, 0.5))
# a normalisation writes a fresh tensor, and init declarations reach its scale and shift
_NORM = frozenset({Trait.FRESH_OUTPUT, Trait.INITIALISABLE})


def _eps(a) -> dict:
    return {} if a["eps"] == 1e-5 else {"eps": a["eps"]}


def _affine(shape) -> list[Weight]:
    return [Weight("weight", shape, role="bn_weight"), Weight("bias", shape, role="bn_bias")]


def _name_label(op: str, a: dict, ins: list) -> str:
    return op  # eps and momentum do not change the picture


# ------------------------------------------------------------------------------------- bn


def _bn_shape(a, ins):
    if len(ins[0]) not in (1, 2, 3):
        raise OpError(f"bn expects [C], [C, L] or [C, H, W], got {fmt_shape(ins[0])}")
    return [ins[0]], []


def _bn_weights(a, ins):
    c = ins[0][0]
    ws = _affine((c,)) if a["affine"] else []
    ws += [Weight("running_mean", (c,), False, "mean"), Weight("running_var", (c,), False, "var"),
           Weight("num_batches_tracked", (), False, "count")]
    return ws


def _bn_args(a, ins):
    args = {"num_features": ins[0][0], **_eps(a)}
    if a["momentum"] != 0.1:
        args["momentum"] = a["momentum"]
    if not a["affine"]:
        args["affine"] = False
    return args


def _bn_onnx(e, n, xs):
    import numpy as np  # only when lowering to ONNX: check and summary do not load numpy
    if e.folded(n):
        return [xs[0]]
    c = e.in_shape(n)[0]
    scale = e.weight(n, "weight") or e.const(np.ones(c))
    bias = e.weight(n, "bias") or e.const(np.zeros(c))
    return [e.op("BatchNormalization", [xs[0], scale, bias, e.weight(n, "running_mean"),
                                         e.weight(n, "running_var")], epsilon=n.attrs["eps"])]


register(OpSpec(
    "bn", (_EPS, Attr("momentum", "float", 0.1, usual=(0, 1),
                     doc="PyTorch's convention, 1 - the decay of TensorFlow and Keras: a decay of 0.99 is momentum 0.01"),
           Attr("affine", "bool", True)),
    "Batch normalisation over the channel axis (nn.BatchNorm2d, or 1d on vectors).", _bn_shape, family="norm",
    weights=_bn_weights, traits=_NORM | {Trait.FOLDABLE},
    torch=TorchSpec(lambda a, ins: f"nn.BatchNorm{2 if len(ins[0]) == 3 else 1}d", _bn_args, positional=1,
                    defaults={"eps": 1e-5, "momentum": 0.1, "affine": True},
                    init_class="(nn.BatchNorm2d, nn.BatchNorm1d)"),
    onnx=_bn_onnx, label=_name_label, example="bn(eps=0.001)",
    examples=(Example("bn"), Example("bn(eps=0.001, affine=false)", id="bn_eps_noaffine"),
              Example("bn", (6,), id="bn_vector"), Example("bn", (6, 5), id="bn_sequence")),
    rule="shape unchanged"))


# ------------------------------------------------------------------------------------- lrn


def _lrn_onnx(e, n, xs):
    a = n.attrs
    size = a["size"]
    if size % 2:
        return [e.op("LRN", xs, size=size, alpha=a["alpha"], beta=a["beta"], bias=a["k"])]
    # ONNX centres an even window one channel later than PyTorch: spell out PyTorch's formula,
    # an average of squares over a zero-padded channel window (F.local_response_norm)
    rank = len(e.in_shape(n)) + 1
    sq = e.op("Unsqueeze", [e.op("Mul", [xs[0], xs[0]]), e.ints([1])])
    pads = [0] * (2 * (rank + 1))
    pads[2], pads[rank + 1 + 2] = size // 2, (size - 1) // 2
    sq = e.op("Pad", [sq, e.ints(pads)])
    avg = e.op("AveragePool", [sq], kernel_shape=[size] + [1] * (rank - 2))
    avg = e.op("Squeeze", [avg, e.ints([1])])
    div = e.op("Add", [e.op("Mul", [avg, e.const(a["alpha"])]), e.const(a["k"])])
    return [e.op("Div", [xs[0], e.op("Pow", [div, e.const(a["beta"])])])]


register(OpSpec(
    "lrn", (Attr("size", minimum=1), Attr("alpha", "float", 1e-4), Attr("beta", "float", 0.75), Attr("k", "float", 1.0)),
    "Local response normalisation across channels (nn.LocalResponseNorm; AlexNet, GoogLeNet).", same_shape,
    family="norm",
    torch=TorchSpec("nn.LocalResponseNorm", lambda a, ins: {"size": a["size"], "alpha": a["alpha"],
                                                            "beta": a["beta"], "k": a["k"]},
                    positional=1, functional="F.local_response_norm"),
    onnx=_lrn_onnx, example="lrn(5, alpha=0.0001, beta=0.75, k=2)",
    examples=(Example("lrn(3, alpha=0.01, beta=0.75, k=2)"),
              Example("lrn(4, alpha=0.1, beta=0.5, k=1)", id="lrn_even")),
    rule="shape unchanged"))


# ------------------------------------------------------------------------------------- layer_norm


def _ln_shape(a, ins):
    if not 1 <= a["dims"] <= len(ins[0]):
        raise OpError(f"layer_norm dims={a['dims']} on a {len(ins[0])}-d tensor {fmt_shape(ins[0])}",
                      "dims counts the trailing dimensions to normalise, whose sizes come from the input: "
                      f"PyTorch's LayerNorm({a['dims']}) on the last axis is plain layer_norm here")
    if not all(isinstance(d, int) for d in ins[0][-a["dims"]:]):
        raise OpError("layer_norm needs the normalised dimensions to be known")
    return [ins[0]], []


def _ln_onnx(e, n, xs):
    a = n.attrs
    w, b = e.weight(n, "weight"), e.weight(n, "bias")
    if e.opset >= 17:
        return [e.op("LayerNormalization", [xs[0], w, b], axis=-a["dims"], epsilon=a["eps"])]
    axes = list(range(-a["dims"], 0))
    centred = e.op("Sub", [xs[0], e.reduce("ReduceMean", xs[0], axes)])
    var = e.reduce("ReduceMean", e.op("Mul", [centred, centred]), axes)
    std = e.op("Sqrt", [e.op("Add", [var, e.const(a["eps"])])])
    return [e.op("Add", [e.op("Mul", [e.op("Div", [centred, std]), w]), b])]


register(OpSpec(
    "layer_norm", (Attr("dims", "int", 1, doc="how many trailing dimensions to normalise", minimum=1),
                   _EPS),
    "Layer normalisation over the trailing dimensions (nn.LayerNorm).", _ln_shape, family="norm",
    weights=lambda a, ins: _affine(tuple(ins[0][-a["dims"]:])), traits=_NORM,
    torch=TorchSpec("nn.LayerNorm", lambda a, ins: {"normalized_shape": list(ins[0][-a["dims"]:]), **_eps(a)},
                    positional=1, defaults={"eps": 1e-5}),
    onnx=_ln_onnx, label=_name_label, example="layer_norm(eps=1e-6)",
    examples=(Example("layer_norm", (5, 7)), Example("layer_norm(dims=3, eps=1e-6)", id="layer_norm_image")),
    rule="shape unchanged"))


# ------------------------------------------------------------------------------------- group_norm


def _gn_shape(a, ins):
    c = ins[0][0]
    if isinstance(c, int) and c % a["groups"]:
        raise OpError(f"group_norm groups={a['groups']} does not divide {c} channels")
    return [ins[0]], []


def _gn_onnx(e, n, xs):
    import numpy as np  # only when lowering to ONNX: check and summary do not load numpy
    a = n.attrs
    g = a["groups"]
    w, b = e.weight(n, "weight"), e.weight(n, "bias")
    if e.opset >= 21:  # opset 18's GroupNormalization has per-group scales; 21 has PyTorch's per-channel
        return [e.op("GroupNormalization", [xs[0], w, b], num_groups=g, epsilon=a["eps"])]
    # normalise [batch, groups, rest] per group with InstanceNormalization, then scale per channel
    grouped = e.op("Reshape", [xs[0], e.ints([0, g, -1])])
    normed = e.op("InstanceNormalization", [grouped, e.const(np.ones(g)), e.const(np.zeros(g))],
                  epsilon=a["eps"])
    y = e.op("Reshape", [normed, e.op("Shape", [xs[0]])])
    extra = list(range(1, len(e.in_shape(n))))
    if extra:  # [C] -> [C, 1, 1] to broadcast over the spatial axes
        w, b = (e.op("Unsqueeze", [t, e.ints(extra)]) for t in (w, b))
    return [e.op("Add", [e.op("Mul", [y, w]), b])]


register(OpSpec(
    "group_norm", (Attr("groups", minimum=1), _EPS),
    "Group normalisation (nn.GroupNorm).", _gn_shape, family="norm",
    weights=lambda a, ins: _affine((ins[0][0],)), traits=_NORM,
    torch=TorchSpec("nn.GroupNorm", lambda a, ins: {"num_groups": a["groups"], "num_channels": ins[0][0], **_eps(a)},
                    positional=2, defaults={"eps": 1e-5}),
    onnx=_gn_onnx, example="group_norm(32)",
    examples=(Example("group_norm(2)"), Example("group_norm(3)", (6,), id="group_norm_vector")),
    rule="shape unchanged"))


# ------------------------------------------------------------------------------------- instance_norm
# nn.InstanceNorm2d's defaults: no affine parameters and no running statistics (each image is
# normalised by its own statistics, in training and inference alike)


def _in_shape(a, ins):
    if len(ins[0]) != 3:
        raise OpError(f"instance_norm expects an image [C, H, W], got {fmt_shape(ins[0])}")
    return [ins[0]], []


def _in_onnx(e, n, xs):
    import numpy as np  # only when lowering to ONNX: check and summary do not load numpy
    c = e.in_shape(n)[0]
    scale = e.weight(n, "weight") or e.const(np.ones(c))
    bias = e.weight(n, "bias") or e.const(np.zeros(c))
    return [e.op("InstanceNormalization", [xs[0], scale, bias], epsilon=n.attrs["eps"])]


register(OpSpec(
    "instance_norm", (_EPS, Attr("affine", "bool", False, doc="learn a scale and shift per channel")),
    "Instance normalisation: each channel of each image by its own mean and variance (nn.InstanceNorm2d).",
    _in_shape, family="norm", weights=lambda a, ins: _affine((ins[0][0],)) if a["affine"] else [],
    traits={Trait.FRESH_OUTPUT},
    torch=TorchSpec("nn.InstanceNorm2d", lambda a, ins: {"num_features": ins[0][0], **_eps(a),
                                                        **({"affine": True} if a["affine"] else {})},
                    positional=1, defaults={"eps": 1e-5, "momentum": 0.1, "affine": False,
                                            "track_running_stats": False}),
    onnx=_in_onnx, label=_name_label, example="instance_norm(affine=true)",
    examples=(Example("instance_norm"), Example("instance_norm(eps=0.001, affine=true)", id="instance_norm_affine")),
    rule="shape unchanged"))


# ------------------------------------------------------------------------------------- dropout


def _dropout_shape(a, ins):
    if not 0 <= a["p"] <= 1:
        raise OpError(f"dropout probability {a['p']} is not in [0, 1]")
    return [ins[0]], []


register(OpSpec(
    "dropout", (Attr("p", "float", 0.5),), "Dropout (nn.Dropout); removed for inference.", _dropout_shape,
    family="norm", traits={Trait.ALIASES_INPUT},
    torch=TorchSpec("nn.Dropout", lambda a, ins: {} if a["p"] == 0.5 else {"p": a["p"]}, defaults={"p": 0.5},
                    functional=lambda a, x, ins: f"F.dropout({x[0]}, p={a['p']!r}, training=self.training)"),
    onnx=lambda e, n, xs: [xs[0]],  # inference: no node at all
    label=lambda op, a, ins: f"dropout {label_num(a['p'])}", style=Style.SHAPE,
    example="dropout(0.2)", examples=(Example("dropout(0.3)"),), rule="shape unchanged"))
