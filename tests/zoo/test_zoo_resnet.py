"""Parity of examples/resnet.arch with torchvision's ResNet, ResNeXt and Wide ResNet."""
from __future__ import annotations

import functools
import json

import pytest
import torch
from parity import EXAMPLES, assert_same_outputs, assert_same_state_dict, load_net, torchvision_random

import archdsl
from archdsl.tools import cli

FILE = "resnet.arch"
# network -> (expansion of its block: channels into fc are 512 * expansion)
NETWORKS = {
    "resnet18": 1,
    "resnet34": 1,
    "resnet50": 4,
    "resnet101": 4,
    "resnet152": 4,
    "resnext50_32x4d": 4,
    "wide_resnet50_2": 4,
}
SIZE = 64  # small inputs keep the tests fast; parameters do not depend on the size


@functools.cache
def torchvision_model(name: str, classes: int = 1000):
    return torchvision_random(name, classes)


def summary_json(capsys, network: str, *defines: str) -> dict:
    argv = ["summary", str(EXAMPLES / FILE), "--network", network, "--json"]
    for d in defines:
        argv += ["-D", d]
    assert cli.main(argv) == 0
    return json.loads(capsys.readouterr().out)


def test_file_is_clean_under_strict():
    arch = archdsl.load(EXAMPLES / FILE, strict=True)
    assert set(NETWORKS) <= set(arch.networks)
    for name in NETWORKS:
        for size in (224, SIZE):
            net = arch.network(name, size=size)
            assert not net.diagnostics.items, (name, size, net.diagnostics.items)


@pytest.mark.parametrize("name", NETWORKS)
def test_state_dict(name):
    assert_same_state_dict(load_net(FILE, name, size=SIZE), torchvision_model(name))


@pytest.mark.parametrize("name", NETWORKS)
def test_summary_at_224(name, capsys):
    """`archdsl summary` at the default size: torchvision's parameter count and shapes."""
    s = summary_json(capsys, name)
    model = torchvision_model(name)
    assert s["totals"]["params"] == sum(p.numel() for p in model.parameters())
    assert s["totals"]["input"] == "image [3, 224, 224]"
    assert s["totals"]["output"] == "output [1000]"
    shapes = {r["path"]: r["shape"] for r in s["rows"]}
    c = 512 * NETWORKS[name]
    assert shapes["maxpool"] == "[64, 56, 56]"
    assert shapes["avgpool"] == f"[{c}, 1, 1]"
    assert shapes["fc"] == "[1000]"
    last = [r for r in s["rows"] if r["path"].startswith("layer4.")][-1]
    assert last["shape"] == f"[{c}, 7, 7]"
    assert model.fc.in_features == c


@pytest.mark.parametrize("name", NETWORKS)
def test_outputs(name):
    assert_same_outputs(load_net(FILE, name, size=SIZE), torchvision_model(name), SIZE)


def test_classes_parameter():
    net = load_net(FILE, "resnet18", classes=10, size=32)
    assert net.shape_of(net.outputs["output"]) == (10,)
    assert_same_state_dict(net, torchvision_model("resnet18", classes=10))


def test_init_declarations():
    """torchvision: conv kaiming_normal(fan_out, relu); bn weight 1, bias 0; fc keeps nn.Linear's."""
    net = load_net(FILE, "resnext50_32x4d", size=SIZE)
    convs = [n for n in net.nodes if n.op == "conv"]
    bns = [n for n in net.nodes if n.op == "bn"]
    assert convs and bns
    for n in convs:
        assert n.scope.init_for("conv") == ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu"})
    for n in bns:
        assert n.scope.init_for("bn") == ("constant", {"value": 1, "bias": 0})
    fc = next(n for n in net.nodes if n.op == "linear")
    assert fc.scope.init_for("linear") is None


def test_init_applied_by_torch_module():
    """The compiled module initialises as torchvision does (statistics, not values)."""
    torch.manual_seed(0)
    ours = load_net(FILE, "resnet18", size=SIZE).to_torch()
    sd = ours.state_dict()
    assert torch.all(sd["bn1.weight"] == 1) and torch.all(sd["bn1.bias"] == 0)
    assert torch.all(sd["layer4.1.bn2.weight"] == 1) and torch.all(sd["layer4.1.bn2.bias"] == 0)
    w = sd["layer4.1.conv2.weight"]  # kaiming_normal fan_out: std = sqrt(2 / (512 * 3 * 3))
    assert abs(w.std().item() / (2 / (512 * 9)) ** 0.5 - 1) < 0.05
    assert abs(w.mean().item()) < 1e-3


@pytest.mark.parametrize("name", ["resnet18", "resnet50"])
def test_zero_init_residual_as_torchvision(name):
    """torchvision's zero_init_residual=True zeroes the last BN weight of every residual branch
    (bn2 in BasicBlock, bn3 in Bottleneck): archdsl's `init bn3: constant(value=0)` does the same,
    in the PyTorch module and in the ONNX initialisers."""
    from torchvision import models

    from archdsl.backends.onnx import init_weights

    want = getattr(models, name)(weights=None, zero_init_residual=True).state_dict()
    net = load_net(FILE, name, size=SIZE, zero_init_residual=True)
    got = net.to_torch().state_dict()
    onnx = init_weights(net, 0)
    bn = [k for k in want if k.endswith(("bn1.weight", "bn2.weight", "bn3.weight", "bn1.bias", "bn2.bias",
                                           "bn3.bias", "downsample.1.weight", "downsample.1.bias"))]
    assert len(bn) > 20 and any(not torch.any(want[k]) for k in bn if k.endswith("weight"))
    for k in bn:
        assert torch.equal(got[k], want[k]), k
        assert torch.equal(torch.from_numpy(onnx[k]), want[k]), k
    default = load_net(FILE, name, size=SIZE).to_torch().state_dict()
    assert all(torch.all(default[k] == 1) for k in bn if k.endswith("weight"))
