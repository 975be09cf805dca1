"""The PyTorch backend: generated source quality, real shapes, training, tracing, DDP, goldens."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import archdsl
from archdsl.backends.torch import generate

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "tests" / "golden" / "torch"

LENET = """
network lenet5(classes = 10) {
    input image: [1, 32, 32]
    image -> conv(6, 5) -> relu -> maxpool(2)
          -> conv(16, 5) -> relu -> maxpool(2)
          -> flatten -> linear(120) -> relu -> linear(84) -> relu -> linear(classes)
}
"""
RESNET18 = """
block basic(out, stride = 1) {
    add {
        conv1: conv(out, 3, stride=stride, pad=1, bias=false) -> bn1: bn -> relu
        -> conv2: conv(out, 3, pad=1, bias=false) -> bn2: bn
      | if stride != 1 or in.channels != out {
            downsample: seq { conv(out, 1, stride=stride, bias=false) -> bn }
        }
    } -> relu
}
network resnet18(classes = 1000, size = 224) {
    input image: [3, size, size]
    init conv: kaiming_normal(mode="fan_out", nonlinearity="relu")
    init bn: constant(value=1, bias=0)
    image -> conv1: conv(64, 7, stride=2, pad=3, bias=false) -> bn1: bn -> relu
          -> maxpool: maxpool(3, stride=2, pad=1)
          -> layer1: basic(64) * 2
          -> layer2: seq { basic(128, stride=2) -> basic(128) }
          -> layer3: seq { basic(256, stride=2) -> basic(256) }
          -> layer4: seq { basic(512, stride=2) -> basic(512) }
          -> avgpool: adaptive_avgpool(1) -> flatten -> fc: linear(classes)
}
"""
DENSE = """
block dense_layer(growth, bn_size = 4) {
    norm1: bn -> relu1: relu -> conv1: conv(bn_size * growth, 1, bias=false)
    -> norm2: bn -> relu2: relu -> conv2: conv(growth, 3, pad=1, bias=false)
}
block dense_block(layers, growth) {
    for i in 1..layers { concat { identity | "denselayer{i}": dense_layer(growth) } }
}
network dense(size = 32) {
    input x: [16, size, size]
    x -> block1: dense_block(3, 8) -> transition: seq { norm: bn -> relu: relu -> conv: conv(20, 1, bias=false) -> pool: avgpool(2) }
}
"""
SOURCES = {"lenet5": LENET, "resnet18": RESNET18, "dense_block": DENSE}


def _net(name, **params):
    return archdsl.loads(SOURCES[name], f"{name}.arch").network(**params)


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_golden_source(name):
    src = generate(_net(name), source_name=f"{name}.arch")
    golden = GOLDEN / f"{name}.py"
    if os.environ.get("ARCHDSL_REGEN"):
        golden.write_text(src)
    assert src == golden.read_text(), "generated source changed; review and regenerate with ARCHDSL_REGEN=1"


@pytest.mark.parametrize("name", sorted(SOURCES))
def test_generated_source_passes_ruff(name, tmp_path):
    pytest.importorskip("ruff")
    f = tmp_path / f"{name}.py"
    f.write_text(generate(_net(name)))
    r = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", "-q", str(f)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_output_is_deterministic_across_hash_seeds(tmp_path):
    f = tmp_path / "r.arch"
    f.write_text(RESNET18)
    outs = []
    for seed in ("0", "1", "12345"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-m", "archdsl", "compile", str(f), "--target", "torch"],
                           capture_output=True, env=env, check=True)
        outs.append(r.stdout)
    assert outs[0] == outs[1] == outs[2]


def test_resnet18_matches_torchvision_exactly():
    torchvision = pytest.importorskip("torchvision")
    net = _net("resnet18", size=64)
    model = net.to_torch().eval()
    ref = torchvision.models.resnet18().eval()
    model.load_state_dict(ref.state_dict(), strict=True)
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(model(x), ref(x), rtol=1e-5, atol=1e-5)


def test_blocks_become_classes_with_arguments():
    src = generate(_net("resnet18"))
    assert "class Basic(nn.Module):" in src and "def __init__(self, out):" in src
    assert "class Basic2(nn.Module):" in src and "Specialised" in src  # the downsample variant
    assert "self.layer1 = nn.Sequential(" in src
    assert "nn.init.kaiming_normal_(m.weight, mode='fan_out', nonlinearity='relu')" in src


def test_init_declarations_are_applied():
    model = _net("resnet18", size=32).to_torch()
    assert torch.all(model.bn1.weight == 1) and torch.all(model.bn1.bias == 0)
    std = model.conv1.weight.std().item()
    expected = (2 / (64 * 7 * 7)) ** 0.5  # kaiming normal, fan_out, relu
    assert abs(std - expected) / expected < 0.1


@pytest.mark.parametrize("name,shape", [("lenet5", (1, 32, 32)), ("dense_block", (16, 32, 32))])
def test_real_shapes_equal_inferred_shapes(name, shape):
    net = _net(name)
    model = net.to_torch().eval()
    with torch.no_grad():
        y = model(torch.randn(2, *shape))
    assert tuple(y.shape[1:]) == net.shape_of(net.outputs["output"])


def test_training_reduces_the_loss():
    torch.manual_seed(0)
    model = _net("lenet5").to_torch().train()
    x, y = torch.randn(16, 1, 32, 32), torch.randint(0, 10, (16,))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(30):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]


def test_jit_trace_and_torch_export():
    model = _net("dense_block").to_torch().eval()
    x = torch.randn(1, 16, 32, 32)
    traced = torch.jit.trace(model, x)
    torch.testing.assert_close(traced(x), model(x))
    exported = torch.export.export(model, (x,))
    torch.testing.assert_close(exported.module()(x), model(x))


def test_labels_that_are_keywords_builtins_or_unicode_make_valid_code():
    src = """
network n() {
    input x: [3, 8, 8]
    x -> class: conv(4, 3, pad=1) -> import: bn -> self: relu -> "ｃｏｎｖ": conv(4, 1)
      -> print: conv(4, 1) -> "0x": conv(4, 1) -> "a'b\\"c": conv(4, 1) -> x: conv(4, 1)
}"""
    net = archdsl.loads(src).network()
    model = net.to_torch()
    keys = [k for k in model.state_dict() if k.endswith("weight")]
    assert keys == ["class.weight", "import.weight", "ｃｏｎｖ.weight", "print.weight", "0x.weight",
                    "a'b\"c.weight", "x.weight"]
    assert model(torch.randn(1, 3, 8, 8)).shape == (1, 4, 8, 8)


def test_commands_other_than_onnx_do_not_import_torch(tmp_path):
    f = tmp_path / "r.arch"
    f.write_text(RESNET18)
    code = (
        "import sys\nfrom archdsl.tools.cli import main\n"
        f"for args in (['check', {str(f)!r}], ['summary', {str(f)!r}], "
        f"['compile', {str(f)!r}, '--target', 'torch', '-o', {str(tmp_path / 'o.py')!r}]):\n"
        "    assert main(args) == 0\n"
        "assert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_failed_compile_leaves_existing_output_untouched(tmp_path):
    out = tmp_path / "model.py"
    out.write_text("precious")
    bad = tmp_path / "bad.arch"
    bad.write_text("network n() { input x: [3, 8, 8]\n x -> linear(3) }")
    from archdsl.tools.cli import main

    assert main(["compile", str(bad), "--target", "torch", "-o", str(out)]) == 1
    assert out.read_text() == "precious"
    assert [p.name for p in tmp_path.iterdir()] == sorted(["model.py", "bad.arch"]) or len(list(tmp_path.iterdir())) == 2


DDP_SCRIPT = r'''
import os, sys, torch, torch.distributed as dist
import archdsl
from torch.nn.parallel import DistributedDataParallel as DDP
rank, world = int(sys.argv[1]), 2
os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=sys.argv[2])
dist.init_process_group("gloo", rank=rank, world_size=world)
torch.manual_seed(0)
model = DDP(archdsl.loads(sys.argv[3]).network().to_torch())
opt = torch.optim.SGD(model.parameters(), lr=0.01)
torch.manual_seed(rank)
x, y = torch.randn(4, 1, 32, 32), torch.randint(0, 10, (4,))
loss = torch.nn.functional.cross_entropy(model(x), y)
loss.backward()
opt.step()
w = model.module.state_dict()[next(iter(model.module.state_dict()))].clone()
ws = [torch.zeros_like(w) for _ in range(world)]
dist.all_gather(ws, w)
assert torch.equal(ws[0], ws[1]), "replicas diverged"
dist.destroy_process_group()
print("ok", rank)
'''


def test_runs_under_distributed_data_parallel(tmp_path):
    import socket

    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = str(s.getsockname()[1])
    procs = [subprocess.Popen([sys.executable, str(script), str(r), port, LENET], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for r in range(2)]
    outs = [p.communicate(timeout=120) for p in procs]
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-2000:]
        assert o.startswith("ok")


def _from_source(source: str):
    import types

    module = types.ModuleType("inplace_check")
    exec(compile(source, "<inplace_check>", "exec"), module.__dict__)  # noqa: S102 - our generated source
    return module.MODEL()


@pytest.mark.parametrize("text, inplace", [
    # a DenseNet layer: each activation's input is a fresh tensor read by nothing else
    ("block layer() { concat { identity | n1: bn -> r1: relu -> c1: conv(8, 1) -> n2: bn -> r2: relu "
     "-> c2: conv(4, 3, pad=1) } }\nnetwork n() { input x: [4, 8, 8]\n x -> layer() -> layer() }", True),
    # the activation's input is read again after it: running in place would change the sum
    ("block b() { a = in -> n1: bn\n r = a -> r1: relu\n add(a, r) }\nnetwork n() { input x: [4, 8, 8]\n x -> b() }",
     False),
    # the activation's input is the block's own input, which its caller still holds
    ("block b() { r1: relu }\nnetwork n() { input x: [4, 8, 8]\n x -> add { b() | identity } }", False),
])
def test_activations_run_in_place_only_where_nothing_else_reads_their_input(text, inplace):
    net = archdsl.loads(text).network()
    source = generate(net)
    assert ("nn.ReLU(inplace=True)" in source) == inplace, source
    ours = _from_source(source).eval()
    reference = _from_source(source.replace("inplace=True", "inplace=False")).eval()
    reference.load_state_dict(ours.state_dict())
    with torch.no_grad():
        for m in ours.modules():  # non-trivial statistics, so that negative values reach the ReLUs
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-1, 1)
        reference.load_state_dict(ours.state_dict())
        x = torch.randn(2, 4, 8, 8)
        assert torch.equal(ours(x.clone()), reference(x.clone()))
