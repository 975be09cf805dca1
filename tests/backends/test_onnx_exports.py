"""Exports that a runtime must run (issue 14): every transposed convolution PyTorch accepts, and
fractional upsampling scales, checked against PyTorch AND onnxruntime, shapes and values.

The grids are exhaustive over small values because the bugs live at the edges: output_padding
at or above the stride (allowed by PyTorch below the dilation), and sizes where floor matters.
"""
from __future__ import annotations

import itertools
import math

import onnx
import pytest
from onnx_parity import assert_shapes_agree, feeds, one_op, randomise, rel_error, run_ort, torch_outputs

import archdsl
from archdsl.backends.onnx import export
from archdsl.errors import ArchError

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")


def check(net, tmp_path, sizes=None) -> onnx.ModelProto:
    """PyTorch's module and onnxruntime agree on the output's shape (also archdsl's and onnx's
    inferred one) and values; ``sizes`` runs a symbolic input at those sizes."""
    module = net.to_torch().eval()
    randomise(module)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    model = export(net, weights=str(tmp_path / "w.pt"), dynamic_batch=sizes is not None)
    assert_shapes_agree(net, model)
    for size in sizes or [None]:
        inputs = feeds(net, 2 if sizes else 1, size)
        want = torch_outputs(module, net, inputs)[0]
        got = run_ort(model, inputs)[0]
        if size is None:
            assert want.shape[1:] == net.shape_of(net.outputs["output"])
        assert got.shape == want.shape and rel_error(got, want) < 1e-5, (size, got.shape, want.shape)
    return model


# ------------------------------------------------------------------------------------- conv_transpose


def _accepted(k, s, d, op, p, size=5) -> bool:
    """What PyTorch accepts: output_padding below stride or dilation, a positive output."""
    return op < max(s, d) and (size - 1) * s - 2 * p + d * (k - 1) + op + 1 > 0


GRID = [c for c in itertools.product((1, 2, 3), (1, 2, 3), (1, 2, 3), (0, 1, 2), (0, 1, 2)) if _accepted(*c)]


@pytest.mark.parametrize("stride", [1, 2, 3])
def test_conv_transpose_grid_runs_and_equals_torch(stride, tmp_path):
    """kernel x dilation x output_padding x padding; onnxruntime refused output_padding >= stride."""
    failures = []
    for k, s, d, op, p in (c for c in GRID if c[1] == stride):
        stage = f"conv_transpose(3, {k}, stride={s}, dilation={d}, output_padding={op}, pad={p})"
        try:
            check(one_op(stage, (2, 5, 6)), tmp_path)
        except Exception as err:  # noqa: BLE001 - collect the whole grid's failures
            failures.append(f"{stage}: {type(err).__name__}: {str(err)[:160]}")
    assert not failures, "\n".join(failures)


@pytest.mark.parametrize("stage", [
    "conv_transpose(2, 3, stride=1, dilation=2, output_padding=1)",  # the case
    "conv_transpose(4, (3, 2), stride=(1, 2), dilation=(3, 1), output_padding=(2, 1), pad=(0, 1), groups=2)",
    "conv_transpose(4, 3, stride=(2, 1), dilation=(1, 2), output_padding=(1, 1), bias=false)",
    "conv_transpose(6, 2, stride=1, dilation=3, output_padding=2, pad=1, groups=3)",
])
def test_conv_transpose_mixed_axes_groups_and_no_bias(stage, tmp_path):
    check(one_op(stage, (6, 5, 7)), tmp_path)


def test_conv_transpose_with_output_padding_over_the_stride_on_symbolic_sizes(tmp_path):
    net = one_op("conv_transpose(3, 3, stride=1, dilation=2, output_padding=1) -> relu", (2, "H", "W"))
    check(net, tmp_path, sizes=[{"H": 4, "W": 9}, {"H": 11, "W": 5}])


def test_conv_transpose_needs_no_pad_node_where_pads_suffice():
    """output_padding is folded into the end pads, or kept below the stride: one node."""
    for stage in ("conv_transpose(3, 3, stride=2, pad=1, output_padding=1)",
                  "conv_transpose(3, 3, stride=2, output_padding=1)",
                  "conv_transpose(3, 3, stride=1, dilation=2, output_padding=1, pad=1)"):
        model = export(one_op(stage, (2, 5, 5)))
        assert [n.op_type for n in model.graph.node] == ["ConvTranspose"], stage


# ------------------------------------------------------------------------------------- upsample


SCALES = [0.5, 1.5, 0.75, 1.25, 2.5, 3]


@pytest.mark.parametrize("mode", ["nearest", "bilinear", "bilinear_align"])
def test_fractional_upsample_equals_torch_and_onnxruntime(mode, tmp_path):
    """Refused as "must be a positive whole number" before; sizes where floor matters (7 x 1.5,
    7 x 0.5, 5 x 0.75) and odd/even sizes on either axis."""
    args = {"nearest": "", "bilinear": ', mode="bilinear"', "bilinear_align": ', mode="bilinear", align_corners=true'}
    failures = []
    for scale, (h, w) in itertools.product(SCALES, [(7, 7), (5, 8), (9, 6)]):
        net = one_op(f"upsample({scale}{args[mode]})", (3, h, w))
        assert net.shape_of(net.outputs["output"]) == (3, math.floor(h * scale), math.floor(w * scale))
        try:
            check(net, tmp_path)
        except Exception as err:  # noqa: BLE001 - collect the whole grid's failures
            failures.append(f"scale {scale} on {h}x{w}: {type(err).__name__}: {str(err)[:160]}")
    assert not failures, "\n".join(failures)


def test_fractional_upsample_in_the_torch_module():
    source = archdsl.loads('network t() {\n input x: [3, 7, 7]\n x -> up: upsample(1.5, mode="bilinear")\n'
                           ' -> upsample(0.5)\n}').network().torch_source()
    assert "nn.Upsample(align_corners=False, mode='bilinear', scale_factor=1.5)" in source
    assert "scale_factor=0.5" in source and "scale_factor=2.0" not in source


def test_fractional_upsample_on_symbolic_sizes(tmp_path):
    net = one_op("upsample(1.5) -> conv(2, 1)", (3, "H", "W"))
    assert net.shape_of(net.outputs["output"]) == (2, "floor(H*1.5)", "floor(W*1.5)")
    check(net, tmp_path, sizes=[{"H": 7, "W": 4}, {"H": 10, "W": 13}])


@pytest.mark.parametrize("stage, message", [
    ("upsample(0)", "must be a positive number"),
    ("upsample(-1.5)", "must be a positive number"),
    ("upsample(0.1)", "leaves nothing of the height 7: floor(7 * 0.1) = 0"),
])
def test_upsample_scales_that_leave_nothing_are_errors(stage, message):
    with pytest.raises(ArchError, match=message.replace("(", r"\(").replace(")", r"\)").replace("*", r"\*")):
        one_op(stage, (3, 7, 9))


def test_a_scale_that_single_precision_rounds_differently_is_refused_at_export():
    """floor(90 * 0.7) is 62 in double precision (PyTorch) and 63 in onnxruntime's float32;
    floor(10 * 0.7) is 7 in PyTorch and onnxruntime, 6 in onnx's shape inference."""
    for h, torch_h, onnx_h in ((90, 62, 63), (10, 7, 6)):
        net = one_op("upsample(0.7)", (3, h, 10))
        assert net.shape_of(net.outputs["output"]) == (3, torch_h, 7)
        assert net.to_torch()(torch.zeros(1, 3, h, 10)).shape == (1, 3, torch_h, 7)
        with pytest.raises(ArchError, match=f"height {h} gives {torch_h} in PyTorch but {onnx_h} in ONNX"):
            export(net)
    with pytest.raises(ArchError, match="unknown size"):
        export(one_op("upsample(0.7)", (3, "H", "W")))
    small = one_op("upsample(0.7)", (3, 21, 21))  # the same in all three: exported
    assert run_ort(export(small), feeds(small, 1))[0].shape == (1, 3, 14, 14)
