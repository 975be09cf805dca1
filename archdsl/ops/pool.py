"""Pooling: windowed, adaptive and global."""
from __future__ import annotations

from . import Attr, OpError, OpSpec, conv_dim, need_rank, pair, register
from .conv import _k, _kw


def _pool_shape(name):
    def shape(a, ins):
        c, h, w = need_rank(ins, 3, name)
        a["kernel"] = pair(a["kernel"])
        a["stride"] = pair(a["stride"] if a["stride"] is not None else a["kernel"])
        a["pad"] = pair(a["pad"])
        a["dilation"] = pair(a.get("dilation", 1))
        for k, p in zip(a["kernel"], a["pad"]):
            if p * 2 > k:
                raise OpError(f"{name} pad {p} must be at most half the kernel {k}",
                              "PyTorch refuses larger padding for pooling")
        (kh, kw), (sh, sw), (ph, pw), (dh, dw) = a["kernel"], a["stride"], a["pad"], a["dilation"]
        ceil = a["ceil_mode"]
        return [(c, conv_dim(h, kh, sh, ph, dh, ceil, name), conv_dim(w, kw, sw, pw, dw, ceil, name, "width"))]
    return shape


def _pool_rf(a):
    return (a["dilation"][0] * (a["kernel"][0] - 1) + 1, a["stride"][0])


def _maxpool_torch(a, ins):
    extra = _kw(a, [("stride", "stride", _k(a["kernel"])), ("pad", "padding", 0),
                    ("dilation", "dilation", 1), ("ceil_mode", "ceil_mode", False)])
    return f"nn.MaxPool2d(kernel_size={_k(a['kernel'])!r}{extra})"


def _avgpool_torch(a, ins):
    extra = _kw(a, [("stride", "stride", _k(a["kernel"])), ("pad", "padding", 0),
                    ("ceil_mode", "ceil_mode", False), ("count_include_pad", "count_include_pad", True)])
    return f"nn.AvgPool2d(kernel_size={_k(a['kernel'])!r}{extra})"


_WINDOW = (Attr("kernel", "pair"), Attr("stride", "pair", None, doc="defaults to the kernel size"),
           Attr("pad", "pair", 0))

register(OpSpec(
    "maxpool", _WINDOW + (Attr("dilation", "pair", 1), Attr("ceil_mode", "bool", False)),
    "Max pooling (nn.MaxPool2d); the stride defaults to the kernel size.", _pool_shape("maxpool"),
    rf=_pool_rf, torch_module=_maxpool_torch, family="pool", example="maxpool(3, stride=2, pad=1)",
    rule="[C, H, W] -> [C, (H + 2*pad - kernel) // stride + 1 (ceil with ceil_mode), ...]"))

register(OpSpec(
    "avgpool", _WINDOW + (Attr("ceil_mode", "bool", False), Attr("count_include_pad", "bool", True)),
    "Average pooling (nn.AvgPool2d); the stride defaults to the kernel size.", _pool_shape("avgpool"),
    rf=_pool_rf, torch_module=_avgpool_torch, family="pool", example="avgpool(2)",
    rule="as maxpool"))


def _adaptive_shape(name):
    def shape(a, ins):
        c, h, w = need_rank(ins, 3, name)
        a["size"] = pair(a["size"])
        return [(c, *a["size"])]
    return shape


for _name, _cls in (("adaptive_avgpool", "AdaptiveAvgPool2d"), ("adaptive_maxpool", "AdaptiveMaxPool2d")):
    register(OpSpec(
        _name, (Attr("size", "pair", doc="output size, int or (h, w)"),),
        f"Adaptive pooling to a fixed output size (nn.{_cls}).", _adaptive_shape(_name),
        rf=lambda a: "global", family="pool", example=f"{_name}(1)",
        torch_module=lambda a, ins, _cls=_cls: f"nn.{_cls}({_k(a['size'])!r})",
        rule="[C, H, W] -> [C, size, size]"))


def _global_shape(a, ins):
    c, h, w = need_rank(ins, 3, "global pooling")
    return [(c, 1, 1)] if a["keepdim"] else [(c,)]


register(OpSpec(
    "global_avgpool", (Attr("keepdim", "bool", True),), "Mean over the spatial axes.", _global_shape,
    rf=lambda a: "global", family="pool", example="global_avgpool(keepdim=false)",
    torch_fn=lambda a, x, ins: f"{x[0]}.mean((2, 3){', keepdim=True' if a['keepdim'] else ''})",
    rule="[C, H, W] -> [C, 1, 1] (or [C] with keepdim=false)"))

register(OpSpec(
    "global_maxpool", (Attr("keepdim", "bool", True),), "Maximum over the spatial axes.", _global_shape,
    rf=lambda a: "global", family="pool", example="global_maxpool",
    torch_fn=lambda a, x, ins: f"{x[0]}.amax((2, 3){', keepdim=True' if a['keepdim'] else ''})",
    rule="[C, H, W] -> [C, 1, 1] (or [C] with keepdim=false)"))
