"""ONNX backend: checker, shape inference, and onnxruntime against the compiled PyTorch module."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest

import archdsl
from archdsl.tools import cli
from archdsl import ops
from archdsl.passes.analysis import state_dict_shapes
from archdsl.backends.onnx import export, init_weights
from archdsl.errors import ArchError

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from onnx_parity import (RTOL, assert_shapes_agree, feeds, one_op, parity, randomise, rel_error,  # noqa: E402
                         run_ort, torch_outputs)

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


# ------------------------------------------------------------------------------------- one op each
# Every op against torch and onnxruntime, per example: tests/ops/test_registry.py.  Here: the
# examples whose lowering depends on the opset or on a dynamic batch.


def case(name):
    """The one-op network of the registry example ``name`` (``gelu_tanh``, ``lrn_even`` ...)."""
    spec, example = ops.examples()[name]
    return one_op(example.text, example.shape)


OPSET_SENSITIVE = ["gelu", "gelu_tanh", "layer_norm", "layer_norm_image", "group_norm", "group_norm_vector",
                   "hardswish", "lrn_even", "adaptive_maxpool_uneven", "upsample_size", "pad_value"]


@pytest.mark.parametrize("opset", [13, 14, 18, 20, 21])
@pytest.mark.parametrize("name", OPSET_SENSITIVE)
def test_opsets(name, opset, tmp_path):
    parity(case(name), tmp_path, opset=opset)


@pytest.mark.parametrize("name", ["conv", "concat", "chunk", "upsample_size", "resize", "reshape", "flatten_start",
                                  "channel_shuffle", "group_norm", "lrn_even", "adaptive_avgpool_uneven"])
def test_dynamic_batch(name, tmp_path):
    net = case(name)
    model = export(net, dynamic_batch=True)
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    parity(net, tmp_path, batch=3, dynamic_batch=True)


@pytest.mark.parametrize("stage", [
    "conv(4, 3, pad=1) -> maxpool(2) -> crop(4) -> upsample(2) -> global_avgpool",
    "crop(5, offset=(2, 3)) -> relu",
    "maxpool(3, stride=2, pad=1, ceil_mode=true) -> upsample(size=(5, 6))",
    'conv(4, 3, stride=2, pad=1) -> maxpool(2) -> resize(to=x, mode="bilinear")',
    "avgpool(3, stride=2, pad=1, ceil_mode=true) -> adaptive_maxpool(1)",
    "avgpool(3, stride=2, ceil_mode=true, count_include_pad=false) -> channel_shuffle(3) -> pad((1, 0))",
])
def test_symbolic_spatial_sizes(tmp_path, stage):
    net = one_op(stage, (3, "H", "W"))
    model = export(net, dynamic_batch=True)
    dims = model.graph.input[0].type.tensor_type.shape.dim
    assert [d.dim_param or d.dim_value for d in dims] == ["batch", 3, "H", "W"]
    module = net.to_torch().eval()
    torch.save(module.state_dict(), tmp_path / "w.pt")
    model = export(net, weights=str(tmp_path / "w.pt"), dynamic_batch=True)
    for size in ({"H": 12, "W": 16}, {"H": 21, "W": 10}, {"H": 9, "W": 13}):
        inputs = feeds(net, 2, size)
        assert rel_error(run_ort(model, inputs)[0], torch_outputs(module, net, inputs)[0]) < RTOL


# ------------------------------------------------------------------------------------- whole networks

RESBLOCK = """
block basic(out, stride = 1) {
    add {
        conv1: conv(out, 3, stride=stride, pad=1, bias=false) -> bn1: bn -> relu
        -> conv2: conv(out, 3, pad=1, bias=false) -> bn2: bn
      | if stride != 1 or in.channels != out {
            downsample: seq { conv(out, 1, stride=stride, bias=false) -> bn }
        }
    } -> relu
}
block se(c, r = 2) {
    mul { identity | global_avgpool -> fc1: conv(c // r, 1) -> relu -> fc2: conv(c, 1) -> hardsigmoid }
}
block nothing() { identity }
network small(classes = 5) {
    init conv: kaiming_normal(mode="fan_out", nonlinearity="relu")
    input image: [3, 20, 20]
    image -> conv1: conv(8, 3, pad=1, bias=false) -> bn1: bn -> relu
          -> layer1: seq { basic(8) -> basic(8) -> se(8) -> nothing() }
          -> layer2: seq { basic(16, stride=2) -> basic(16) }
          -> drop: dropout(0.5)
          -> adaptive_avgpool(1) -> flatten -> fc: linear(classes)
}
"""


@pytest.fixture(scope="module")
def small():
    return archdsl.loads(RESBLOCK).network()


def test_names_follow_the_arch_file(small):
    model = export(small)
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["output"]
    names = {n.name for n in model.graph.node}
    assert {"conv1", "layer1.0.conv1", "layer2.0.downsample.0", "fc"} <= names
    inits = [i.name for i in model.graph.initializer]
    keys = state_dict_shapes(small)
    assert set(inits) <= set(keys) and "layer1.0.bn1.running_var" in inits
    assert {k for k in keys if not k.endswith("num_batches_tracked")} == set(inits)
    assert not any(n.op_type == "Dropout" for n in model.graph.node)
    assert all(i.dims == list(keys[i.name]) for i in model.graph.initializer)
    assert model.opset_import[0].version == 17


@pytest.mark.parametrize("options", [{}, {"fold_bn": True}, {"functions": True},
                                     {"functions": True, "fold_bn": True, "dynamic_batch": True},
                                     {"opset": 13}, {"opset": 21, "fold_bn": True}],
                         ids=["plain", "fold_bn", "functions", "functions_fold_dynamic", "opset13", "opset21_fold"])
def test_network_matches_torch(small, tmp_path, options):
    assert_shapes_agree(small, parity(small, tmp_path, batch=3, **options))


def test_fold_bn_removes_batch_norms(small):
    plain, folded = export(small), export(small, fold_bn=True)
    count = lambda m, op: sum(n.op_type == op for n in m.graph.node)
    assert count(plain, "BatchNormalization") == 10
    assert count(folded, "BatchNormalization") == 0
    inits = {i.name for i in folded.graph.initializer}
    assert "conv1.bias" in inits and "bn1.running_mean" not in inits


def test_fold_bn_keeps_a_shared_conv_output(tmp_path):
    net = one_op("c = x -> conv(4, 3, pad=1)\n output a = c -> bn\n output b = c -> relu")
    model = export(net, fold_bn=True)
    assert sum(n.op_type == "BatchNormalization" for n in model.graph.node) == 1
    parity(net, tmp_path, fold_bn=True)


def test_functions_keep_the_hierarchy(small):
    model = export(small, functions=True)
    funcs = {f.name: f for f in model.functions}
    assert {"basic", "se", "nothing"} <= set(funcs)
    # one function per body: the variant with a projection shortcut is the only other one
    assert sorted(funcs) == ["basic", "basic_1", "nothing", "se"]
    calls = {n.name: n for n in model.graph.node if n.domain == "archdsl"}
    assert calls["layer1.0"].op_type == calls["layer1.1"].op_type == calls["layer2.1"].op_type == "basic"
    assert calls["layer2.0"].op_type == "basic_1" and "downsample.0.weight" in funcs["basic_1"].input
    assert list(calls["layer1.0"].input)[:3] == ["0", "layer1.0.conv1.weight", "layer1.0.bn1.weight"]
    assert list(funcs["basic"].input)[:3] == ["x", "conv1.weight", "bn1.weight"]
    assert {n.name for n in funcs["basic"].node} >= {"conv1", "bn1", "conv2"}
    onnx.checker.check_model(model, full_check=True)


NESTED = """
block unit(c) { conv(c, 3, pad=1, bias=false) -> bn -> relu6 }
block pair(c) { first: unit(c) -> second: add { unit(c) | identity } }
block stage(c) { a: pair(c) -> b: pair(c) -> pool: maxpool(2) }
network nested() {
    input x: [3, 16, 16]
    x -> stem: unit(6) -> s1: stage(6) -> s2: stage(6) -> global_avgpool(keepdim=false) -> head: linear(4)
}
"""


@pytest.mark.parametrize("options", [{"functions": True}, {"functions": True, "fold_bn": True, "opset": 13}])
def test_nested_blocks_as_functions(tmp_path, options):
    net = archdsl.loads(NESTED).network()
    model = parity(net, tmp_path, **options)
    assert sorted(f.name for f in model.functions) == ["pair", "stage", "unit"]
    stage = next(f for f in model.functions if f.name == "stage")
    assert [n.op_type for n in stage.node] == ["pair", "pair", "MaxPool"]
    assert [o.domain for o in stage.opset_import] == ["", "archdsl"]
    assert_shapes_agree(net, model)


def test_init_follows_declarations_deterministically(small):
    a, b = init_weights(small), init_weights(small)
    assert all(np.array_equal(a[k], b[k]) for k in a)
    w = a["layer2.0.conv1.weight"]  # kaiming_normal, fan_out = 16 * 9, relu gain
    assert abs(w.std() - (2 / (16 * 9)) ** 0.5) < 0.02
    fc = a["fc.weight"]  # PyTorch's default: uniform(+-1/sqrt(fan_in))
    assert np.abs(fc).max() <= 1 / 16 ** 0.5 and fc.std() > 0.1
    assert (a["bn1.weight"] == 1).all() and (a["bn1.running_var"] == 1).all() and (a["bn1.bias"] == 0).all()
    assert not np.array_equal(init_weights(small, seed=1)["fc.weight"], fc)


def test_default_weights_run(small):
    model = export(small, dynamic_batch=True)
    out = run_ort(model, feeds(small, 4))[0]
    assert out.shape == (4, 5) and np.isfinite(out).all()


def test_weight_errors(small, tmp_path):
    module = small.to_torch()
    sd = module.state_dict()
    del sd["fc.bias"]
    sd["extra.weight"] = torch.zeros(3)
    sd["conv1.weight"] = torch.zeros(8, 3, 5, 5)
    torch.save(sd, tmp_path / "bad.pt")
    with pytest.raises(ArchError) as err:
        export(small, weights=str(tmp_path / "bad.pt"))
    msg = str(err.value)
    assert "missing 1 key (fc.bias)" in msg and "extra.weight" in msg and "conv1.weight is [8, 3, 5, 5]" in msg
    with pytest.raises(ArchError, match="does not exist"):
        export(small, weights=str(tmp_path / "none.pt"))
    (tmp_path / "w.bin").write_bytes(b"x")
    with pytest.raises(ArchError, match="unknown weights format"):
        export(small, weights=str(tmp_path / "w.bin"))
    (tmp_path / "junk.pt").write_bytes(b"not a zip")
    with pytest.raises(ArchError, match="junk.pt: error: cannot read the file"):
        export(small, weights=str(tmp_path / "junk.pt"))
    with pytest.raises(ArchError, match="opset 12"):
        export(small, opset=12)


def test_safetensors(small, tmp_path):
    module = small.to_torch().eval()
    randomise(module)
    try:
        from safetensors.torch import save_file
    except ImportError:
        (tmp_path / "w.safetensors").write_bytes(b"")
        with pytest.raises(ArchError, match="needs the 'safetensors' package"):
            export(small, weights=str(tmp_path / "w.safetensors"))
        return
    save_file(module.state_dict(), tmp_path / "w.safetensors")
    model = export(small, weights=str(tmp_path / "w.safetensors"))
    inputs = feeds(small, 1)
    assert rel_error(run_ort(model, inputs)[0], torch_outputs(module, small, inputs)[0]) < RTOL


def test_adaptive_pool_of_unknown_size_is_an_error():
    net = one_op("adaptive_avgpool(2)", (3, "H", "W"))
    with pytest.raises(ArchError, match="unknown size"):
        export(net)


# ------------------------------------------------------------------------------------- files and CLI


@pytest.mark.skipif(not (EXAMPLES / "lenet5.arch").exists(), reason="no lenet5 example")
def test_lenet5(tmp_path):
    net = archdsl.load(EXAMPLES / "lenet5.arch").network()
    assert_shapes_agree(net, parity(net, tmp_path, batch=3, dynamic_batch=True))


@pytest.mark.skipif(not (EXAMPLES / "resnet.arch").exists(), reason="no resnet example")
@pytest.mark.parametrize("options", [{}, {"fold_bn": True, "functions": True}])
def test_resnet18(tmp_path, options):
    net = archdsl.load(EXAMPLES / "resnet.arch").network("resnet18", size=64)
    assert_shapes_agree(net, parity(net, tmp_path, **options))


def test_models_over_the_protobuf_limit_keep_their_weights_beside(tmp_path, monkeypatch, capsys):
    """Over 2 GiB a model cannot be one protobuf message: the weights go to model.onnx.data (ONNX
    external data).  The limit is lowered here so that a small model takes that path."""
    from archdsl.backends import onnx as onnx_backend

    monkeypatch.setattr(onnx_backend, "PROTOBUF_LIMIT", 10_000)
    src = tmp_path / "big.arch"
    src.write_text("network big() {\n    input x: [64]\n    x -> linear(128) -> relu -> linear(32)\n}\n")
    out = tmp_path / "big.onnx"
    assert cli.main(["compile", str(src), "--target", "onnx", "-o", str(out)]) == 0
    assert "big.onnx.data" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.arch", "big.onnx", "big.onnx.data"]
    assert out.stat().st_size < 10_000 < (tmp_path / "big.onnx.data").stat().st_size
    net = archdsl.load(src).network()
    module = net.to_torch().eval()
    torch.save(module.state_dict(), tmp_path / "w.pt")
    assert cli.main(["compile", str(src), "--target", "onnx", "-o", str(out), "--weights", str(tmp_path / "w.pt")]) == 0
    sess = ort.InferenceSession(str(out), providers=["CPUExecutionProvider"])  # reads the data file
    inputs = feeds(net, 1)
    assert rel_error(sess.run(None, inputs)[0], torch_outputs(module, net, inputs)[0]) < RTOL
    with pytest.raises(ArchError, match="over protobuf's 2 GiB limit"):
        export(net)  # in memory there is nowhere to put the weights


def test_cli_compile(tmp_path, capsys):
    src = tmp_path / "small.arch"
    src.write_text(RESBLOCK)
    out = tmp_path / "small.onnx"
    assert cli.main(["compile", str(src), "--target", "onnx", "-o", str(out), "--opset", "18",
                     "--dynamic-batch", "--fold-bn", "--functions"]) == 0
    model = onnx.load(str(out))
    assert model.opset_import[0].version == 18 and model.functions
    net = archdsl.loads(RESBLOCK).network()
    module = net.to_torch().eval()
    randomise(module)
    torch.save(module.state_dict(), tmp_path / "w.pt")
    assert cli.main(["compile", str(src), "--target", "onnx", "-o", str(out), "--weights",
                     str(tmp_path / "w.pt"), "-D", "classes=5"]) == 0
    inputs = feeds(net, 1)
    got = run_ort(onnx.load(str(out)), inputs)[0]
    assert rel_error(got, torch_outputs(module, net, inputs)[0]) < RTOL


def test_cli_errors_leave_no_file(tmp_path, capsys):
    src = tmp_path / "small.arch"
    src.write_text(RESBLOCK)
    out = tmp_path / "small.onnx"
    assert cli.main(["compile", str(src), "--target", "onnx", "-o", str(out), "--opset", "9"]) == 1
    assert "opset 9 is not supported" in capsys.readouterr().err
    (tmp_path / "bad.pt").write_bytes(b"junk")
    assert cli.main(["compile", str(src), "--target", "onnx", "-o", str(out), "--weights",
                     str(tmp_path / "bad.pt")]) == 1
    assert "bad.pt: error: cannot read the file" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.pt", "small.arch"]


def test_default_path_does_not_import_torch(tmp_path):
    src = tmp_path / "small.arch"
    src.write_text(RESBLOCK)
    out = tmp_path / "small.onnx"
    code = ("import sys; from archdsl.tools import cli; "
            f"rc = cli.main(['compile', {str(src)!r}, '--target', 'onnx', '-o', {str(out)!r}, '--fold-bn', "
            "'--functions']); "
            "assert rc == 0, rc; assert 'torch' not in sys.modules, 'torch was imported'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=tmp_path)
    assert out.stat().st_size > 0
    onnx.checker.check_model(onnx.load(str(out)), full_check=True)


def test_to_onnx_api(small, tmp_path):
    path = tmp_path / "m.onnx"
    model = small.to_onnx(str(path), opset=14)
    assert path.read_bytes() == model.SerializeToString()


# ------------------------------------------------------------------------------------- property


def test_random_networks_agree_in_onnxruntime():
    """The PyTorch backend's random networks (tests/robustness/test_property.py) agree in onnxruntime too."""
    import tempfile

    hypothesis = pytest.importorskip("hypothesis")
    from hypothesis import strategies as st
    from networks import program

    @hypothesis.settings(max_examples=120, deadline=None, derandomize=True, database=None,
                         suppress_health_check=list(hypothesis.HealthCheck))
    @hypothesis.given(case=program(), fold=st.booleans())
    def check(case, fold):
        src, _shape = case
        try:
            net = archdsl.loads(src).network()
        except ArchError:
            hypothesis.assume(False)
            return
        with tempfile.TemporaryDirectory() as d:
            parity(net, Path(d), fold_bn=fold)

    check()
