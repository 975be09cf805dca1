"""Normalisation and regularisation layers."""
from __future__ import annotations

from . import Attr, OpError, OpSpec, Weight, fmt_shape, register

# eps guards a division (1e-5 in PyTorch, 1e-3 in Keras); a whole number there is a channel count
# written the PyTorch way (BatchNorm2d(64), GroupNorm(32, 64)) that archdsl takes as eps
_EPS = Attr("eps", "float", 1e-5, doc="added to the variance", usual=(0, 0.5))


def _bn_shape(a, ins):
    if len(ins[0]) not in (1, 2, 3):
        raise OpError(f"bn expects [C], [C, L] or [C, H, W], got {fmt_shape(ins[0])}")
    return [ins[0]]


def _bn_weights(a, ins):
    c = ins[0][0]
    ws = []
    if a["affine"]:
        ws += [Weight("weight", (c,), role="bn_weight"), Weight("bias", (c,), role="bn_bias")]
    ws += [Weight("running_mean", (c,), False, "mean"), Weight("running_var", (c,), False, "var"),
           Weight("num_batches_tracked", (), False, "count")]
    return ws


def _bn_torch(a, ins):
    dim = 2 if len(ins[0]) == 3 else 1
    extra = "".join(f", {k}={a[k]!r}" for k, d in (("eps", 1e-5), ("momentum", 0.1)) if a[k] != d)
    if not a["affine"]:
        extra += ", affine=False"
    return f"nn.BatchNorm{dim}d({ins[0][0]}{extra})"


register(OpSpec(
    "bn", (_EPS, Attr("momentum", "float", 0.1, usual=(0, 1),
                     doc="PyTorch's convention, 1 - the decay of TensorFlow and Keras: a decay of 0.99 is momentum 0.01"),
           Attr("affine", "bool", True)),
    "Batch normalisation over the channel axis (nn.BatchNorm2d, or 1d on vectors).", _bn_shape,
    _bn_weights, torch_module=_bn_torch, family="norm", example="bn(eps=0.001)", rule="shape unchanged"),
    weighted=True)


def _lrn_torch(a, ins):
    return f"nn.LocalResponseNorm({a['size']}, alpha={a['alpha']!r}, beta={a['beta']!r}, k={a['k']!r})"


register(OpSpec(
    "lrn", (Attr("size", minimum=1), Attr("alpha", "float", 1e-4), Attr("beta", "float", 0.75), Attr("k", "float", 1.0)),
    "Local response normalisation across channels (nn.LocalResponseNorm; AlexNet, GoogLeNet).", lambda a, ins: [ins[0]],
    torch_module=_lrn_torch, family="norm", example="lrn(5, alpha=0.0001, beta=0.75, k=2)",
    rule="shape unchanged"))


def _ln_shape(a, ins):
    if not 1 <= a["dims"] <= len(ins[0]):
        raise OpError(f"layer_norm dims={a['dims']} on a {len(ins[0])}-d tensor {fmt_shape(ins[0])}",
                      "dims counts the trailing dimensions to normalise, whose sizes come from the input: "
                      f"PyTorch's LayerNorm({a['dims']}) on the last axis is plain layer_norm here")
    if not all(isinstance(d, int) for d in ins[0][-a["dims"]:]):
        raise OpError("layer_norm needs the normalised dimensions to be known")
    return [ins[0]]


def _ln_weights(a, ins):
    shape = tuple(ins[0][-a["dims"]:])
    return [Weight("weight", shape, role="bn_weight"), Weight("bias", shape, role="bn_bias")]


register(OpSpec(
    "layer_norm", (Attr("dims", "int", 1, doc="how many trailing dimensions to normalise", minimum=1),
                   _EPS),
    "Layer normalisation over the trailing dimensions (nn.LayerNorm).", _ln_shape, _ln_weights,
    torch_module=lambda a, ins: (f"nn.LayerNorm({list(ins[0][-a['dims']:])!r}"
                                 f"{'' if a['eps'] == 1e-5 else ', eps=' + repr(a['eps'])})"),
    family="norm", example="layer_norm(eps=1e-6)", rule="shape unchanged"), weighted=True)


def _gn_shape(a, ins):
    c = ins[0][0]
    if isinstance(c, int) and c % a["groups"]:
        raise OpError(f"group_norm groups={a['groups']} does not divide {c} channels")
    return [ins[0]]


register(OpSpec(
    "group_norm", (Attr("groups", minimum=1), _EPS),
    "Group normalisation (nn.GroupNorm).", _gn_shape,
    lambda a, ins: [Weight("weight", (ins[0][0],), role="bn_weight"), Weight("bias", (ins[0][0],), role="bn_bias")],
    torch_module=lambda a, ins: f"nn.GroupNorm({a['groups']}, {ins[0][0]}"
                                f"{'' if a['eps'] == 1e-5 else ', eps=' + repr(a['eps'])})",
    family="norm", example="group_norm(32)", rule="shape unchanged"), weighted=True)


def _dropout_shape(a, ins):
    if not 0 <= a["p"] <= 1:
        raise OpError(f"dropout probability {a['p']} is not in [0, 1]")
    return [ins[0]]


register(OpSpec(
    "dropout", (Attr("p", "float", 0.5),), "Dropout (nn.Dropout); removed for inference.", _dropout_shape,
    torch_module=lambda a, ins: "nn.Dropout()" if a["p"] == 0.5 else f"nn.Dropout(p={a['p']!r})",
    torch_fn=lambda a, x, ins: f"F.dropout({x[0]}, p={a['p']!r}, training=self.training)",
    family="norm", example="dropout(0.2)", rule="shape unchanged"))
