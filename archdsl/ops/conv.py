"""Convolutions and fully connected layers."""
from __future__ import annotations

from . import Attr, OpError, OpSpec, Weight, conv_dim, fmt_shape, need_rank, pair, register

_CONV_HINT = None


def _same_pad(a: dict) -> None:
    """Resolve ``pad="same"`` to a number (symmetric padding only, as PyTorch does)."""
    if a["pad"] != "same":
        a["pad"] = pair(a["pad"])
        return
    pads = []
    for k, d, s in zip(a["kernel"], a["dilation"], a["stride"]):
        eff = d * (k - 1) + 1
        if eff % 2 == 0:
            raise OpError(f'pad="same" needs an odd effective kernel, got {eff}',
                          "pad explicitly with pad(...) before the conv")
        pads.append((eff - 1) // 2)
    a["pad"] = tuple(pads)


def _conv_shape(a, ins):
    c, h, w = need_rank(ins, 3, "conv", "conv works on images; reshape the input to [C, H, W]")
    for key in ("kernel", "stride", "dilation"):
        a[key] = pair(a[key])
    _same_pad(a)
    g = a["groups"]
    if isinstance(c, int) and c % g:
        raise OpError(f"conv groups={g} does not divide the {c} input channels",
                      f"choose groups from the divisors of {c}")
    if a["out"] % g:
        raise OpError(f"conv groups={g} does not divide the {a['out']} output channels")
    (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["pad"], a["dilation"]
    return [(a["out"], conv_dim(h, kh, sh, ph, dh), conv_dim(w, kw, sw, pw, dw, axis="width"))]


def _conv_weights(a, ins):
    c = ins[0][0]
    ws = [Weight("weight", (a["out"], c // a["groups"], *a["kernel"]))]
    if a["bias"]:
        ws.append(Weight("bias", (a["out"],), role="bias"))
    return ws


def _conv_macs(a, ins, outs):
    o = outs[0]
    if not all(isinstance(d, int) for d in o):
        return 0
    kh, kw = a["kernel"]
    return o[0] * o[1] * o[2] * (ins[0][0] // a["groups"]) * kh * kw


def _kw(a, names_defaults) -> str:
    """Keyword arguments that differ from PyTorch's defaults, in PyTorch's spelling."""
    parts = []
    for key, torch_name, default in names_defaults:
        v = a[key]
        if isinstance(v, tuple) and len(set(v)) == 1:
            v = v[0]
        if v != default:
            parts.append(f"{torch_name}={v!r}")
    return "".join(", " + p for p in parts)


def _k(v):
    return v[0] if isinstance(v, tuple) and len(set(v)) == 1 else v


def _conv_torch(a, ins):
    extra = _kw(a, [("stride", "stride", 1), ("pad", "padding", 0), ("dilation", "dilation", 1),
                    ("groups", "groups", 1), ("bias", "bias", True)])
    return f"nn.Conv2d({ins[0][0]}, {a['out']}, kernel_size={_k(a['kernel'])!r}{extra})"


def _conv_rf(a):
    return (a["dilation"][0] * (a["kernel"][0] - 1) + 1, a["stride"][0])


register(OpSpec(
    "conv",
    (Attr("out", "int", doc="output channels", minimum=1), Attr("kernel", "pair", doc="kernel size, int or (kh, kw)"),
     Attr("stride", "pair", 1), Attr("pad", "pad", 0, doc='int, (ph, pw) or "same"'),
     Attr("dilation", "pair", 1), Attr("groups", "int", 1, minimum=1), Attr("bias", "bool", True)),
    "2-D convolution (nn.Conv2d).", _conv_shape, _conv_weights, _conv_macs, _conv_rf,
    torch_module=_conv_torch, family="conv", example="conv(64, 3, stride=2, pad=1, bias=false)",
    rule="[C, H, W] -> [out, (H + 2*pad - dilation*(kernel-1) - 1) // stride + 1, same for W]"), weighted=True)


def _convt_shape(a, ins):
    c, h, w = need_rank(ins, 3, "conv_transpose")
    for key in ("kernel", "stride", "pad", "output_padding", "dilation"):
        a[key] = pair(a[key])
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
    return [tuple(out)]


def _convt_weights(a, ins):
    ws = [Weight("weight", (ins[0][0], a["out"] // a["groups"], *a["kernel"]))]
    if a["bias"]:
        ws.append(Weight("bias", (a["out"],), role="bias"))
    return ws


def _convt_macs(a, ins, outs):
    c, h, w = ins[0]
    if not (isinstance(h, int) and isinstance(w, int)):
        return 0
    kh, kw = a["kernel"]
    return c * h * w * (a["out"] // a["groups"]) * kh * kw


def _convt_torch(a, ins):
    extra = _kw(a, [("stride", "stride", 1), ("pad", "padding", 0),
                    ("output_padding", "output_padding", 0), ("groups", "groups", 1),
                    ("bias", "bias", True), ("dilation", "dilation", 1)])
    return f"nn.ConvTranspose2d({ins[0][0]}, {a['out']}, kernel_size={_k(a['kernel'])!r}{extra})"


register(OpSpec(
    "conv_transpose",
    (Attr("out", minimum=1), Attr("kernel", "pair"), Attr("stride", "pair", 1), Attr("pad", "pair", 0),
     Attr("output_padding", "pair", 0), Attr("dilation", "pair", 1), Attr("groups", "int", 1, minimum=1),
     Attr("bias", "bool", True)),
    "Transposed 2-D convolution (nn.ConvTranspose2d), the learnable upsampling of FCN and U-Net.",
    _convt_shape, _convt_weights, _convt_macs,
    lambda a: (a["dilation"][0] * (a["kernel"][0] - 1) + 1, 1 / a["stride"][0]),
    torch_module=_convt_torch, family="conv", example="conv_transpose(64, 2, stride=2)",
    rule="[C, H, W] -> [out, (H-1)*stride - 2*pad + dilation*(kernel-1) + output_padding + 1, ...]"),
    weighted=True)


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
    return [(*s[:-1], a["out"])]


def _linear_weights(a, ins):
    ws = [Weight("weight", (a["out"], ins[0][-1]))]
    if a["bias"]:
        ws.append(Weight("bias", (a["out"],), role="bias"))
    return ws


def _linear_macs(a, ins, outs):
    rows = 1
    for d in ins[0][:-1]:
        rows *= d if isinstance(d, int) else 1
    return rows * ins[0][-1] * a["out"]


register(OpSpec(
    "linear", (Attr("out", doc="output features", minimum=1), Attr("bias", "bool", True)),
    "Fully connected layer (nn.Linear) on the last dimension.", _linear_shape, _linear_weights,
    _linear_macs, None,
    torch_module=lambda a, ins: f"nn.Linear({ins[0][-1]}, {a['out']}{'' if a['bias'] else ', bias=False'})",
    family="conv", example="linear(4096)", rule="[..., F] -> [..., out]"), weighted=True)
