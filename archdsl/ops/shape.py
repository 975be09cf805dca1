"""Ops that move data without weights: flatten, reshape, permute, shuffle, chunk, resize, pad, crop."""
from __future__ import annotations

import math


from ..errors import ArchError
from .arith import fmt_shape, known, need_rank, numel, pair
from .spec import (GLOBAL, RESAMPLE, RF, Attr, Example, OpError, OpSpec, TorchSpec, Trait, label_kernel, label_num,
                   register, same_shape)

# views and pass-throughs: their output needs no memory of its own
_VIEW = frozenset({Trait.ALIASES_INPUT})


def _flatten_shape(a, ins):
    s = ins[0]
    st = a["start"]
    if not 0 <= st < max(len(s), 1):
        raise OpError(f"flatten start={st} out of range for {fmt_shape(s)}")
    n = numel(s[st:])
    return [(*s[:st], n if n is not None else "*".join(str(d) for d in s[st:]))], []


def _flatten_onnx(e, n, xs):
    start = n.attrs["start"]
    if start == 0:
        return [e.op("Flatten", xs, axis=1)]
    return [e.op("Reshape", [xs[0], e.ints([0] * (start + 1) + [-1])])]  # 0 keeps an axis


register(OpSpec(
    "flatten", (Attr("start", "int", 0, doc="first axis to flatten, without the batch"),),
    "Flatten to a vector per example (torch.flatten(x, 1)).", _flatten_shape, family="shape",
    rf=lambda a: GLOBAL, traits=_VIEW,
    torch=TorchSpec("nn.Flatten", lambda a, ins: {} if a["start"] == 0 else {"start_dim": a["start"] + 1},
                    positional=1, functional=lambda a, x, ins: f"torch.flatten({x[0]}, {a['start'] + 1})"),
    onnx=_flatten_onnx, example="flatten",
    examples=(Example("flatten"), Example("flatten(start=1)", id="flatten_start")),
    rule="[C, H, W] -> [C*H*W]"))


def _reshape_shape(a, ins):
    target = list(a["shape"])
    n = numel(ins[0])
    if target.count(-1) > 1:
        raise OpError("reshape allows at most one -1")
    if n is None:
        raise OpError("reshape needs a tensor of known size")
    known_size = 1
    for d in target:
        if d != -1:
            if d <= 0:
                raise OpError(f"reshape dimension {d} must be positive")
            known_size *= d
    if -1 in target:
        if n % known_size:
            raise OpError(f"cannot reshape {fmt_shape(ins[0])} ({n} values) to {fmt_shape(tuple(target))}")
        target[target.index(-1)] = n // known_size
    elif known_size != n:
        raise OpError(f"cannot reshape {fmt_shape(ins[0])} ({n} values) to {fmt_shape(tuple(target))} "
                      f"({known_size} values)")
    return [tuple(target)], []


register(OpSpec(
    "reshape", (Attr("shape", "ints", doc="the new shape without the batch; one entry may be -1"),),
    "Reshape each example.", _reshape_shape, family="shape", traits=_VIEW,
    torch=TorchSpec(functional=lambda a, x, ins:
                    f"{x[0]}.reshape({x[0]}.shape[0], {', '.join(str(d) for d in a['shape'])})"),
    onnx=lambda e, n, xs: [e.op("Reshape", [xs[0], e.ints([0, *n.shape])])],  # the batch axis is kept
    example="reshape((16, -1))", examples=(Example("reshape((12, -1))"),), rule="same number of values"))


def _permute_shape(a, ins):
    dims = a["dims"]
    if sorted(dims) != list(range(len(ins[0]))):
        raise OpError(f"permute {dims} is not a permutation of the {len(ins[0])} axes of {fmt_shape(ins[0])}")
    return [tuple(ins[0][d] for d in dims)], []


register(OpSpec(
    "permute", (Attr("dims", "ints", doc="axis order without the batch"),), "Reorder the axes.",
    _permute_shape, family="shape", traits=_VIEW,
    torch=TorchSpec(functional=lambda a, x, ins: f"{x[0]}.permute(0, {', '.join(str(d + 1) for d in a['dims'])})"),
    onnx=lambda e, n, xs: [e.op("Transpose", xs, perm=[0] + [d + 1 for d in n.attrs["dims"]])],
    example="permute((1, 2, 0))", rule="axes reordered"))


def _shuffle_shape(a, ins):
    c = need_rank(ins, 3, "channel_shuffle")[0]
    if isinstance(c, int) and c % a["groups"]:
        raise OpError(f"channel_shuffle groups={a['groups']} does not divide {c} channels")
    return [ins[0]], []


def _shuffle_onnx(e, n, xs):
    g = n.attrs["groups"]
    c = e.in_shape(n)[0]
    grouped = e.op("Reshape", [xs[0], e.ints([0, g, c // g, -1])])
    swapped = e.op("Transpose", [grouped], perm=[0, 2, 1, 3])
    return [e.op("Reshape", [swapped, e.op("Shape", xs)])]


register(OpSpec(
    "channel_shuffle", (Attr("groups", minimum=1),), "ShuffleNet's channel shuffle across groups.", _shuffle_shape,
    family="shape",
    torch=TorchSpec(functional=lambda a, x, ins:
                    f"{x[0]}.unflatten(1, ({a['groups']}, -1)).transpose(1, 2).flatten(1, 2)"),
    onnx=_shuffle_onnx, example="channel_shuffle(2)", rule="shape unchanged"))


def _chunk_shape(a, ins):
    c = ins[0][0]
    n = a["chunks"]
    if n < 1:
        raise OpError("chunk needs at least one chunk")
    if isinstance(c, int) and c % n:
        raise OpError(f"chunk({n}) of {c} channels is uneven", f"use a channel count divisible by {n}")
    part = c // n if isinstance(c, int) else f"{c}/{n}"
    return [(part, *ins[0][1:])] * n, []


def _chunk_onnx(e, n, xs):
    k = n.attrs["chunks"]
    if k == 1:
        return [xs[0]]
    part = n.shapes[0][0]
    if not isinstance(part, int):
        raise ArchError("chunk of an unknown number of channels cannot be exported to ONNX", n.span)
    return list(e.op("Split", [xs[0], e.ints([part] * k)], k, axis=1))


register(OpSpec(
    "chunk", (Attr("chunks", minimum=1),), "Split along the channel axis into equal parts (several outputs).",
    _chunk_shape, family="shape", traits=_VIEW,
    torch=TorchSpec(functional=lambda a, x, ins: f"{x[0]}.chunk({a['chunks']}, dim=1)"),
    onnx=_chunk_onnx, example="a, b = x -> chunk(2)",
    examples=(Example("a, b = x -> chunk(2)\n output s = add(a, b)\n output p = mul(a, b)"),
              Example("a, b, c = x -> chunk(3)\n output first = a\n output last = c -> relu", (6, 5, 5),
                      id="chunk_outputs")),
    rule="[C, H, W] -> chunks x [C/chunks, H, W]"))

register(OpSpec(
    "identity", (), "Pass the input through unchanged.", same_shape, family="shape", traits=_VIEW,
    torch=TorchSpec("nn.Identity", functional=lambda a, x, ins: x[0]), onnx=lambda e, n, xs: [xs[0]],
    example="add { conv(64, 3, pad=1) | identity }", examples=(Example("identity -> relu"),),
    rule="shape unchanged"))


# ------------------------------------------------------------------------------------- upsample, resize


def _upsample_normalize(a, ins):
    """A size as a pair; a whole scale as an int (scale_factor=2, not 2.0, in the generated module)."""
    if a["size"] is not None:
        return {**a, "size": pair(a["size"])}
    s = a["scale"]
    if isinstance(s, float) and math.isfinite(s) and s > 0 and s == int(s):
        return {**a, "scale": int(s)}
    return a


def _upsample_shape(a, ins):
    c, h, w = need_rank(ins, 3, "upsample")
    if a["size"] is not None:
        return [(c, *a["size"])], []
    s = a["scale"]
    if isinstance(s, (tuple, list)):
        raise OpError("upsample scale must be one number")
    if not (math.isfinite(s) and s > 0):
        raise OpError(f"upsample scale {s} must be a positive number")
    return [(c, *(_scaled(d, s, axis) for d, axis in ((h, "height"), (w, "width"))))], []


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


def _mode_args(a) -> dict:
    return {"mode": a["mode"], **({"align_corners": a["align_corners"]} if a["mode"] == "bilinear" else {})}


def _upsample_args(a, ins) -> dict:
    what = {"size": a["size"]} if a["size"] is not None else {"scale_factor": a["scale"]}
    return {**what, **_mode_args(a)}


def _resize_mode(a) -> dict:
    if a["mode"] == "nearest":  # PyTorch: src = floor(dst / scale)
        return dict(mode="nearest", coordinate_transformation_mode="asymmetric", nearest_mode="floor")
    return dict(mode="linear", coordinate_transformation_mode="align_corners" if a["align_corners"] else "half_pixel")


def _check_float32_scale(n, sizes, s) -> None:
    """Resize scales are float32: onnxruntime computes floor(H * scale) in single precision and
    onnx's shape inference in double precision of the float32 scale, while PyTorch multiplies
    in double precision (of 0.7 and 90 it makes 62, onnxruntime 63; of 0.7 and 10, 7 and onnx 6).
    Sizes instead of scales would change the coordinates PyTorch uses (the scale, not out / in),
    so a scale on which they disagree is refused."""
    import numpy as np  # only when lowering to ONNX: check and summary do not load numpy
    s32 = np.float32(s)
    hint = "use a scale that is exact in binary (1.5, 0.75, 1.25, 0.625) or give the output size=(h, w)"
    for d, out, axis in zip(sizes, n.shape[1:], ("height", "width")):
        if not isinstance(d, int):
            if float(s32) != s:
                raise ArchError(f"upsample scale {s} of a map of unknown size cannot be exported to ONNX exactly: "
                                f"Resize takes single-precision scales, where it is {float(s32):.9g}", n.span, hint)
            continue
        onnx_sizes = {int(s32 * np.float32(d)), math.floor(float(s32) * d)}
        if onnx_sizes != {out}:
            other = min(onnx_sizes - {out})
            raise ArchError(f"upsample scale {s} of the {axis} {d} gives {out} in PyTorch but {other} in ONNX, "
                            f"whose Resize takes single-precision scales (where it is {float(s32):.9g})",
                            n.span, hint)


def _upsample_onnx(e, n, xs):
    a = n.attrs
    attrs = _resize_mode(a)
    if a["size"] is None:
        s = a["scale"]
        _check_float32_scale(n, e.in_shape(n)[1:], s)
        return [e.op("Resize", [xs[0], "", e.const([1.0, 1.0, s, s])], **attrs)]
    lead = e.op("Slice", [e.op("Shape", xs), e.ints([0]), e.ints([2])])  # batch and channels
    sizes = e.op("Concat", [lead, e.ints(a["size"])], axis=0)
    return [e.op("Resize", [xs[0], "", "", sizes], **attrs)]


def _upsample_label(op: str, a: dict, ins: list) -> str:
    size = f"{label_kernel(a['size'])}" if a.get("size") is not None else f"x{label_num(a['scale'])}"
    return f"upsample {size} {a['mode']}"


register(OpSpec(
    "upsample", (Attr("scale", "number", 2, doc="a factor, whole or not (1.5, 0.5): the output is floor(H * scale)"),
                 Attr("mode", "str", "nearest", ("nearest", "bilinear")),
                 Attr("size", "pair", None, minimum=1), Attr("align_corners", "bool", False)),
    "Resize by a scale factor or to a size (nn.Upsample).  As in PyTorch, a fractional scale maps "
    "output pixels to input coordinates by the scale itself, not by the ratio of the sizes.  ONNX "
    "takes scales in single precision: an export refuses a scale that is inexact there and gives "
    "another size (0.7 of 90); binary fractions (1.5, 0.75) are exact.", _upsample_shape, family="shape",
    normalize=_upsample_normalize, traits={Trait.FRESH_OUTPUT},
    rf=lambda a: RF.window(1, 1 / a["scale"]) if a["size"] is None else RESAMPLE,
    torch=TorchSpec("nn.Upsample", _upsample_args, functional="F.interpolate"),
    onnx=_upsample_onnx, label=_upsample_label, example='upsample(2, mode="bilinear")',
    examples=(Example("upsample(2)"), Example('upsample(2, mode="bilinear")', id="upsample_bilinear"),
              Example('upsample(3, mode="bilinear", align_corners=true)', id="upsample_align"),
              Example("upsample(size=(13, 20))", id="upsample_size"),
              Example('upsample(size=(5, 12), mode="bilinear")', (4, 9, 7), id="upsample_size_bilinear")),
    rule="[C, H, W] -> [C, floor(H*scale), floor(W*scale)] (or [C, *size])"))


def _resize_shape(a, ins):
    c = need_rank(ins[:1], 3, "resize")[0]
    _, h, w = need_rank(ins[1:], 3, "resize", "'to' names an image [C, H, W] whose height and width the output takes")
    return [(c, h, w)], []


def _resize_onnx(e, n, xs):
    """Batch and channels of the input, height and width of ``to``: both read at run time."""
    lead = e.op("Slice", [e.op("Shape", xs[:1]), e.ints([0]), e.ints([2])])
    size = e.op("Slice", [e.op("Shape", xs[1:]), e.ints([2]), e.ints([4])])
    sizes = e.op("Concat", [lead, size], axis=0)
    return [e.op("Resize", [xs[0], "", "", sizes], **_resize_mode(n.attrs))]


def _resize_fn(a, x, ins):
    mode = "".join(f", {k}={v!r}" for k, v in _mode_args(a).items())
    return f"F.interpolate({x[0]}, size={x[1]}.shape[-2:]{mode})"


register(OpSpec(
    "resize", (Attr("to", "tensor", doc="the tensor whose height and width the output takes"),
               Attr("mode", "str", "nearest", ("nearest", "bilinear")), Attr("align_corners", "bool", False)),
    "Resize to the height and width of another tensor, read when the network runs, so the network "
    "takes any input size (torchvision's segmentation heads: F.interpolate(x, size=image.shape[-2:])).",
    _resize_shape, family="shape", rf=lambda a: RESAMPLE, torch=TorchSpec(functional=_resize_fn),
    onnx=_resize_onnx, example='resize(to=x, mode="bilinear")',
    examples=(Example("conv(4, 3, stride=2, pad=1) -> resize(to=x)"),
              Example('maxpool(2) -> resize(to=x, mode="bilinear")', (4, 9, 7), id="resize_bilinear"),
              Example('conv(6, 3, stride=3) -> resize(to=x, mode="bilinear", align_corners=true)', (4, 10, 8),
                      id="resize_align")),
    rule="[C, H, W] -> [C, to.h, to.w]"))


# ------------------------------------------------------------------------------------- pad, crop


def _pad_normalize(a, ins):
    """Any of the pad spellings as (left, right, top, bottom)."""
    p = a["pad"]
    p = (p,) * 4 if isinstance(p, int) else tuple(p)
    if len(p) == 1:
        p = p * 4
    if len(p) == 2:
        p = (p[1], p[1], p[0], p[0])  # (ph, pw) -> left, right, top, bottom
    if len(p) != 4:
        raise OpError("pad takes an int, (ph, pw) or (left, right, top, bottom)")
    return {**a, "pad": p}


def _pad_shape(a, ins):
    c, h, w = need_rank(ins, 3, "pad")
    l, r, t, b = a["pad"]
    grow = (lambda d, n: d + n if isinstance(d, int) else f"{d}{n:+d}")
    out = (c, grow(h, t + b), grow(w, l + r))
    if any(isinstance(d, int) and d <= 0 for d in out):
        raise OpError(f"pad {a['pad']} leaves an empty map {fmt_shape(out)}")
    return [out], []


def _pad_onnx(e, n, xs):
    a = n.attrs
    left, right, top, bottom = a["pad"]
    ins = [xs[0], e.ints([0, 0, top, left, 0, 0, bottom, right])]
    if a["mode"] == "constant" and a["value"]:
        ins.append(e.const(a["value"]))
    return [e.op("Pad", ins, mode={"replicate": "edge"}.get(a["mode"], a["mode"]))]


register(OpSpec(
    "pad", (Attr("pad", "ints"), Attr("value", "float", 0.0),
            Attr("mode", "str", "constant", ("constant", "reflect", "replicate"))),
    "Pad the spatial axes: int, (ph, pw) or (left, right, top, bottom).", _pad_shape, family="shape",
    normalize=_pad_normalize,
    torch=TorchSpec(functional=lambda a, x, ins: f"F.pad({x[0]}, {list(a['pad'])!r}"
                    + (f", mode={a['mode']!r}" if a["mode"] != "constant" else "")
                    + (f", value={a['value']!r}" if a["value"] else "") + ")"),
    onnx=_pad_onnx, example="pad((0, 1, 0, 1))",
    examples=(Example("pad((1, 2, 0, 3))"), Example("pad((2, 1), value=0.5)", id="pad_value"),
              Example('pad((1, 2), mode="reflect")', id="pad_reflect"),
              Example('pad((2, 1, 0, 3), mode="replicate")', id="pad_replicate")),
    rule="[C, H, W] -> [C, H + top + bottom, W + left + right]"))


def _crop_normalize(a, ins):
    return {**a, "size": pair(a["size"]), "offset": pair(a["offset"]) if a["offset"] is not None else None}


def _crop_shape(a, ins):
    c, h, w = need_rank(ins, 3, "crop")
    th, tw = a["size"]
    if a["offset"] is None:
        for have, want, ax in ((h, th, "height"), (w, tw, "width")):
            if isinstance(have, int) and want > have:
                raise OpError(f"crop to {want} is larger than the {ax} {have}")
    else:
        for have, want, at, ax in ((h, th, a["offset"][0], "height"), (w, tw, a["offset"][1], "width")):
            if isinstance(have, int) and at + want > have:
                raise OpError(f"crop of {want} at offset {at} runs past the {ax} {have}",
                              f"the crop needs offset + size <= {have}")
    return [(c, th, tw)], []


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


def _crop_onnx(e, n, xs):
    th, tw = n.attrs["size"]
    _, h, w = e.in_shape(n)
    if n.attrs["offset"] is not None or known(h, w):
        top, left = n.attrs["offset"] or ((h - th) // 2, (w - tw) // 2)
        return [e.op("Slice", [xs[0], e.ints([top, left]), e.ints([top + th, left + tw]), e.ints([2, 3])])]
    hw = e.op("Slice", [e.op("Shape", xs), e.ints([2]), e.ints([4])])
    start = e.op("Div", [e.op("Sub", [hw, e.ints([th, tw])]), e.ints([2])])
    end = e.op("Add", [start, e.ints([th, tw])])
    return [e.op("Slice", [xs[0], start, end, e.ints([2, 3])])]


register(OpSpec(
    "crop", (Attr("size", "pair", doc="output (h, w)", minimum=1),
             Attr("offset", "pair", None, doc="top-left corner (y, x) of the crop; default: centred")),
    "Crop of the spatial axes: centred (U-Net's skip connections) or at an offset (FCN's crop).",
    _crop_shape, family="shape", normalize=_crop_normalize, torch=TorchSpec(functional=_crop_fn),
    onnx=_crop_onnx, label=lambda op, a, ins: f"{op} {label_kernel(a['size'])}", example="crop(56)",
    examples=(Example("crop(5)"), Example("crop((4, 7))", id="crop_uneven"),
              Example("crop((4, 6), offset=(5, 1))", id="crop_offset")),
    rule="[C, H, W] -> [C, h, w]"))


# ------------------------------------------------------------------------------------- pixel_shuffle


def _pixel_shuffle_shape(a, ins):
    c, h, w = need_rank(ins, 3, "pixel_shuffle")
    r = a["factor"]
    if isinstance(c, int) and c % (r * r):
        raise OpError(f"pixel_shuffle({r}) needs channels divisible by {r * r}, got {c}",
                      f"make the conv before it give a multiple of {r * r} channels")
    grow = (lambda d: d * r if isinstance(d, int) else f"{d}*{r}")
    return [(c // (r * r) if isinstance(c, int) else f"{c}/{r * r}", grow(h), grow(w))], []


register(OpSpec(
    "pixel_shuffle", (Attr("factor", "int", doc="the upscale factor r", minimum=1),),
    "Sub-pixel upsampling (nn.PixelShuffle, ESPCN): r*r channels become an r x r block of pixels.",
    _pixel_shuffle_shape, family="shape", rf=lambda a: RF.window(1, 1 / a["factor"]),
    torch=TorchSpec("nn.PixelShuffle", lambda a, ins: {"upscale_factor": a["factor"]}, positional=1,
                    functional="F.pixel_shuffle"),
    # PyTorch's channel order is ONNX's column-row-depth mode
    onnx=lambda e, n, xs: [e.op("DepthToSpace", xs, blocksize=n.attrs["factor"], mode="CRD")],
    example="pixel_shuffle(2)",
    examples=(Example("pixel_shuffle(2)", (8, 5, 4)), Example("conv(18, 1) -> pixel_shuffle(3)", id="pixel_shuffle_3")),
    rule="[C, H, W] -> [C/r^2, H*r, W*r]"))
