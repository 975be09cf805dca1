"""The ONNX emitter of every op, attached to the registry with ``@backend("onnx", ...)``.

An emitter is ``fn(e, n, xs) -> outs``: ``e`` is the :class:`~archdsl.backends.onnx.Emitter` to
append nodes to, ``n`` the IR node (attributes normalised by its shape rule), ``xs`` the ONNX
names of its inputs; it returns the ONNX names of the node's outputs.  Inference semantics, and
PyTorch's numerics wherever ONNX's defaults differ (hardsigmoid's slope, resize coordinates,
pooling windows in ceil mode).  Tensors carry the batch axis, so a channel axis of the ``.arch``
file is axis 1 here.
"""
from __future__ import annotations

import math

import numpy as np

from ..errors import ArchError
from ..ops import backend


def _known(*dims) -> bool:
    return all(isinstance(d, int) for d in dims)


def _spatial(a, key="pad") -> list[int]:
    ph, pw = a[key]
    return [ph, pw, ph, pw]


# ------------------------------------------------------------------------------------- conv family


@backend("onnx", "conv")
def _conv(e, n, xs):
    a = n.attrs
    ins = [xs[0], e.weight(n, "weight")]
    bias = e.weight(n, "bias")  # also present when a batch norm was folded into this conv
    if bias:
        ins.append(bias)
    return [e.op("Conv", ins, kernel_shape=list(a["kernel"]), strides=list(a["stride"]), pads=_spatial(a),
                 dilations=list(a["dilation"]), group=a["groups"])]


@backend("onnx", "conv_transpose")
def _conv_transpose(e, n, xs):
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


@backend("onnx", "linear")
def _linear(e, n, xs):
    w, b = e.weight(n, "weight"), e.weight(n, "bias")
    if len(e.in_shape(n)) == 1:  # [batch, F]: one Gemm
        return [e.op("Gemm", [xs[0], w] + ([b] if b else []), transB=1)]
    y = e.op("MatMul", [xs[0], e.op("Transpose", [w], perm=[1, 0])])
    return [e.op("Add", [y, b]) if b else y]


# ------------------------------------------------------------------------------------- normalisation


@backend("onnx", "bn")
def _bn(e, n, xs):
    if n.id in e.b.folded:
        return [xs[0]]
    c = e.in_shape(n)[0]
    scale = e.weight(n, "weight") or e.const(np.ones(c))
    bias = e.weight(n, "bias") or e.const(np.zeros(c))
    return [e.op("BatchNormalization", [xs[0], scale, bias, e.weight(n, "running_mean"),
                                         e.weight(n, "running_var")], epsilon=n.attrs["eps"])]


@backend("onnx", "lrn")
def _lrn(e, n, xs):
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


@backend("onnx", "layer_norm")
def _layer_norm(e, n, xs):
    a = n.attrs
    w, b = e.weight(n, "weight"), e.weight(n, "bias")
    if e.opset >= 17:
        return [e.op("LayerNormalization", [xs[0], w, b], axis=-a["dims"], epsilon=a["eps"])]
    axes = list(range(-a["dims"], 0))
    centred = e.op("Sub", [xs[0], e.reduce("ReduceMean", xs[0], axes)])
    var = e.reduce("ReduceMean", e.op("Mul", [centred, centred]), axes)
    std = e.op("Sqrt", [e.op("Add", [var, e.const(a["eps"])])])
    return [e.op("Add", [e.op("Mul", [e.op("Div", [centred, std]), w]), b])]


@backend("onnx", "group_norm")
def _group_norm(e, n, xs):
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


@backend("onnx", "dropout", "identity")
def _identity(e, n, xs):
    return [xs[0]]  # inference: no node at all


# ------------------------------------------------------------------------------------- activations

_SIMPLE = {"relu": "Relu", "sigmoid": "Sigmoid", "tanh": "Tanh"}


@backend("onnx", *_SIMPLE)
def _simple(e, n, xs):
    return [e.op(_SIMPLE[n.op], xs)]


@backend("onnx", "relu6")
def _relu6(e, n, xs):
    return [e.op("Clip", [xs[0], e.const(0.0), e.const(6.0)])]


@backend("onnx", "leaky_relu")
def _leaky_relu(e, n, xs):
    return [e.op("LeakyRelu", xs, alpha=n.attrs["slope"])]


@backend("onnx", "elu")
def _elu(e, n, xs):
    return [e.op("Elu", xs, alpha=n.attrs["alpha"])]


@backend("onnx", "gelu")
def _gelu(e, n, xs):
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


@backend("onnx", "silu")
def _silu(e, n, xs):
    return [e.op("Mul", [xs[0], e.op("Sigmoid", xs)])]


@backend("onnx", "hardsigmoid")
def _hardsigmoid(e, n, xs):
    return [e.op("HardSigmoid", xs, alpha=1 / 6, beta=0.5)]  # PyTorch's relu6(x + 3) / 6


@backend("onnx", "hardswish")
def _hardswish(e, n, xs):
    if e.opset >= 14:
        return [e.op("HardSwish", xs)]
    return [e.op("Mul", [xs[0], e.op("HardSigmoid", xs, alpha=1 / 6, beta=0.5)])]


@backend("onnx", "softmax")
def _softmax(e, n, xs):
    ax = n.attrs["axis"]
    return [e.op("Softmax", xs, axis=ax + 1 if ax >= 0 else ax)]


# ------------------------------------------------------------------------------------- pooling


def _end_pads(e, n):
    """Extra padding at the end of each spatial axis so that floor mode gives the node's output size.

    PyTorch's ceil mode adds a last window only if it starts inside the input or the left padding;
    padding the end explicitly reproduces exactly its windows and sizes.  None for symbolic sizes.
    """
    a = n.attrs
    _, *sizes = e.in_shape(n)
    _, *outs = n.shape
    if not _known(*sizes, *outs):
        return None
    extra = []
    for size, out, k, s, p, d in zip(sizes, outs, a["kernel"], a["stride"], a["pad"], a["dilation"]):
        extra.append(max(0, (out - 1) * s + d * (k - 1) + 1 - size - 2 * p))
    return extra


@backend("onnx", "maxpool")
def _maxpool(e, n, xs):
    a = n.attrs
    (ph, pw), extra = a["pad"], _end_pads(e, n)
    attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]))
    if a["dilation"] != (1, 1):
        attrs["dilations"] = list(a["dilation"])
    if extra is None:
        return [e.op("MaxPool", xs, pads=[ph, pw, ph, pw], ceil_mode=int(a["ceil_mode"]), **attrs)]
    pads = [ph, pw, ph + extra[0], pw + extra[1]]
    x = xs[0]
    if any(p >= k for p, k in zip(pads[2:], a["kernel"])):  # runtimes refuse pads >= kernel
        x = e.op("Pad", [x, e.ints([0, 0, *pads[:2], 0, 0, *pads[2:]]), e.const(-np.inf)])
        pads = [0, 0, 0, 0]
    return [e.op("MaxPool", [x], pads=pads, **attrs)]


@backend("onnx", "avgpool")
def _avgpool(e, n, xs):
    a = n.attrs
    (ph, pw), extra = a["pad"], _end_pads(e, n)
    attrs = dict(kernel_shape=list(a["kernel"]), strides=list(a["stride"]))
    include = int(a["count_include_pad"])
    if extra is None:
        return [e.op("AveragePool", xs, pads=[ph, pw, ph, pw], ceil_mode=int(a["ceil_mode"]),
                     count_include_pad=include, **attrs)]
    if extra == [0, 0]:
        return [e.op("AveragePool", xs, pads=[ph, pw, ph, pw], count_include_pad=include, **attrs)]
    # A ceil-mode window hanging over the end: PyTorch divides by the part inside the padded
    # input.  Pad explicitly where padding counts, then exclude the extra end padding.
    x = xs[0]
    if include and (ph or pw):
        x = e.op("Pad", [x, e.ints([0, 0, ph, pw, 0, 0, ph, pw])])
        ph = pw = 0
    return [e.op("AveragePool", [x], pads=[ph, pw, ph + extra[0], pw + extra[1]], count_include_pad=0,
                 **attrs)]


def _windows(size: int, out: int) -> list[tuple[int, int]]:
    """Adaptive pooling windows: [floor(i*L/O), ceil((i+1)*L/O))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _adaptive(e, n, xs, kind: str):
    oh, ow = n.attrs["size"]
    _, h, w = e.in_shape(n)
    pool = "AveragePool" if kind == "avg" else "MaxPool"
    if (oh, ow) == (1, 1):
        return [e.op(f"Global{pool}", xs)]
    if not _known(h, w):
        raise ArchError(f"adaptive_{kind}pool({oh}, {ow}) of a map of unknown size cannot be exported to ONNX",
                        n.span, f"use adaptive_{kind}pool(1) or give the input a fixed size")
    if h % oh == 0 and w % ow == 0:  # uniform windows: a plain pool
        k = [h // oh, w // ow]
        return [e.op(pool, xs, kernel_shape=k, strides=k)]
    x = xs[0]
    if kind == "avg":  # windows overlap or differ in size: average with matrices, one axis at a time
        if w != ow:
            cols = np.zeros((w, ow))
            for j, (s, t) in enumerate(_windows(w, ow)):
                cols[s:t, j] = 1 / (t - s)
            x = e.op("MatMul", [x, e.const(cols)])
        if h != oh:
            rows = np.zeros((oh, h))
            for i, (s, t) in enumerate(_windows(h, oh)):
                rows[i, s:t] = 1 / (t - s)
            x = e.op("MatMul", [e.const(rows), x])
        return [x]
    for axis, size, out in ((3, w, ow), (2, h, oh)):  # max: each window's slice, reduced, concatenated
        if size == out:
            continue
        parts = [e.reduce("ReduceMax", e.op("Slice", [x, e.ints([s]), e.ints([t]), e.ints([axis])]), [axis])
                 for s, t in _windows(size, out)]
        x = e.op("Concat", parts, axis=axis)
    return [x]


@backend("onnx", "adaptive_avgpool")
def _adaptive_avg(e, n, xs):
    return _adaptive(e, n, xs, "avg")


@backend("onnx", "adaptive_maxpool")
def _adaptive_max(e, n, xs):
    return _adaptive(e, n, xs, "max")


@backend("onnx", "global_avgpool", "global_maxpool")
def _global(e, n, xs):
    y = e.op("GlobalAveragePool" if n.op == "global_avgpool" else "GlobalMaxPool", xs)
    return [y if n.attrs["keepdim"] else e.op("Flatten", [y], axis=1)]


# ------------------------------------------------------------------------------------- shape ops


@backend("onnx", "flatten")
def _flatten(e, n, xs):
    start = n.attrs["start"]
    if start == 0:
        return [e.op("Flatten", xs, axis=1)]
    return [e.op("Reshape", [xs[0], e.ints([0] * (start + 1) + [-1])])]  # 0 keeps an axis


@backend("onnx", "reshape")
def _reshape(e, n, xs):
    return [e.op("Reshape", [xs[0], e.ints([0, *n.shape])])]  # the batch axis is kept


@backend("onnx", "permute")
def _permute(e, n, xs):
    return [e.op("Transpose", xs, perm=[0] + [d + 1 for d in n.attrs["dims"]])]


@backend("onnx", "channel_shuffle")
def _channel_shuffle(e, n, xs):
    g = n.attrs["groups"]
    c = e.in_shape(n)[0]
    grouped = e.op("Reshape", [xs[0], e.ints([0, g, c // g, -1])])
    swapped = e.op("Transpose", [grouped], perm=[0, 2, 1, 3])
    return [e.op("Reshape", [swapped, e.op("Shape", xs)])]


@backend("onnx", "chunk")
def _chunk(e, n, xs):
    k = n.attrs["chunks"]
    if k == 1:
        return [xs[0]]
    part = n.shapes[0][0]
    if not isinstance(part, int):
        raise ArchError("chunk of an unknown number of channels cannot be exported to ONNX", n.span)
    return list(e.op("Split", [xs[0], e.ints([part] * k)], k, axis=1))


@backend("onnx", "add", "mul")
def _elementwise(e, n, xs):
    op = "Add" if n.op == "add" else "Mul"
    y = xs[0]
    for x in xs[1:]:  # left to right, as PyTorch evaluates a + b + c
        y = e.op(op, [y, x])
    return [y]


@backend("onnx", "concat")
def _concat(e, n, xs):
    return [e.op("Concat", xs, axis=n.attrs["axis"] + 1)]


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


@backend("onnx", "upsample")
def _upsample(e, n, xs):
    a = n.attrs
    attrs = _resize_mode(a)
    if a["size"] is None:
        s = a["scale"]
        _check_float32_scale(n, e.in_shape(n)[1:], s)
        return [e.op("Resize", [xs[0], "", e.const([1.0, 1.0, s, s])], **attrs)]
    lead = e.op("Slice", [e.op("Shape", xs), e.ints([0]), e.ints([2])])  # batch and channels
    sizes = e.op("Concat", [lead, e.ints(a["size"])], axis=0)
    return [e.op("Resize", [xs[0], "", "", sizes], **attrs)]


@backend("onnx", "resize")
def _resize(e, n, xs):
    """Batch and channels of the input, height and width of ``to``: both read at run time."""
    lead = e.op("Slice", [e.op("Shape", xs[:1]), e.ints([0]), e.ints([2])])
    size = e.op("Slice", [e.op("Shape", xs[1:]), e.ints([2]), e.ints([4])])
    sizes = e.op("Concat", [lead, size], axis=0)
    return [e.op("Resize", [xs[0], "", "", sizes], **_resize_mode(n.attrs))]


@backend("onnx", "pad")
def _pad(e, n, xs):
    a = n.attrs
    left, right, top, bottom = a["pad"]
    ins = [xs[0], e.ints([0, 0, top, left, 0, 0, bottom, right])]
    if a["mode"] == "constant" and a["value"]:
        ins.append(e.const(a["value"]))
    return [e.op("Pad", ins, mode={"replicate": "edge"}.get(a["mode"], a["mode"]))]


@backend("onnx", "crop")
def _crop(e, n, xs):
    th, tw = n.attrs["size"]
    _, h, w = e.in_shape(n)
    if n.attrs["offset"] is not None or _known(h, w):
        top, left = n.attrs["offset"] or ((h - th) // 2, (w - tw) // 2)
        return [e.op("Slice", [xs[0], e.ints([top, left]), e.ints([top + th, left + tw]), e.ints([2, 3])])]
    hw = e.op("Slice", [e.op("Shape", xs), e.ints([2]), e.ints([4])])
    start = e.op("Div", [e.op("Sub", [hw, e.ints([th, tw])]), e.ints([2])])
    end = e.op("Add", [start, e.ints([th, tw])])
    return [e.op("Slice", [xs[0], start, end, e.ints([2, 3])])]
