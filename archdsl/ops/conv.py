"""Convolutions and fully connected layers."""
from __future__ import annotations

from .arith import conv_dim, fmt_shape, need_rank, one, pair, torch_kwargs
from .spec import (RF, Attr, Example, OpError, OpSpec, Style, TorchSpec, Trait, Weight, label_kernel,
                   label_stride, register)

# conv, conv_transpose and linear write a fresh tensor, and init declarations reach their weights
_LAYER = frozenset({Trait.FRESH_OUTPUT, Trait.INITIALISABLE})


def _bias(a, ins, shape) -> list[Weight]:
    return [Weight("bias", shape, role="bias")] if a["bias"] else []


def _conv_label(op: str, a: dict, ins: list) -> str:
    text = f"{op} {label_kernel(a['kernel'])}{label_stride(a['stride'])}, {a['out']}"
    groups = a.get("groups", 1)
    if groups != 1:
        depthwise = ins and len(ins[0]) == 3 and groups == ins[0][0]
        text += ", depthwise" if depthwise else f", groups {groups}"
    if pair(a.get("dilation", 1)) != (1, 1):
        text += f", dilation {label_kernel(a['dilation'])}"
    return text


# ------------------------------------------------------------------------------------- conv


def _conv_normalize(a, ins):
    """Pairs for the window attributes; ``pad="same"`` resolved to a number (symmetric padding
    only, as PyTorch does)."""
    a = {**a, **{key: pair(a[key]) for key in ("kernel", "stride", "dilation")}}
    if a["pad"] != "same":
        return {**a, "pad": pair(a["pad"])}
    pads = []
    for k, d in zip(a["kernel"], a["dilation"]):
        eff = d * (k - 1) + 1
        if eff % 2 == 0:
            raise OpError(f'pad="same" needs an odd effective kernel, got {eff}',
                          "pad explicitly with pad(...) before the conv")
        pads.append((eff - 1) // 2)
    return {**a, "pad": tuple(pads)}


def _conv_shape(a, ins):
    c, h, w = need_rank(ins, 3, "conv", "conv works on images; reshape the input to [C, H, W]")
    g = a["groups"]
    if isinstance(c, int) and c % g:
        raise OpError(f"conv groups={g} does not divide the {c} input channels",
                      f"choose groups from the divisors of {c}")
    if a["out"] % g:
        raise OpError(f"conv groups={g} does not divide the {a['out']} output channels")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["pad"], a["dilation"]
    notes: list = []
    out = (a["out"], conv_dim(h, kh, sh, ph, dh, notes=notes), conv_dim(w, kw, sw, pw, dw, axis="width", notes=notes))
    return [out], notes


def _conv_weights(a, ins):
    return [Weight("weight", (a["out"], ins[0][0] // a["groups"], *a["kernel"]))] + _bias(a, ins, (a["out"],))


def _conv_macs(a, ins, outs):
    o = outs[0]
    if not all(isinstance(d, int) for d in o):
        return 0
    kh, kw = a["kernel"]
    return o[0] * o[1] * o[2] * (ins[0][0] // a["groups"]) * kh * kw


def _conv_args(a, ins):
    return {"in_channels": ins[0][0], "out_channels": a["out"], "kernel_size": one(a["kernel"]),
            **torch_kwargs(a, [("stride", "stride", 1), ("pad", "padding", 0), ("dilation", "dilation", 1),
                      ("groups", "groups", 1), ("bias", "bias", True)])}


def _spatial(a, key="pad") -> list[int]:
    ph, pw = a[key]
    return [ph, pw, ph, pw]


def _conv_onnx(e, n, xs):
    a = n.attrs
    ins = [xs[0], e.weight(n, "weight")]
    bias = e.weight(n, "bias")  # also present when a batch norm was folded into this conv
    if bias:
        ins.append(bias)
    return [e.op("Conv", ins, kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=_spatial(a),
                 dilations=list(a["dilation"]), group=a["groups"])]


register(OpSpec(
    "conv",
    (Attr("out", "int", doc="output channels", minimum=1),
     Attr("kernel", "pair", doc="kernel size, int or (kh, kw)", minimum=1),
     Attr("stride", "pair", 1, minimum=1), Attr("pad", "pad", 0, doc='int, (ph, pw) or "same"'),
     Attr("dilation", "pair", 1, minimum=1), Attr("groups", "int", 1, minimum=1), Attr("bias", "bool", True)),
    "2-D convolution (nn.Conv2d).", _conv_shape, family="conv", normalize=_conv_normalize,
    weights=_conv_weights, macs=_conv_macs,
    rf=lambda a: RF.window(a["dilation"][0] * (a["kernel"][0] - 1) + 1, a["stride"][0]),
    traits=_LAYER | {Trait.FOLD_TARGET},
    torch=TorchSpec("nn.Conv2d", _conv_args, positional=2,
                    defaults={"stride": 1, "padding": 0, "dilation": 1, "groups": 1, "bias": True}),
    onnx=_conv_onnx, label=_conv_label,
    example="conv(64, 3, stride=2, pad=1, bias=false)",
    examples=(Example("conv(6, 3)"),
              Example("conv(6, 3, stride=2, pad=1, dilation=1, bias=false)", id="conv_strided"),
              Example("conv(8, (3, 5), pad=(2, 1), dilation=(2, 1), groups=2)", id="conv_dilated_groups"),
              Example('conv(4, 5, pad="same")', id="conv_same"),
              Example("conv(4, 3, pad=1, groups=4)", id="conv_depthwise")),
    rule="[C, H, W] -> [out, (H + 2*pad - dilation*(kernel-1) - 1) // stride + 1, same for W]"))


# ------------------------------------------------------------------------------------- conv_transpose


def _convt_normalize(a, ins):
    return {**a, **{key: pair(a[key]) for key in ("kernel", "stride", "pad", "output_padding", "dilation")}}


def _convt_shape(a, ins):
    c, h, w = need_rank(ins, 3, "conv_transpose")
    g = a["groups"]
    if isinstance(c, int) and c % g:
        raise OpError(f"conv_transpose groups={g} does not divide the {c} input channels")
    out = [a["out"]]
    for size, k, s, p, op, d in zip((h, w), a["kernel"], a["stride"], a["pad"], a["output_padding"],
                                    a["dilation"]):
        if op >= max(s, d):
            raise OpError(f"output_padding {op} must be smaller than stride or dilation")
        if isinstance(size, str):
            out.append(f"{size}*{s}" if (d * (k - 1) + op + 1 - 2 * p) == s else f"({size}-1)*{s}"
                       f"{d * (k - 1) + op + 1 - 2 * p:+d}")
        else:
            out.append((size - 1) * s - 2 * p + d * (k - 1) + op + 1)
    return [tuple(out)], []


def _convt_weights(a, ins):
    return [Weight("weight", (ins[0][0], a["out"] // a["groups"], *a["kernel"]))] + _bias(a, ins, (a["out"],))


def _convt_macs(a, ins, outs):
    c, h, w = ins[0]
    if not (isinstance(h, int) and isinstance(w, int)):
        return 0
    kh, kw = a["kernel"]
    return c * h * w * (a["out"] // a["groups"]) * kh * kw


def _convt_args(a, ins):
    return {"in_channels": ins[0][0], "out_channels": a["out"], "kernel_size": one(a["kernel"]),
            **torch_kwargs(a, [("stride", "stride", 1), ("pad", "padding", 0), ("output_padding", "output_padding", 0),
                      ("groups", "groups", 1), ("bias", "bias", True), ("dilation", "dilation", 1)])}


def _convt_onnx(e, n, xs):
    """PyTorch's output_padding grows the end of each axis; ONNX runtimes refuse output_padding
    >= stride (which PyTorch allows below the dilation), so it is spelt with pads: first it cancels
    end padding; what is left stays output_padding if below the stride, else an explicit Pad of
    the output (those rows and columns get no input, only the bias, which is then added after)."""
    a = n.attrs
    w, bias = e.weight(n, "weight"), e.weight(n, "bias")
    (ph, pw), (oh, ow) = a["pad"], a["output_padding"]
    end = [max(ph - oh, 0), max(pw - ow, 0)]
    grow = [max(oh - ph, 0), max(ow - pw, 0)]
    attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=[ph, pw, *end],
                 dilations=list(a["dilation"]), group=a["groups"])
    if all(g < s for g, s in zip(grow, a["stride"])):
        if any(grow):
            attrs["output_padding"] = grow
        return [e.op("ConvTranspose", [xs[0], w] + ([bias] if bias else []), **attrs)]
    y = e.op("ConvTranspose", [xs[0], w], **attrs)
    y = e.op("Pad", [y, e.ints([0, 0, 0, 0, 0, 0, *grow])])
    if bias:
        y = e.op("Add", [y, e.op("Unsqueeze", [bias, e.ints([1, 2])])])
    return [y]


register(OpSpec(
    "conv_transpose",
    (Attr("out", minimum=1), Attr("kernel", "pair", minimum=1), Attr("stride", "pair", 1, minimum=1),
     Attr("pad", "pair", 0), Attr("output_padding", "pair", 0), Attr("dilation", "pair", 1, minimum=1),
     Attr("groups", "int", 1, minimum=1), Attr("bias", "bool", True)),
    "Transposed 2-D convolution (nn.ConvTranspose2d), the learnable upsampling of FCN and U-Net.",
    _convt_shape, family="conv", normalize=_convt_normalize, weights=_convt_weights, macs=_convt_macs,
    rf=lambda a: RF.window(a["dilation"][0] * (a["kernel"][0] - 1) + 1, 1 / a["stride"][0]),
    traits=_LAYER,
    torch=TorchSpec("nn.ConvTranspose2d", _convt_args, positional=2,
                    defaults={"stride": 1, "padding": 0, "output_padding": 0, "groups": 1, "bias": True,
                              "dilation": 1}),
    onnx=_convt_onnx, label=_conv_label, example="conv_transpose(64, 2, stride=2)",
    examples=(Example("conv_transpose(3, 3, stride=2, pad=1, output_padding=1)"),
              Example("conv_transpose(6, (2, 3), stride=(2, 1), groups=2, bias=false)", id="conv_transpose_groups"),
              # dilation changes the output size and, with groups, the MACs (a blind spot once)
              Example("conv_transpose(6, 3, stride=2, pad=1, output_padding=1, dilation=2, groups=2)",
                      id="conv_transpose_dilated")),
    rule="[C, H, W] -> [out, (H-1)*stride - 2*pad + dilation*(kernel-1) + output_padding + 1, ...]"))


# ------------------------------------------------------------------------------------- linear


def _linear_shape(a, ins):
    s = ins[0]
    # linear acts on the last axis of any tensor ([..., F] -> [..., out]), as nn.Linear does.  On
    # an image [C, H, W] that is its width: a square map there means a missing flatten.  After a
    # permute to channels last ([H, W, C]) the last two sizes differ, and the features are last.
    if len(s) == 3 and s[1] == s[2] and isinstance(s[2], int):
        raise OpError(f"linear after an image {fmt_shape(s)}: it would act on the width alone",
                      f"add 'flatten' before it (giving [{'*'.join(str(d) for d in s)}]), or pool first "
                      "with adaptive_avgpool(1) -> flatten; to act on the channels at every pixel, "
                      "permute((1, 2, 0)) first")
    if len(s) == 0:
        raise OpError("linear needs at least one dimension")
    if not isinstance(s[-1], int):
        raise OpError(f"linear needs a known number of input features, got {s[-1]}",
                      "pool to a fixed size first, e.g. adaptive_avgpool(1)")
    return [(*s[:-1], a["out"])], []


def _linear_macs(a, ins, outs):
    rows = 1
    for d in ins[0][:-1]:
        rows *= d if isinstance(d, int) else 1
    return rows * ins[0][-1] * a["out"]


def _linear_onnx(e, n, xs):
    w, b = e.weight(n, "weight"), e.weight(n, "bias")
    if len(e.in_shape(n)) == 1:  # [batch, F]: one Gemm
        return [e.op("Gemm", [xs[0], w] + ([b] if b else []), transB=1)]
    y = e.op("MatMul", [xs[0], e.op("Transpose", [w], perm=[1, 0])])
    return [e.op("Add", [y, b]) if b else y]


register(OpSpec(
    "linear", (Attr("out", doc="output features", minimum=1), Attr("bias", "bool", True)),
    "Fully connected layer (nn.Linear) on the last dimension.", _linear_shape, family="conv",
    weights=lambda a, ins: [Weight("weight", (a["out"], ins[0][-1]))] + _bias(a, ins, (a["out"],)),
    macs=_linear_macs, traits=_LAYER,
    torch=TorchSpec("nn.Linear", lambda a, ins: {"in_features": ins[0][-1], "out_features": a["out"],
                                                  **({} if a["bias"] else {"bias": False})},
                    positional=2, defaults={"bias": True}),
    onnx=_linear_onnx, label=lambda op, a, ins: f"linear {a['out']}", style=Style.LINEAR,
    example="linear(4096)",
    examples=(Example("flatten -> linear(5)", id="linear_gemm"),
              Example("linear(3)", (5, 7), id="linear_matmul"),  # [L, F]: MACs count every row
              Example("linear(3, bias=false)", (6, 7), id="linear_matmul_nobias")),
    rule="[..., F] -> [..., out]"))
