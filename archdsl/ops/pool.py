"""Pooling: windowed, adaptive and global."""
from __future__ import annotations


from .arith import conv_dim, known, need_rank, one, pair, torch_kwargs
from .spec import GLOBAL, RF, Attr, Example, OpError, OpSpec, TorchSpec, Trait, label_kernel, label_stride, register


def _window_normalize(a, ins):
    """Pairs; the stride defaults to the kernel; avgpool takes dilation 1 (the ONNX lowering
    shares maxpool's window arithmetic)."""
    kernel = pair(a["kernel"])
    return {**a, "kernel": kernel, "stride": pair(a["stride"]) if a["stride"] is not None else kernel,
            "pad": pair(a["pad"]), "dilation": pair(a.get("dilation", 1))}


def _pool_shape(name):
    def shape(a, ins):
        c, h, w = need_rank(ins, 3, name)
        for k, p in zip(a["kernel"], a["pad"]):
            if p * 2 > k:
                raise OpError(f"{name} pad {p} must be at most half the kernel {k}",
                              "PyTorch refuses larger padding for pooling")
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["pad"], a["dilation"]
        ceil, notes = a["ceil_mode"], []
        return [(c, conv_dim(h, kh, sh, ph, dh, ceil, name, notes=notes),
                 conv_dim(w, kw, sw, pw, dw, ceil, name, "width", notes=notes))], notes
    return shape


def _pool_rf(a):
    return RF.window(a["dilation"][0] * (a["kernel"][0] - 1) + 1, a["stride"][0])


def _pool_label(op: str, a: dict, ins: list) -> str:
    stride = a.get("stride") or a["kernel"]
    return f"{op} {label_kernel(a['kernel'])}{label_stride(stride)}"


def _end_pads(e, n):
    """Extra padding at the end of each spatial axis so that floor mode gives the node's output size.

    PyTorch's ceil mode adds a last window only if it starts inside the input or the left padding;
    padding the end explicitly reproduces exactly its windows and sizes.  None for symbolic sizes.
    """
    a = n.attrs
    _, *sizes = e.in_shape(n)
    _, *outs = n.shape
    if not known(*sizes, *outs):
        return None
    extra = []
    for size, out, k, s, p, d in zip(sizes, outs, a["kernel"], a["stride"], a["pad"], a["dilation"]):
        extra.append(max(0, (out - 1) * s + d * (k - 1) + 1 - size - 2 * p))
    return extra


def _maxpool_onnx(e, n, xs):
    import numpy as np  # only when lowering to ONNX: check and summary do not load numpy
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


def _avgpool_onnx(e, n, xs):
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


_WINDOW = (Attr("kernel", "pair", minimum=1), Attr("stride", "pair", None, doc="defaults to the kernel size", minimum=1),
           Attr("pad", "pair", 0))
_POOLED = frozenset({Trait.FRESH_OUTPUT})  # a fresh tensor: an activation after it may run in place

register(OpSpec(
    "maxpool", _WINDOW + (Attr("dilation", "pair", 1, minimum=1), Attr("ceil_mode", "bool", False)),
    "Max pooling (nn.MaxPool2d); the stride defaults to the kernel size.", _pool_shape("maxpool"),
    family="pool", normalize=_window_normalize, rf=_pool_rf, traits=_POOLED,
    torch=TorchSpec("nn.MaxPool2d", lambda a, ins: {"kernel_size": one(a["kernel"]), **torch_kwargs(a, [
        ("stride", "stride", one(a["kernel"])), ("pad", "padding", 0), ("dilation", "dilation", 1),
        ("ceil_mode", "ceil_mode", False)])},
        defaults={"stride": None, "padding": 0, "dilation": 1, "ceil_mode": False}, functional="F.max_pool2d"),
    onnx=_maxpool_onnx, label=_pool_label, example="maxpool(3, stride=2, pad=1)",
    examples=(Example("maxpool(2)"), Example("maxpool(3, stride=2, pad=1)", id="maxpool_pad"),
              Example("maxpool(3, stride=2, ceil_mode=true)", id="maxpool_ceil"),
              Example("maxpool(3, stride=2, pad=1, ceil_mode=true)", (4, 10, 10), id="maxpool_ceil_pad"),
              Example("maxpool(2, stride=2, pad=1, ceil_mode=true)", (4, 9, 9), id="maxpool_ceil_bigpad"),
              Example("maxpool(2, stride=1, dilation=2)", id="maxpool_dilated"),
              Example("maxpool(2, stride=2, pad=1, dilation=2, ceil_mode=true)", (4, 10, 10),
                      id="maxpool_ceil_dilated")),
    rule="[C, H, W] -> [C, (H + 2*pad - kernel) // stride + 1 (ceil with ceil_mode), ...]"))

register(OpSpec(
    "avgpool", _WINDOW + (Attr("ceil_mode", "bool", False), Attr("count_include_pad", "bool", True)),
    "Average pooling (nn.AvgPool2d); the stride defaults to the kernel size.", _pool_shape("avgpool"),
    family="pool", normalize=_window_normalize, rf=_pool_rf, traits=_POOLED,
    torch=TorchSpec("nn.AvgPool2d", lambda a, ins: {"kernel_size": one(a["kernel"]), **torch_kwargs(a, [
        ("stride", "stride", one(a["kernel"])), ("pad", "padding", 0), ("ceil_mode", "ceil_mode", False),
        ("count_include_pad", "count_include_pad", True)])},
        defaults={"stride": None, "padding": 0, "ceil_mode": False, "count_include_pad": True},
        functional="F.avg_pool2d"),
    onnx=_avgpool_onnx, label=_pool_label, example="avgpool(2)",
    examples=(Example("avgpool(2)"), Example("avgpool(3, stride=2, pad=1)", id="avgpool_pad"),
              Example("avgpool(3, stride=2, pad=1, count_include_pad=false)", id="avgpool_exclude_pad"),
              Example("avgpool(3, stride=2, ceil_mode=true)", id="avgpool_ceil"),
              Example("avgpool(3, stride=2, pad=1, ceil_mode=true)", (4, 10, 10), id="avgpool_ceil_pad"),
              Example("avgpool(3, stride=2, pad=1, ceil_mode=true, count_include_pad=false)", (4, 10, 8),
                      id="avgpool_ceil_pad_excl")),
    rule="as maxpool"))


# ------------------------------------------------------------------------------------- adaptive


def _adaptive_shape(name):
    def shape(a, ins):
        c, h, w = need_rank(ins, 3, name)
        return [(c, *a["size"])], []
    return shape


def _windows(size: int, out: int) -> list[tuple[int, int]]:
    """Adaptive pooling windows: [floor(i*L/O), ceil((i+1)*L/O))."""
    return [((i * size) // out, -((-(i + 1) * size) // out)) for i in range(out)]


def _adaptive_onnx(kind: str):
    def lower(e, n, xs):
        import numpy as np  # only when lowering to ONNX: check and summary do not load numpy
        from ..errors import ArchError

        oh, ow = n.attrs["size"]
        _, h, w = e.in_shape(n)
        pool = "AveragePool" if kind == "avg" else "MaxPool"
        if (oh, ow) == (1, 1):
            return [e.op(f"Global{pool}", xs)]
        if not known(h, w):
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
    return lower


for _kind, _cls, _fn, _examples in (
        ("avg", "AdaptiveAvgPool2d", "F.adaptive_avg_pool2d",
         (Example("adaptive_avgpool(1)", id="adaptive_avgpool_global"),
          Example("adaptive_avgpool(3)", id="adaptive_avgpool_even"),
          Example("adaptive_avgpool((4, 2))", id="adaptive_avgpool_uneven"),
          Example("adaptive_avgpool(3)", (4, 2, 1), id="adaptive_avgpool_grow"))),
        ("max", "AdaptiveMaxPool2d", "F.adaptive_max_pool2d",
         (Example("adaptive_maxpool(1)", id="adaptive_maxpool_global"),
          Example("adaptive_maxpool(3)", id="adaptive_maxpool_even"),
          Example("adaptive_maxpool((4, 5))", id="adaptive_maxpool_uneven")))):
    _name = f"adaptive_{_kind}pool"
    register(OpSpec(
        _name, (Attr("size", "pair", doc="output size, int or (h, w)", minimum=1),),
        f"Adaptive pooling to a fixed output size (nn.{_cls}).", _adaptive_shape(_name), family="pool",
        normalize=lambda a, ins: {**a, "size": pair(a["size"])}, rf=lambda a: GLOBAL, traits=_POOLED,
        torch=TorchSpec(f"nn.{_cls}", lambda a, ins: {"output_size": one(a["size"])}, positional=1, functional=_fn),
        onnx=_adaptive_onnx(_kind), label=lambda op, a, ins: f"{op} {label_kernel(a['size'])}",
        example=f"{_name}(1)", examples=_examples, rule="[C, H, W] -> [C, size, size]"))


# ------------------------------------------------------------------------------------- global


def _global_shape(a, ins):
    c, h, w = need_rank(ins, 3, "global pooling")
    return ([(c, 1, 1)] if a["keepdim"] else [(c,)]), []


def _global_onnx(pool: str):
    def lower(e, n, xs):
        y = e.op(pool, xs)
        return [y if n.attrs["keepdim"] else e.op("Flatten", [y], axis=1)]
    return lower


for _name, _doc, _method, _pool, _examples in (
        ("global_avgpool", "Mean over the spatial axes.", "mean", "GlobalAveragePool",
         (Example("global_avgpool"), Example("global_avgpool(keepdim=false)", id="global_avgpool_flat"))),
        ("global_maxpool", "Maximum over the spatial axes.", "amax", "GlobalMaxPool",
         (Example("global_maxpool(keepdim=false)"),))):
    register(OpSpec(
        _name, (Attr("keepdim", "bool", True),), _doc, _global_shape, family="pool", rf=lambda a: GLOBAL,
        torch=TorchSpec(functional=lambda a, x, ins, _m=_method:
                        f"{x[0]}.{_m}((2, 3){', keepdim=True' if a['keepdim'] else ''})"),
        onnx=_global_onnx(_pool), example="global_avgpool(keepdim=false)" if _name == "global_avgpool" else _name,
        examples=_examples, rule="[C, H, W] -> [C, 1, 1] (or [C] with keepdim=false)"))
