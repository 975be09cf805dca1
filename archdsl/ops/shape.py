"""Ops that move data without weights: flatten, reshape, permute, shuffle, chunk, resize, pad, crop."""
from __future__ import annotations

import math

from . import Attr, OpError, OpSpec, fmt_shape, need_rank, numel, pair, register


def _flatten_shape(a, ins):
    s = ins[0]
    st = a["start"]
    if not 0 <= st < max(len(s), 1):
        raise OpError(f"flatten start={st} out of range for {fmt_shape(s)}")
    n = numel(s[st:])
    return [(*s[:st], n if n is not None else "*".join(str(d) for d in s[st:]))]


register(OpSpec(
    "flatten", (Attr("start", "int", 0, doc="first axis to flatten, without the batch"),),
    "Flatten to a vector per example (torch.flatten(x, 1)).", _flatten_shape,
    rf=lambda a: "global", family="shape", example="flatten",
    torch_module=lambda a, ins: "nn.Flatten()" if a["start"] == 0 else f"nn.Flatten({a['start'] + 1})",
    torch_fn=lambda a, x, ins: f"torch.flatten({x[0]}, {a['start'] + 1})",
    rule="[C, H, W] -> [C*H*W]"))


def _reshape_shape(a, ins):
    target = list(a["shape"])
    n = numel(ins[0])
    if target.count(-1) > 1:
        raise OpError("reshape allows at most one -1")
    if n is None:
        raise OpError("reshape needs a tensor of known size")
    known = 1
    for d in target:
        if d != -1:
            if d <= 0:
                raise OpError(f"reshape dimension {d} must be positive")
            known *= d
    if -1 in target:
        if n % known:
            raise OpError(f"cannot reshape {fmt_shape(ins[0])} ({n} values) to {fmt_shape(tuple(target))}")
        target[target.index(-1)] = n // known
    elif known != n:
        raise OpError(f"cannot reshape {fmt_shape(ins[0])} ({n} values) to {fmt_shape(tuple(target))} ({known} values)")
    return [tuple(target)]


register(OpSpec(
    "reshape", (Attr("shape", "ints", doc="the new shape without the batch; one entry may be -1"),),
    "Reshape each example.", _reshape_shape, family="shape", example="reshape((16, -1))",
    torch_fn=lambda a, x, ins: f"{x[0]}.reshape({x[0]}.shape[0], {', '.join(str(d) for d in a['shape'])})",
    rule="same number of values"))


def _permute_shape(a, ins):
    dims = a["dims"]
    if sorted(dims) != list(range(len(ins[0]))):
        raise OpError(f"permute {dims} is not a permutation of the {len(ins[0])} axes of {fmt_shape(ins[0])}")
    return [tuple(ins[0][d] for d in dims)]


register(OpSpec(
    "permute", (Attr("dims", "ints", doc="axis order without the batch"),), "Reorder the axes.",
    _permute_shape, family="shape", example="permute((1, 2, 0))",
    torch_fn=lambda a, x, ins: f"{x[0]}.permute(0, {', '.join(str(d + 1) for d in a['dims'])})",
    rule="axes reordered"))


def _shuffle_shape(a, ins):
    c = need_rank(ins, 3, "channel_shuffle")[0]
    if isinstance(c, int) and c % a["groups"]:
        raise OpError(f"channel_shuffle groups={a['groups']} does not divide {c} channels")
    return [ins[0]]


register(OpSpec(
    "channel_shuffle", (Attr("groups", minimum=1),), "ShuffleNet's channel shuffle across groups.", _shuffle_shape,
    family="shape", example="channel_shuffle(2)",
    torch_fn=lambda a, x, ins: f"{x[0]}.unflatten(1, ({a['groups']}, -1)).transpose(1, 2).flatten(1, 2)",
    rule="shape unchanged"))


def _chunk_shape(a, ins):
    c = ins[0][0]
    n = a["chunks"]
    if n < 1:
        raise OpError("chunk needs at least one chunk")
    if isinstance(c, int) and c % n:
        raise OpError(f"chunk({n}) of {c} channels is uneven", f"use a channel count divisible by {n}")
    part = c // n if isinstance(c, int) else f"{c}/{n}"
    return [(part, *ins[0][1:])] * n


register(OpSpec(
    "chunk", (Attr("chunks", minimum=1),), "Split along the channel axis into equal parts (several outputs).",
    _chunk_shape, family="shape", example="a, b = x -> chunk(2)",
    torch_fn=lambda a, x, ins: f"{x[0]}.chunk({a['chunks']}, dim=1)",
    rule="[C, H, W] -> chunks x [C/chunks, H, W]"))

register(OpSpec(
    "identity", (), "Pass the input through unchanged.", lambda a, ins: [ins[0]], family="shape",
    example="add { conv(64, 3, pad=1) | identity }", torch_module=lambda a, ins: "nn.Identity()",
    torch_fn=lambda a, x, ins: x[0], rule="shape unchanged"))


def _upsample_shape(a, ins):
    c, h, w = need_rank(ins, 3, "upsample")
    if a["size"] is not None:
        a["size"] = pair(a["size"])
        return [(c, *a["size"])]
    s = a["scale"]
    if isinstance(s, (tuple, list)):
        raise OpError("upsample scale must be one number")
    if not (math.isfinite(s) and s > 0):
        raise OpError(f"upsample scale {s} must be a positive number")
    if s == int(s):
        a["scale"] = s = int(s)  # scale_factor=2, not 2.0, in the generated module
    return [(c, *(_scaled(d, s, axis) for d, axis in ((h, "height"), (w, "width"))))]


def _scaled(d, s, axis: str):
    """PyTorch's output size, ``floor(d * scale)`` (in double precision)."""
    if isinstance(d, str):
        return f"{d}*{s}" if isinstance(s, int) else f"floor({d}*{s})"
    if not math.isfinite(d * s):
        raise OpError(f"upsample scale {s} is too large")
    out = math.floor(d * s)
    if out < 1:
        raise OpError(f"upsample scale {s} leaves nothing of the {axis} {d}: floor({d} * {s}) = {out}",
                      f"use a scale of at least {1 / d:g}")
    return out


def _mode_args(a):
    mode = f", mode={a['mode']!r}"
    if a["mode"] == "bilinear":
        mode += f", align_corners={a['align_corners']!r}"
    return mode


def _upsample_args(a):
    what = f"size={a['size']!r}" if a["size"] is not None else f"scale_factor={a['scale']!r}"
    return what + _mode_args(a)


register(OpSpec(
    "upsample", (Attr("scale", "float", 2, doc="a factor, whole or not (1.5, 0.5): the output is floor(H * scale)"),
                 Attr("mode", "str", "nearest", ("nearest", "bilinear")),
                 Attr("size", "pair", None), Attr("align_corners", "bool", False)),
    "Resize by a scale factor or to a size (nn.Upsample).  As in PyTorch, a fractional scale maps "
    "output pixels to input coordinates by the scale itself, not by the ratio of the sizes.  ONNX "
    "takes scales in single precision: an export refuses a scale that is inexact there and gives "
    "another size (0.7 of 90); binary fractions (1.5, 0.75) are exact.", _upsample_shape,
    rf=lambda a: (1, 1 / a["scale"]) if a["size"] is None else "resample", family="shape",
    example='upsample(2, mode="bilinear")',
    torch_module=lambda a, ins: f"nn.Upsample({_upsample_args(a)})",
    torch_fn=lambda a, x, ins: f"F.interpolate({x[0]}, {_upsample_args(a)})",
    rule="[C, H, W] -> [C, floor(H*scale), floor(W*scale)] (or [C, *size])"))


def _resize_shape(a, ins):
    c = need_rank(ins[:1], 3, "resize")[0]
    _, h, w = need_rank(ins[1:], 3, "resize", "'to' names an image [C, H, W] whose height and width the output takes")
    return [(c, h, w)]


def _resize_fn(a, x, ins):
    return f"F.interpolate({x[0]}, size={x[1]}.shape[-2:]{_mode_args(a)})"


register(OpSpec(
    "resize", (Attr("to", "tensor", doc="the tensor whose height and width the output takes"),
               Attr("mode", "str", "nearest", ("nearest", "bilinear")), Attr("align_corners", "bool", False)),
    "Resize to the height and width of another tensor, read when the network runs, so the network "
    "takes any input size (torchvision's segmentation heads: F.interpolate(x, size=image.shape[-2:])).",
    _resize_shape, rf=lambda a: "resample", family="shape", example='resize(to=x, mode="bilinear")',
    torch_fn=_resize_fn, rule="[C, H, W] -> [C, to.h, to.w]"))



def _pads(a):
    p = a["pad"]
    p = (p,) * 4 if isinstance(p, int) else tuple(p)
    if len(p) == 1:
        p = p * 4
    if len(p) == 2:
        p = (p[1], p[1], p[0], p[0])  # (ph, pw) -> left, right, top, bottom
    if len(p) != 4:
        raise OpError("pad takes an int, (ph, pw) or (left, right, top, bottom)")
    return p


def _pad_shape(a, ins):
    c, h, w = need_rank(ins, 3, "pad")
    a["pad"] = l, r, t, b = _pads(a)
    grow = (lambda d, n: d + n if isinstance(d, int) else f"{d}{n:+d}")
    out = (c, grow(h, t + b), grow(w, l + r))
    if any(isinstance(d, int) and d <= 0 for d in out):
        raise OpError(f"pad {a['pad']} leaves an empty map {fmt_shape(out)}")
    return [out]


register(OpSpec(
    "pad", (Attr("pad", "ints"), Attr("value", "float", 0.0),
            Attr("mode", "str", "constant", ("constant", "reflect", "replicate"))),
    "Pad the spatial axes: int, (ph, pw) or (left, right, top, bottom).", _pad_shape, family="shape",
    example="pad((0, 1, 0, 1))",
    torch_fn=lambda a, x, ins: f"F.pad({x[0]}, {list(a['pad'])!r}"
                               + (f", mode={a['mode']!r}" if a["mode"] != "constant" else "")
                               + (f", value={a['value']!r}" if a["value"] else "") + ")",
    rule="[C, H, W] -> [C, H + top + bottom, W + left + right]"))


def _crop_shape(a, ins):
    c, h, w = need_rank(ins, 3, "crop")
    a["size"] = th, tw = pair(a["size"])
    if a["offset"] is None:
        for have, want, ax in ((h, th, "height"), (w, tw, "width")):
            if isinstance(have, int) and want > have:
                raise OpError(f"crop to {want} is larger than the {ax} {have}")
    else:
        a["offset"] = pair(a["offset"])
        for have, want, at, ax in ((h, th, a["offset"][0], "height"), (w, tw, a["offset"][1], "width")):
            if isinstance(have, int) and at + want > have:
                raise OpError(f"crop of {want} at offset {at} runs past the {ax} {have}",
                              f"the crop needs offset + size <= {have}")
    return [(c, th, tw)]


def _crop_fn(a, x, ins):
    th, tw = a["size"]
    _, h, w = ins[0]
    if a["offset"] is not None:
        t, left = a["offset"]
    elif isinstance(h, int) and isinstance(w, int):
        t, left = (h - th) // 2, (w - tw) // 2
    else:
        return (f"{x[0]}[:, :, ({x[0]}.shape[2] - {th}) // 2:({x[0]}.shape[2] - {th}) // 2 + {th}, "
                f"({x[0]}.shape[3] - {tw}) // 2:({x[0]}.shape[3] - {tw}) // 2 + {tw}]")
    return f"{x[0]}[:, :, {t}:{t + th}, {left}:{left + tw}]"


register(OpSpec(
    "crop", (Attr("size", "pair", doc="output (h, w)"),
             Attr("offset", "pair", None, doc="top-left corner (y, x) of the crop; default: centred")),
    "Crop of the spatial axes: centred (U-Net's skip connections) or at an offset (FCN's crop).",
    _crop_shape, family="shape", example="crop(56)", torch_fn=_crop_fn, rule="[C, H, W] -> [C, h, w]"))
