"""Language features: each construct elaborates to the graph and names it should."""
from __future__ import annotations

import pytest

import archdsl
from archdsl.passes.analysis import state_dict_shapes


def load(text: str, **params):
    return archdsl.loads(text).network(**params)


def out(n, name="output"):
    return n.shape_of(n.outputs[name])


def test_constants_expressions_and_ternary():
    n = load("""
let base = 8
network n(w = 2, deep = true) {
    input x: [3, 16, 16]
    let c = base * w ** 2 // 2 + (if false then 1 else 0) - 1 % 1
    x -> conv(if deep then c else 1, 3, pad=(1, 1)) -> conv(max(c, 4) * 2, 1)
}""")
    assert out(n) == (32, 16, 16)


def test_for_loop_with_label_interpolation_and_tuple_iteration():
    n = load("""
network n() {
    input x: [4, 8, 8]
    x -> features: seq {
        for i in 1..3 { "conv{i}": conv(4 * i, 3, pad=1) }
        for c in (5, 6) { conv(c, 1) }
    }
}""")
    keys = [k for k in state_dict_shapes(n) if k.endswith("weight")]
    assert keys == ["features.conv1.weight", "features.conv2.weight", "features.conv3.weight",
                    "features.0.weight", "features.1.weight"]
    assert out(n) == (6, 8, 8)


def test_seq_numbering_counts_parameter_free_layers_like_nn_sequential():
    n = load("network n() { input x: [3, 8, 8]\n x -> f: seq { conv(4, 3) -> relu -> maxpool(2) -> conv(4, 1) } }")
    assert list(state_dict_shapes(n)) == ["f.0.weight", "f.0.bias", "f.3.weight", "f.3.bias"]


def test_if_on_incoming_shape_and_projection_shortcut():
    src = """
block basic(out, stride = 1) {
    add {
        conv1: conv(out, 3, stride=stride, pad=1, bias=false) -> bn1: bn
      | if stride != 1 or in.channels != out { downsample: seq { conv(out, 1, stride=stride, bias=false) -> bn } }
    } -> relu
}
network n() { input x: [8, 16, 16]
    x -> a: basic(8) -> b: basic(16, stride=2) }"""
    keys = state_dict_shapes(load(src))
    assert not any(k.startswith("a.downsample") for k in keys)
    assert keys["b.downsample.0.weight"] == (16, 8, 1, 1)


def test_else_branch_and_elif_chain():
    src = """
network n(mode = "b") { input x: [3, 8, 8]
    if mode == "a" { x -> conv(1, 1) } else if mode == "b" { x -> conv(2, 1) } else { x -> conv(3, 1) } }"""
    assert out(load(src)) == (2, 8, 8)
    assert out(load(src, mode="c")) == (3, 8, 8)


def test_repetition_and_labelled_repetition():
    src = "block u(c) { conv(c, 3, pad=1) -> relu }\nnetwork n() { input x: [2, 8, 8]\n x -> layer: u(4) * 3 -> u(2) * 2 }"
    keys = list(state_dict_shapes(load(src)))
    assert keys[:2] == ["layer.0.0.weight", "layer.0.0.bias"] and "layer.2.0.weight" in keys
    assert "0.0.weight" in keys and "1.0.weight" in keys  # unlabelled repeats are numbered in place


def test_named_tensors_skip_connections_and_multiple_outputs():
    n = load("""
network unet(classes = 2) {
    input x: [1, 32, 32]
    e1 = x -> conv(8, 3, pad=1) -> relu
    e2 = e1 -> maxpool(2) -> conv(16, 3, pad=1) -> relu
    u1 = e2 -> conv_transpose(8, 2, stride=2)
    output logits = concat(u1, e1) -> conv(classes, 1)
    output features = e2
}""")
    assert out(n, "logits") == (2, 32, 32) and out(n, "features") == (16, 16, 16)


def test_chunk_gives_several_tensors():
    n = load("""
network n() { input x: [8, 4, 4]
    a, b = x -> chunk(2)
    b2 = b -> conv(4, 1)
    concat(a, b2) -> channel_shuffle(2) }""")
    assert out(n) == (8, 4, 4)


def test_mul_broadcasts_for_squeeze_excitation():
    n = load("""
network n() { input x: [16, 8, 8]
    x -> mul { identity | global_avgpool -> conv(4, 1) -> relu -> conv(16, 1) -> sigmoid } }""")
    assert out(n) == (16, 8, 8)


def test_block_keyword_arguments_defaults_and_in_expressions():
    n = load("""
block widen(factor = 2, k = 1) { conv(in.channels * factor, k) }
network n() { input x: [3, 8, 8]
    x -> widen(k=3) -> widen() }""")
    assert out(n) == (12, 6, 6)


def test_network_alias_and_overrides():
    src = "network base(c = 4, size = 16) { input x: [3, size, size]\n x -> conv(c, 3) }\nnetwork big = base(c=8)"
    arch = archdsl.loads(src)
    assert arch.networks == ["base", "big"]
    assert out(arch.network("big")) == (8, 14, 14)
    assert out(arch.network("big", c=2, size=8)) == (2, 6, 6)


def test_symbolic_spatial_dims():
    n = load("network fcn(classes = 3) { input x: [3, H, W]\n x -> conv(8, 3, pad=1) -> maxpool(2) -> conv(classes, 1) }")
    assert out(n) == (3, "H/2", "W/2")
    n = load("network fcn() { input x: [3, H, W]\n x -> conv(8, 3, pad=1) }", H=32, W=48)
    assert out(n) == (8, 32, 48)


def test_imports(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "lib" / "blocks.arch").write_text("let width = 6\nblock cbr(c) { conv(c, 3, pad=1) -> bn -> relu }")
    (tmp_path / "main.arch").write_text('import "lib/blocks.arch"\nnetwork n() { input x: [3, 8, 8]\n x -> cbr(width) }')
    n = archdsl.load(tmp_path / "main.arch").network()
    assert out(n) == (6, 8, 8)


def test_import_outside_include_root_is_refused(tmp_path):
    (tmp_path / "secret.arch").write_text("let x = 1")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "main.arch").write_text('import "../secret.arch"\nnetwork n() { input x: [3, 8, 8] }')
    with pytest.raises(archdsl.ArchError, match="outside the include root"):
        archdsl.load(tmp_path / "sub" / "main.arch", include_root=tmp_path / "sub")


def test_make_divisible_matches_torchvision():
    from torchvision.models._utils import _make_divisible

    from archdsl.lang.expr import make_divisible

    for v in [3.2, 8, 16 * 0.75, 24 * 1.4, 1280 * 0.35, 96 * 0.5, 31.9]:
        assert make_divisible(v, 8) == _make_divisible(v, 8)


def test_several_networks_in_one_file():
    arch = archdsl.loads("network a() { input x: [1, 4, 4]\n x -> relu }\nnetwork b() { input y: [2, 4, 4]\n y -> relu }")
    assert [archdsl_net.name for archdsl_net in (arch.network("a"), arch.network("b"))] == ["a", "b"]
    with pytest.raises(archdsl.ArchError, match="no network 'c'"):
        arch.network("c")
