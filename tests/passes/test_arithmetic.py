"""The course notes' arithmetic, checked against archdsl's shape and cost passes."""
from __future__ import annotations

import archdsl
from archdsl.passes.analysis import receptive_fields


def net(body: str, inp: str, **params):
    return archdsl.loads(f"network n() {{\n input x: {inp}\n {body}\n}}").network(**params)


def out_shape(n):
    return n.shape_of(n.outputs["output"])


def test_conv_output_and_parameters():
    # 32x32x3 input, 10 filters 5x5, stride 1, pad 2 -> 32x32x10; 5*5*3*10 + 10 = 760 parameters
    n = net("x -> conv(10, 5, pad=2)", "[3, 32, 32]")
    assert out_shape(n) == (10, 32, 32)
    assert n.summary().totals["params"] == 5 * 5 * 3 * 10 + 10 == 760


def test_conv_arithmetic_formula():
    assert out_shape(net("x -> conv(1, 3, pad=1)", "[1, 4, 4]")) == (1, 4, 4)
    assert out_shape(net("x -> conv(1, 3)", "[1, 7, 7]")) == (1, 5, 5)
    assert out_shape(net("x -> conv(1, 3, stride=2)", "[1, 7, 7]")) == (1, 3, 3)


def test_uneven_division_is_a_warning_with_the_arithmetic():
    n = net("x -> conv(1, 3, stride=3)", "[1, 7, 7]")
    (w,) = n.diagnostics.warnings
    assert "(7 + 2*0 - 3) / 3 + 1 = 2.33" in w.message and "1 pixel is dropped" in w.message
    assert out_shape(n) == (1, 2, 2)


def test_uneven_division_strict_is_an_error():
    import pytest

    with pytest.raises(archdsl.ArchError, match="2.33"):
        archdsl.loads("network n() { input x: [1, 7, 7]\n x -> conv(1, 3, stride=3) }", strict=True).network()


def test_parameter_counts_without_bias():
    assert net("x -> conv(64, 3, pad=1, bias=false)", "[128, 8, 8]").summary().totals["params"] == 73_728
    conv = net("x -> conv(10, 4, bias=false)", "[16, 4, 4]")
    fc = net("x -> linear(10, bias=false)", "[256]")
    assert conv.summary().totals["params"] == fc.summary().totals["params"] == 2_560
    assert out_shape(conv) == (10, 1, 1)


def test_receptive_field_of_stacked_convs():
    # three 3x3 convs see 7x7 (the VGG argument); a 2x2/2 pool doubles the jump
    n = net("x -> conv(4, 3, pad=1) -> conv(4, 3, pad=1) -> conv(4, 3, pad=1) -> maxpool(2) -> conv(4, 3, pad=1)",
            "[1, 32, 32]")
    rf = receptive_fields(n)
    sizes = [rf[node.id] for node in n.nodes]
    assert sizes[1:5] == [(3, 1), (5, 1), (7, 1), (8, 2)]
    assert sizes[5] == (12, 2)


def test_receptive_field_takes_largest_branch():
    n = net("x -> add { conv(4, 3, pad=1) -> conv(4, 3, pad=1) | conv(4, 1) }", "[4, 16, 16]")
    assert receptive_fields(n)[n.outputs["output"][0]] == (5, 1)


def test_receptive_field_after_resizing_back():
    # a stride-4 trunk, then back to the input size: neighbouring outputs are 1 input pixel apart again
    trunk = "x -> conv(4, 3, stride=2, pad=1) -> maxpool(2)"
    for tail in ("upsample(4)", "upsample(size=(32, 32))", "resize(to=x)"):
        n = net(f"{trunk} -> {tail}", "[1, 32, 32]")
        rf = receptive_fields(n)
        assert [rf[node.id] for node in n.nodes][1:] == [(3, 2), (5, 4), (5, 1)], tail


def test_dilation_and_transposed_conv():
    assert out_shape(net("x -> conv(2, 3, dilation=2)", "[1, 9, 9]")) == (2, 5, 5)  # effective kernel 5
    assert out_shape(net("x -> conv_transpose(2, 2, stride=2)", "[1, 9, 9]")) == (2, 18, 18)
    assert out_shape(net("x -> conv_transpose(2, 3, stride=2, pad=1, output_padding=1)", "[1, 8, 8]")) == (2, 16, 16)


def test_pool_ceil_mode_matches_pytorch_rule():
    # GoogLeNet: 112 -> maxpool(3, 2, ceil) -> 56; 14 -> maxpool(2, 2, ceil) -> 7
    assert out_shape(net("x -> maxpool(3, stride=2, ceil_mode=true)", "[1, 112, 112]")) == (1, 56, 56)
    assert out_shape(net("x -> maxpool(3, stride=2, ceil_mode=true)", "[1, 13, 13]")) == (1, 6, 6)
    assert out_shape(net("x -> maxpool(2, stride=2, pad=1, ceil_mode=true)", "[1, 5, 5]")) == (1, 3, 3)


def test_activation_memory_counts_layer_outputs():
    n = net("x -> conv(8, 3, pad=1) -> relu -> maxpool(2) -> flatten -> linear(10)", "[3, 8, 8]")
    t = n.summary().totals
    # input 192 + conv 512 + pool 128 + linear 10; relu and flatten alias their input
    assert t["activations"] == 192 + 512 + 128 + 10
    assert t["activation_bytes"] == 4 * t["activations"]


def test_macs():
    n = net("x -> conv(8, 3, pad=1) -> flatten -> linear(10)", "[3, 8, 8]")
    assert n.summary().totals["macs"] == 8 * 8 * 8 * 3 * 3 * 3 + 512 * 10
