"""Parity of examples/densenet.arch with torchvision's DenseNet-BC."""
from __future__ import annotations

import functools
import json

import pytest
import torch
from parity import EXAMPLES, assert_same_outputs, assert_same_state_dict, load_net, torchvision_random

import archdsl
from archdsl.tools import cli

FILE = "densenet.arch"
# network -> (stem channels, channels after features.norm5)
NETWORKS = {
    "densenet121": (64, 1024),
    "densenet161": (96, 2208),
    "densenet169": (64, 1664),
    "densenet201": (64, 1920),
}
SIZE = 64  # small inputs keep the tests fast; parameters do not depend on the size


@functools.cache
def torchvision_model(name: str, classes: int = 1000):
    return torchvision_random(name, classes)


def summary_json(capsys, network: str) -> dict:
    assert cli.main(["summary", str(EXAMPLES / FILE), "--network", network, "--json"]) == 0
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
    stem, c = NETWORKS[name]
    shapes = {r["path"]: r["shape"] for r in s["rows"]}
    assert shapes["features.pool0"] == f"[{stem}, 56, 56]"
    assert shapes["features.transition1.pool"] == f"[{model.features.transition1.conv.out_channels}, 28, 28]"
    assert shapes["features.norm5"] == f"[{c}, 7, 7]"
    assert shapes["classifier"] == "[1000]"
    assert model.classifier.in_features == c


@pytest.mark.parametrize("name", NETWORKS)
def test_outputs(name):
    assert_same_outputs(load_net(FILE, name, size=SIZE), torchvision_model(name), SIZE)


def test_classes_parameter():
    net = load_net(FILE, "densenet121", classes=10, size=32)
    assert net.shape_of(net.outputs["output"]) == (10,)
    assert_same_state_dict(net, torchvision_model("densenet121", classes=10))


def test_init_declarations():
    """torchvision: conv kaiming_normal (fan_in); bn weight 1, bias 0; linear bias 0."""
    net = load_net(FILE, "densenet121", size=SIZE)
    for n in net.nodes:
        if n.op == "conv":
            assert n.scope.init_for("conv") == ("kaiming_normal", {})
        elif n.op == "bn":
            assert n.scope.init_for("bn") == ("constant", {"value": 1, "bias": 0})
        elif n.op == "linear":
            scheme, args = n.scope.init_for("linear")
            # nn.Linear's own weight init, kaiming_uniform(a=sqrt(5)), with a zero bias
            assert (scheme, args["bias"]) == ("kaiming_uniform", 0)
            assert args["a"] == pytest.approx(5 ** 0.5)


def test_init_applied_by_torch_module():
    """The compiled module initialises as torchvision does (statistics, not values)."""
    torch.manual_seed(0)
    sd = load_net(FILE, "densenet121", size=SIZE).to_torch().state_dict()
    assert torch.all(sd["features.norm0.weight"] == 1) and torch.all(sd["features.norm0.bias"] == 0)
    assert torch.all(sd["features.denseblock4.denselayer16.norm2.weight"] == 1)
    assert torch.all(sd["classifier.bias"] == 0)
    w = sd["features.denseblock3.denselayer24.conv2.weight"]  # kaiming_normal fan_in: sqrt(2 / (128*3*3))
    assert abs(w.std().item() / (2 / (128 * 9)) ** 0.5 - 1) < 0.05
    bound = 1 / 1024 ** 0.5  # nn.Linear: uniform(-1/sqrt(fan_in), 1/sqrt(fan_in))
    assert sd["classifier.weight"].abs().max().item() <= bound
    assert sd["classifier.weight"].abs().max().item() > 0.9 * bound
