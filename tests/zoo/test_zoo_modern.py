"""Parity of the modern model-zoo examples with torchvision (GoogLeNet, Inception v3, MobileNetV2,
ShuffleNetV2, MNASNet, FCN-ResNet50), and arithmetic checks of the paper FCN-32s and U-Net.

torchvision models are built with random weights (nothing is downloaded); batch-norm statistics
are perturbed so that BN is not a near-identity when outputs are compared.
"""
from __future__ import annotations

import functools
import warnings

import pytest
import torch
from parity import EXAMPLES, assert_same_outputs, assert_same_state_dict, load_net, tv_shapes
from torch import nn
from torchvision import models
from torchvision.models import segmentation

import archdsl
from archdsl.passes.analysis import state_dict_shapes


def _googlenet(classes):
    return models.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=False,
                            num_classes=classes)


def _inception_v3(classes):
    return models.inception_v3(weights=None, aux_logits=False, transform_input=False, init_weights=False,
                               num_classes=classes)


def _fcn_resnet50(classes):
    return segmentation.fcn_resnet50(weights=None, weights_backbone=None, aux_loss=False, num_classes=classes)


def _tv(name, **kw):
    return lambda classes: getattr(models, name)(weights=None, num_classes=classes, **kw)


# id -> (file, network, parameters, torchvision constructor(classes))
PARITY = {
    "googlenet": ("googlenet.arch", "googlenet", {}, _googlenet),
    "inception_v3": ("inception_v3.arch", "inception_v3", {}, _inception_v3),
    "mobilenet_v2": ("mobilenet_v2.arch", "mobilenet_v2", {}, _tv("mobilenet_v2")),
    "mobilenet_v2_w0.5": ("mobilenet_v2.arch", "mobilenet_v2", {"width_mult": 0.5},
                          _tv("mobilenet_v2", width_mult=0.5)),
    "mobilenet_v2_w1.4": ("mobilenet_v2.arch", "mobilenet_v2", {"width_mult": 1.4},
                          _tv("mobilenet_v2", width_mult=1.4)),
    "shufflenet_v2_x0_5": ("shufflenet_v2.arch", "shufflenet_v2_x0_5", {}, _tv("shufflenet_v2_x0_5")),
    "shufflenet_v2_x1_0": ("shufflenet_v2.arch", "shufflenet_v2_x1_0", {}, _tv("shufflenet_v2_x1_0")),
    "shufflenet_v2_x1_5": ("shufflenet_v2.arch", "shufflenet_v2_x1_5", {}, _tv("shufflenet_v2_x1_5")),
    "shufflenet_v2_x2_0": ("shufflenet_v2.arch", "shufflenet_v2_x2_0", {}, _tv("shufflenet_v2_x2_0")),
    "mnasnet0_5": ("mnasnet.arch", "mnasnet0_5", {}, _tv("mnasnet0_5")),
    "mnasnet0_75": ("mnasnet.arch", "mnasnet0_75", {}, _tv("mnasnet0_75")),
    "mnasnet1_0": ("mnasnet.arch", "mnasnet1_0", {}, _tv("mnasnet1_0")),
    "mnasnet1_3": ("mnasnet.arch", "mnasnet1_3", {}, _tv("mnasnet1_3")),
    "fcn_resnet50": ("fcn.arch", "fcn_resnet50", {}, _fcn_resnet50),
}
# forward-pass parity on one variant per family, at small inputs (batch 2)
OUTPUTS = {"googlenet": 64, "inception_v3": 75, "mobilenet_v2": 64, "shufflenet_v2_x1_0": 64,
           "mnasnet1_0": 64, "fcn_resnet50": 64}
# torchvision's parameter counts with the default classes (21 for FCN, 1000 otherwise)
PARAMS = {"googlenet": 6_624_904, "inception_v3": 23_834_568, "mobilenet_v2": 3_504_872,
          "shufflenet_v2_x1_0": 2_278_604, "mnasnet1_0": 4_383_312, "fcn_resnet50": 32_957_013}

FILES = ["googlenet.arch", "inception_v3.arch", "mobilenet_v2.arch", "shufflenet_v2.arch", "mnasnet.arch",
         "fcn.arch", "unet.arch"]


@functools.cache
def torchvision_model(case: str, classes: int):
    torch.manual_seed(0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = PARITY[case][3](classes).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model


def net_for(case: str, **params):
    file, network, defaults, _ = PARITY[case]
    return load_net(file, network, **{**defaults, **params})


# ------------------------------------------------------------------------------------ all files


@pytest.mark.parametrize("file", FILES)
def test_file_is_clean_under_strict(file):
    arch = archdsl.load(EXAMPLES / file, strict=True)
    assert arch.networks
    for name in arch.networks:
        net = arch.network(name)
        assert not net.diagnostics.items, (name, net.diagnostics.items)


# ------------------------------------------------------------------------------------ torchvision


@pytest.mark.parametrize("case", list(PARITY))
def test_state_dict_matches_torchvision(case):
    classes = 21 if case.startswith("fcn") else 1000
    assert_same_state_dict(net_for(case), torchvision_model(case, classes))


@pytest.mark.parametrize("case", list(PARAMS))
def test_parameter_count(case):
    assert net_for(case).summary().totals["params"] == PARAMS[case]


@pytest.mark.parametrize("case", list(OUTPUTS))
def test_outputs_match_torchvision(case):
    size = OUTPUTS[case]
    classes = 5 if case.startswith("fcn") else 10
    assert_same_outputs(net_for(case, classes=classes, size=size), torchvision_model(case, classes), size)


@pytest.mark.parametrize("case, shape", [("googlenet", (1000,)), ("inception_v3", (1000,)),
                                         ("fcn_resnet50", (21, 520, 520))])
def test_shapes_at_full_size(case, shape):
    net = net_for(case)
    assert net.shape_of(net.outputs["output"]) == shape


def test_fcn_resnet50_takes_any_input_size_as_torchvision_does():
    """torchvision resizes the scores to the input's size at run time; so does the compiled module,
    whatever size the network was declared with."""
    import torch

    net = net_for("fcn_resnet50", classes=5, size=64)
    model = torchvision_model("fcn_resnet50", 5).eval()
    ours = net.to_torch()
    ours.load_state_dict(model.state_dict(), strict=True)
    ours.eval()
    torch.manual_seed(0)
    for h, w in ((48, 80), (72, 56)):
        x = torch.randn(1, 3, h, w)
        with torch.no_grad():
            want, got = model(x)["out"], ours(x)
        assert got.shape == want.shape == (1, 5, h, w)
        assert ((got - want).abs().max() / want.abs().max()).item() < 1e-5


def test_inception_v3_needs_75_pixels():
    """torchvision's documented minimum input; 74 runs out of pixels in Mixed_7a."""
    load_net("inception_v3.arch", "inception_v3", size=75)
    with pytest.raises(archdsl.ArchError):
        load_net("inception_v3.arch", "inception_v3", size=74)


def test_mnasnet_batch_norm_momentum():
    net = load_net("mnasnet.arch", "mnasnet1_0")
    moms = {n.attrs["momentum"] for n in net.nodes if n.op == "bn"}
    assert moms == {1 - 0.9997}
    assert {n.attrs["eps"] for n in net.nodes if n.op == "bn"} == {1e-5}


def test_googlenet_uses_ceil_mode_and_eps():
    net = load_net("googlenet.arch", "googlenet")
    assert all(n.attrs["ceil_mode"] for n in net.nodes if n.op == "maxpool")
    assert {n.attrs["eps"] for n in net.nodes if n.op == "bn"} == {0.001}


# ------------------------------------------------------------------------------------ FCN-32s


def _conv(cin, cout, k, bias=True):
    return cout * cin * k * k + (cout if bias else 0)


def fcn32s_params(classes=21, width=4096):
    vgg16 = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 256),
             (256, 512), (512, 512), (512, 512), (512, 512), (512, 512), (512, 512)]
    trunk = sum(_conv(i, o, 3) for i, o in vgg16)
    return (trunk + _conv(512, width, 7) + _conv(width, width, 1) + _conv(width, classes, 1)
            + _conv(classes, classes, 64, bias=False))


def test_fcn32s_parameters_by_arithmetic():
    assert fcn32s_params() == 14_714_688 + 102_764_544 + 16_781_312 + 86_037 + 1_806_336
    net = load_net("fcn.arch", "fcn32s")
    assert net.summary().totals["params"] == fcn32s_params() == 136_152_917
    net = load_net("fcn.arch", "fcn32s", classes=5, width=64)
    assert net.summary().totals["params"] == fcn32s_params(5, 64)


@pytest.mark.parametrize("size", [1, 32, 64, 100, 224, 333, 500])
def test_fcn32s_output_is_input_sized(size):
    """The paper's arithmetic: pad 100, pools rounding up, fc6 7x7 valid, 64/32 deconvolution, crop
    at offset 19: any input size comes back, even one pixel."""
    net = load_net("fcn.arch", "fcn32s", size=size)
    assert net.shape_of(net.outputs["output"]) == (21, size, size)
    h = size + 198
    for _ in range(5):
        h = -(-h // 2)  # Caffe's pooling rounds up
    h = (h - 6 - 1) * 32 + 64  # fc6, then upscore
    assert net.shape_of(net.node(net.outputs["output"][0]).inputs[0]) == (21, h, h) and 19 + size <= h


def test_fcn32s_trunk_is_torchvision_vgg16_and_fc_layers_reshape():
    ours = state_dict_shapes(load_net("fcn.arch", "fcn32s"))
    features = models.vgg.make_layers(models.vgg.cfgs["D"])
    want = {f"features.{k}": v for k, v in tv_shapes(features).items()}
    assert {k: v for k, v in ours.items() if k.startswith("features.")} == want
    # convolutionalised fc6 / fc7 hold exactly the values of vgg16's Linear(25088, 4096), Linear(4096, 4096)
    assert ours["fc6.weight"] == (4096, 512, 7, 7) and 4096 * 512 * 7 * 7 == 4096 * 25088
    assert ours["fc7.weight"] == (4096, 4096, 1, 1)


class _Fcn32sRef(nn.Module):
    """FCN-32s written by hand in PyTorch after the paper's Caffe model (voc-fcn32s), named as in
    examples/fcn.arch: torchvision's VGG-16 layers with conv1_1 padded by 100 and pools rounding up."""

    def __init__(self, classes, width):
        super().__init__()
        self.features = models.vgg.make_layers(models.vgg.cfgs["D"])
        self.features[0].padding = (100, 100)
        for m in self.features:
            if isinstance(m, nn.MaxPool2d):
                m.ceil_mode = True
        self.fc6 = nn.Conv2d(512, width, 7)
        self.fc7 = nn.Conv2d(width, width, 1)
        self.score_fr = nn.Conv2d(width, classes, 1)
        self.upscore = nn.ConvTranspose2d(classes, classes, 64, stride=32, bias=False)

    def forward(self, x):
        h, w = x.shape[-2:]
        y = self.features(x)
        y = torch.relu(self.fc6(y))
        y = torch.relu(self.fc7(y))
        y = self.upscore(self.score_fr(y))
        return y[:, :, 19:19 + h, 19:19 + w]


@pytest.mark.parametrize("size", [64, 71])
def test_fcn32s_outputs_match_a_handwritten_module(size):
    torch.manual_seed(0)
    ref = _Fcn32sRef(5, 32).eval()
    assert_same_outputs(load_net("fcn.arch", "fcn32s", classes=5, width=32, size=size), ref, size)


# ------------------------------------------------------------------------------------ U-Net


def unet_params(channels=1, classes=2, base=64):
    def double(i, o):
        return _conv(i, o, 3) + _conv(o, o, 3)
    widths = [base * 2 ** i for i in range(5)]
    enc = double(channels, widths[0]) + sum(double(widths[i], widths[i + 1]) for i in range(4))
    dec = sum(_conv(widths[i], widths[i - 1], 2) + double(widths[i], widths[i - 1]) for i in range(1, 5))
    return enc + dec + _conv(base, classes, 1)


def test_unet_parameters_by_arithmetic():
    # 1 input channel, 2 classes, 64 base channels, biases, no batch norm
    assert unet_params() == 31_030_658
    for network in ("unet", "unet_valid"):
        assert load_net("unet.arch", network).summary().totals["params"] == 31_030_658
    net = load_net("unet.arch", "unet", channels=3, classes=5, base=16)
    assert net.summary().totals["params"] == unet_params(3, 5, 16)


@pytest.mark.parametrize("size", [16, 64, 512])
def test_padded_unet_keeps_the_input_size(size):
    net = load_net("unet.arch", "unet", size=size)
    assert net.shape_of(net.outputs["logits"]) == (2, size, size)


@pytest.mark.parametrize("size, out", [(572, 388), (188, 4), (572 + 16, 388 + 16)])
def test_valid_unet_shrinks_as_in_the_paper(size, out):
    net = load_net("unet.arch", "unet_valid", size=size)
    assert net.shape_of(net.outputs["logits"]) == (2, out, out)


def test_unet_size_not_divisible_by_16_is_an_error():
    with pytest.raises(archdsl.ArchError, match="concat"):
        load_net("unet.arch", "unet", size=100)


class _UNetRef(nn.Module):
    """U-Net written by hand in PyTorch, named as in examples/unet.arch; pad=0 crops the skips."""

    def __init__(self, channels, classes, base, pad):
        super().__init__()
        w = [base * 2 ** i for i in range(5)]

        def double(i, o):
            return nn.Sequential(nn.Conv2d(i, o, 3, padding=pad), nn.ReLU(),
                                 nn.Conv2d(o, o, 3, padding=pad), nn.ReLU())
        self.enc1 = double(channels, w[0])
        for i in range(1, 5):
            setattr(self, f"enc{i + 1}", double(w[i - 1], w[i]))
            setattr(self, f"up{i}", nn.ConvTranspose2d(w[i], w[i - 1], 2, stride=2))
            setattr(self, f"dec{i}", double(w[i], w[i - 1]))
        self.head = nn.Conv2d(base, classes, 1)

    def forward(self, x):
        skips = []
        for i in range(1, 6):
            x = getattr(self, f"enc{i}")(x if i == 1 else nn.functional.max_pool2d(x, 2))
            skips.append(x)
        for i in range(4, 0, -1):
            x = getattr(self, f"up{i}")(x)
            s = skips[i - 1]
            t = (s.shape[-1] - x.shape[-1]) // 2
            s = s[:, :, t:t + x.shape[-2], t:t + x.shape[-1]]
            x = getattr(self, f"dec{i}")(torch.cat([s, x], 1))
        return self.head(x)


@pytest.mark.parametrize("network, pad, size", [("unet", 1, 32), ("unet_valid", 0, 188)])
def test_unet_outputs_match_a_handwritten_module(network, pad, size):
    torch.manual_seed(0)
    ref = _UNetRef(1, 2, 8, pad).eval()
    assert_same_outputs(load_net("unet.arch", network, base=8, size=size), ref, size)
