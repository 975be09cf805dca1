"""Programs that are legal but probably not what was meant: each gets a warning that says how it
was read and how to write the other reading; the intended forms get none."""
from __future__ import annotations

import re
from pathlib import Path

import pytest

import archdsl
from archdsl.tools.cli import main
from archdsl.errors import ArchError


def check(text: str, strict: bool = False):
    """(network, warnings as rendered text)."""
    net = archdsl.loads(text, "t.arch", strict=strict).network()
    return net, [d.render(net.diagnostics.sources) for d in net.diagnostics.warnings]


def one_op(stage: str, shape: str = "[16, 8, 8]") -> str:
    return f"network n() {{\n    input x: {shape}\n    x -> {stage}\n}}"


# ------------------------------------------------------------------ implausible arguments


def test_bn_with_a_channel_count_says_it_was_taken_as_eps():
    net, warnings = check(one_op("bn(16)"))
    assert len(warnings) == 1
    w = warnings[0]
    assert "t.arch:3:13: warning: bn(16): 16 is taken as eps (the first argument of bn)" in w
    assert "hint: bn infers its channels from its input: leave out 16, or write eps=1e-05 to set eps" in w
    node = next(n for n in net.nodes if n.op == "bn")
    assert node.attrs["eps"] == 16.0  # a warning, not a change of meaning


def test_group_norm_with_torch_arguments_names_the_second_argument():
    _, warnings = check(one_op("group_norm(4, 16)"))
    assert len(warnings) == 1 and "64" not in warnings[0]
    assert "16 is taken as eps (the second argument of group_norm)" in warnings[0]


def test_momentum_outside_zero_one_and_a_large_slope():
    _, warnings = check(one_op("bn(momentum=2) -> leaky_relu(5)"))
    assert len(warnings) == 2
    assert "bn(momentum=2): momentum 2.0 is outside the usual range, 0 to 1" in warnings[0]
    assert "decay of 0.99 is momentum 0.01" in warnings[0]
    assert "leaky_relu(5): 5 is taken as slope (the first argument of leaky_relu)" in warnings[1]
    assert "slope is usually from 0 to 1" in warnings[1]


@pytest.mark.parametrize("stage", ["bn", "bn(eps=0.001)", "bn(0.001, 0.0003)", "bn(momentum=1)",
                                   "group_norm(4)", "group_norm(4, 1e-6)", "layer_norm(eps=1e-6)",
                                   "leaky_relu(0.2)"])
def test_plausible_arguments_give_no_warning(stage):
    assert check(one_op(stage))[1] == []


def test_strict_makes_the_warning_an_error():
    with pytest.raises(ArchError, match="16 is taken as eps"):
        check(one_op("bn(16)"), strict=True)


# ------------------------------------------------------------------ channels-last inputs


@pytest.mark.parametrize("shape,fix", [("[32, 32, 3]", "[3, 32, 32]"), ("[28, 28, 1]", "[1, 28, 28]"),
                                       ("[64, 64, 4]", "[4, 64, 64]")])
def test_channels_last_input_is_flagged(shape, fix):
    _, warnings = check(one_op("relu", shape))
    assert len(warnings) == 1
    assert f"input x: {shape} is read as {shape[1:3]} channels" in warnings[0]
    assert f"write {fix}" in warnings[0]


@pytest.mark.parametrize("shape", ["[3, 32, 32]", "[1, 28, 28]", "[8, 8, 3]", "[16, 8, 4]", "[3, H, W]"])
def test_channels_first_and_ambiguous_inputs_are_not(shape):
    assert check(one_op("relu", shape))[1] == []


# ------------------------------------------------------------------ 'in' and 'flow' in a block

BLOCK = """
block b() {{ conv(8, 1) -> conv({arg}, 1) }}
network n() {{
    input x: [3, 16, 16]
    x -> b() -> b()
}}"""


def test_in_is_the_block_input_everywhere_in_its_body_and_says_so_where_the_flow_differs():
    net, warnings = check(BLOCK.format(arg="in.channels"))
    assert net.shape_of(net.outputs["output"]) == (3, 16, 16)  # the block's input: 3 channels
    assert len(warnings) == 1  # once for the block, not once per use
    w = warnings[0]
    assert "t.arch:2:32: warning: 'in' is the input of block 'b' ([3, 16, 16]), not the tensor flowing " \
           "into this stage ([8, 16, 16])" in w
    assert "hint: here in.channels is 3; write flow.channels for the tensor flowing in (8)" in w


def test_flow_is_the_tensor_flowing_in_and_never_warns():
    net, warnings = check(BLOCK.format(arg="flow.channels * 2"))
    assert net.shape_of(net.outputs["output"]) == (16, 16, 16)
    assert warnings == []


def test_no_warning_where_both_readings_agree():
    # the residual idiom: in.channels inside an add branch, where the flow is the block's input;
    # and a stage that keeps the channel count (the readings of in.channels agree)
    text = """
block res(out, stride = 1) {
    let c = in.channels
    add { conv(out, 3, stride=stride, pad=1) -> conv(out, 3, pad=1) | if stride != 1 or in.channels != out { conv(out, 1, stride=stride) } }
    -> relu -> conv(c, 1) -> conv(in.channels, 1)
}
network n() {
    input x: [8, 16, 16]
    x -> res(8) -> res(16, stride=2) -> conv(in.channels * 2, 1)
}"""
    net, warnings = check(text)
    assert warnings == []
    assert net.shape_of(net.outputs["output"]) == (16, 8, 8)  # outside blocks 'in' is the flow


def test_in_starting_a_pipeline_in_a_block_starts_from_the_block_input():
    text = """
block b() {
    conv(8, 1)
    in -> relu
}
network n() {
    input x: [3, 16, 16]
    x -> b()
}"""
    net, warnings = check(text)
    assert net.shape_of(net.outputs["output"]) == (3, 16, 16)
    assert len(warnings) == 1 and "leave out 'in ->'" in warnings[0]


def test_block_arguments_read_in_where_the_block_is_called():
    text = """
block widen(c) { conv(c, 1) }
block outer() { conv(4, 1) -> widen(flow.channels * 2) -> widen(in.channels * 2) }
network n() {
    input x: [3, 16, 16]
    x -> outer()
}"""
    net, warnings = check(text)
    convs = [n.attrs["out"] for n in net.nodes if n.op == "conv"]
    assert convs == [4, 8, 6]
    assert len(warnings) == 1 and "here in.channels * 2 is 6" in warnings[0]


def test_a_tensor_named_flow_wins_over_the_builtin_name():
    text = """
network n() {
    input x: [3, 16, 16]
    flow = x -> conv(5, 1)
    x -> conv(flow.channels, 1)
}"""
    net, warnings = check(text)
    assert net.shape_of(net.outputs["output"]) == (5, 16, 16) and warnings == []


# ------------------------------------------------------------------ archdsl ops NAME


@pytest.mark.parametrize("name,fix", [("batchnorm", "'bn'"), ("BatchNorm2d", "'bn'"), ("conv2d", "'conv'"),
                                      ("Sequential", "'seq'"), ("maxpol", "'maxpool'")])
def test_ops_suggests_for_pytorch_spellings(name, fix, capsys):
    assert main(["ops", name]) == 1
    err = capsys.readouterr().err
    assert f"error: no op '{name}'" in err and fix in err and "Traceback" not in err


# ------------------------------------------------------------------ the reference says the same

LANGUAGE = (Path(__file__).resolve().parents[2] / "docs" / "language.md").read_text(encoding="utf-8")


def test_language_reference_example_of_in_and_flow_computes_what_its_comments_say():
    block = next(b for b in re.findall(r"^```arch\n(.*?)^```", LANGUAGE, re.S | re.M) if "flow.channels" in b)
    net, warnings = check(block)
    assert warnings == []
    stage = next(s for s in net.root.items if getattr(s, "block", None) == "stage")
    assert net.shape_of(stage.outputs[0]) == (6, 32, 32)
    assert [n.attrs["out"] for n in net.nodes if n.op == "conv"][:2] == [16, 32]
    assert net.shape_of(net.outputs["output"]) == (12, 32, 32)


def test_language_reference_shows_the_warning_archdsl_gives():
    shown = re.search(r"^```text\n(t\.arch:.*?)^```", LANGUAGE, re.S | re.M).group(1)
    program = BLOCK.format(arg="in.channels").replace("-> b() -> b()", "-> b()").lstrip("\n")
    _, warnings = check(program)
    assert warnings[0].startswith(shown.rstrip("\n"))
