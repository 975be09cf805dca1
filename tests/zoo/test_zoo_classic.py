"""The classic model zoo: LeNet-5, AlexNet, VGG, Network-in-Network, SqueezeNet.

torchvision models (alexnet, vgg*, squeezenet*) are checked for parity: state_dict keys and
shapes, parameter count, and outputs for the same weights. The paper models are checked against
arithmetic written out here, independently of archdsl.
"""
from __future__ import annotations

import math

import pytest
from parity import EXAMPLES, assert_same_outputs, assert_same_state_dict, load_net

import archdsl

FILES = ("lenet5.arch", "alexnet.arch", "vgg.arch", "nin.arch", "squeezenet.arch")

# torchvision name -> (file, smallest input the torchvision model and archdsl both take cleanly)
TORCHVISION = {
    "alexnet": ("alexnet.arch", 63),
    "squeezenet1_0": ("squeezenet.arch", 35),
    "squeezenet1_1": ("squeezenet.arch", 35),
    **{f"vgg{d}{bn}": ("vgg.arch", 32) for d in (11, 13, 16, 19) for bn in ("", "_bn")},
}
# Every VGG costs ~6 s here (two 130M-parameter modules are built and initialised), and the
# depths differ only in their config rows, which test_state_dict covers exactly; so outputs are
# compared for one plain and one batch-norm VGG.
OUTPUTS = ["alexnet", "squeezenet1_0", "squeezenet1_1",
           pytest.param("vgg11", marks=pytest.mark.slow), pytest.param("vgg16_bn", marks=pytest.mark.slow)]


def torchvision_model(name: str, classes: int, device: str = "cpu"):
    torch = pytest.importorskip("torch")
    models = pytest.importorskip("torchvision.models")
    torch.manual_seed(0)
    with torch.device(device):
        return getattr(models, name)(weights=None, num_classes=classes).eval()


def shapes(net) -> dict[str, tuple]:
    """Module path -> output shape, for every named node."""
    return {n.path: n.shape for n in net.nodes if n.name}


def params(net) -> int:
    return net.summary().totals["params"]


def conv_p(cin: int, cout: int, k: int) -> int:
    return k * k * cin * cout + cout


def linear_p(fin: int, fout: int) -> int:
    return fin * fout + fout


# ----------------------------------------------------------------------------------------- files


@pytest.mark.parametrize("file", FILES)
def test_examples_clean_under_strict(file):
    arch = archdsl.load(EXAMPLES / file, strict=True)
    assert arch.networks
    for name in arch.networks:
        net = arch.network(name)
        assert not net.diagnostics.items, (name, net.diagnostics.items)


@pytest.mark.parametrize("network,size", [("squeezenet1_0", 224), ("squeezenet1_1", 224)])
def test_squeezenet_at_224_drops_a_pixel(network, size):
    """Why squeezenet.arch defaults to 227: at torchvision's 224 the stride-2 first conv drops one."""
    arch = archdsl.load(EXAMPLES / "squeezenet.arch")
    net = arch.network(network, size=size)
    assert any("does not tile" in d.message for d in net.diagnostics.items)


# ----------------------------------------------------------------------------------- torchvision


@pytest.mark.parametrize("name", TORCHVISION)
def test_state_dict(name):
    file, size = TORCHVISION[name]
    # meta tensors: shapes without allocating (or initialising) 130M VGG weights
    model = torchvision_model(name, 1000, device="meta")
    assert_same_state_dict(load_net(file, name), model)
    assert_same_state_dict(load_net(file, name, classes=10, size=size), torchvision_model(name, 10, "meta"))


@pytest.mark.parametrize("name", OUTPUTS)
def test_outputs(name):
    file, size = TORCHVISION[name]
    net = load_net(file, name, classes=10, size=size)
    assert_same_outputs(net, torchvision_model(name, 10), size)


def test_torchvision_param_counts():
    """torchvision's documented num_params (weights metadata) for 1000 classes."""
    expected = {"alexnet": 61_100_840, "squeezenet1_0": 1_248_424, "squeezenet1_1": 1_235_496,
                "vgg11": 132_863_336, "vgg13": 133_047_848, "vgg16": 138_357_544, "vgg19": 143_667_240,
                "vgg11_bn": 132_868_840, "vgg13_bn": 133_053_736, "vgg16_bn": 138_365_992,
                "vgg19_bn": 143_678_248}
    for name, want in expected.items():
        assert params(load_net(TORCHVISION[name][0], name)) == want, name


def test_vgg_features_layout():
    """make_layers: conv, [bn,] relu per entry and a maxpool per "M", all in one Sequential."""
    net = load_net("vgg.arch", "vgg11")
    ops = [(n.path, n.op) for n in net.nodes if n.path.startswith("features.")]
    assert ops[:4] == [("features.0", "conv"), ("features.1", "relu"), ("features.2", "maxpool"),
                       ("features.3", "conv")]
    assert ops[-1] == ("features.20", "maxpool")
    net = load_net("vgg.arch", "vgg11_bn")
    ops = [(n.path, n.op) for n in net.nodes if n.path.startswith("features.")]
    assert ops[:5] == [("features.0", "conv"), ("features.1", "bn"), ("features.2", "relu"),
                       ("features.3", "maxpool"), ("features.4", "conv")]
    assert ops[-1] == ("features.28", "maxpool")
    s = shapes(net)
    assert s["avgpool"] == (512, 7, 7)
    assert s["classifier.6"] == (1000,)


def test_squeezenet_shapes():
    s = shapes(load_net("squeezenet.arch", "squeezenet1_0"))  # 227 input
    assert s["features.0"] == (96, 111, 111)                  # (227 - 7) / 2 + 1
    assert s["features.2"] == (96, 55, 55)                    # ceil((111 - 3) / 2) + 1
    assert s["features.3.expand1x1"] == (64, 55, 55)
    assert s["features.3.expand3x3"] == (64, 55, 55)
    assert s["features.6"] == (256, 27, 27)
    assert s["features.11"] == (512, 13, 13)
    assert s["features.12.expand3x3"] == (256, 13, 13)
    assert s["classifier.3"] == (1000, 1, 1)
    s = shapes(load_net("squeezenet.arch", "squeezenet1_1"))
    assert s["features.0"] == (64, 113, 113)
    assert s["features.2"] == (64, 56, 56)
    assert s["features.5"] == (128, 28, 28)
    assert s["features.8"] == (256, 14, 14)
    assert s["features.12.squeeze"] == (64, 14, 14)


def test_init_declarations():
    net = load_net("vgg.arch", "vgg16_bn")
    for n in net.nodes:
        want = {"conv": ("kaiming_normal", {"mode": "fan_out", "nonlinearity": "relu", "bias": 0}),
                "bn": ("constant", {"value": 1, "bias": 0}),
                "linear": ("normal", {"mean": 0, "std": 0.01, "bias": 0})}.get(n.op)
        if want:
            assert n.scope.init_for(n.op) == want, n.path
    net = load_net("squeezenet.arch", "squeezenet1_1")
    for n in net.nodes:
        if n.op == "conv":
            want = (("normal", {"mean": 0.0, "std": 0.01, "bias": 0}) if n.path == "classifier.1"
                    else ("kaiming_uniform", {"bias": 0}))
            assert n.scope.init_for("conv") == want, n.path
    assert all(n.scope.init_for(n.op) is None for n in load_net("alexnet.arch", "alexnet").nodes)


def test_init_applied_by_torch_module():
    """Compiled modules initialise as torchvision does (statistics, not values)."""
    torch = pytest.importorskip("torch")
    torch.manual_seed(0)
    sd = load_net("squeezenet.arch", "squeezenet1_0", classes=10).to_torch().state_dict()
    w = sd["features.0.weight"]  # kaiming_uniform_ defaults: std = sqrt(2 / fan_in)
    assert abs(w.std().item() / math.sqrt(2 / (3 * 7 * 7)) - 1) < 0.05
    assert abs(sd["classifier.1.weight"].std().item() / 0.01 - 1) < 0.2  # 512 x 10 values
    assert all(torch.all(v == 0) for k, v in sd.items() if k.endswith(".bias"))

    sd = load_net("vgg.arch", "vgg11_bn", classes=10, size=32).to_torch().state_dict()
    w = sd["features.4.weight"]  # conv 64 -> 128, kaiming_normal fan_out: std = sqrt(2 / (128 * 9))
    assert abs(w.std().item() / math.sqrt(2 / (128 * 9)) - 1) < 0.05
    assert torch.all(sd["features.1.weight"] == 1) and torch.all(sd["features.1.bias"] == 0)
    assert abs(sd["classifier.3.weight"].std().item() / 0.01 - 1) < 0.01
    assert torch.all(sd["classifier.0.bias"] == 0) and torch.all(sd["features.0.bias"] == 0)


# -------------------------------------------------------------------------------- paper models


def test_lenet5():
    net = load_net("lenet5.arch", "lenet5")
    s = shapes(net)
    assert s["conv1"] == (6, 28, 28)                       # 32 - 5 + 1
    assert s["1"] == (6, 14, 14)                           # maxpool 2
    assert s["conv2"] == (16, 10, 10)
    assert s["3"] == (16, 5, 5)
    assert s["4"] == (16 * 5 * 5,)                         # flatten: 400
    assert (s["fc1"], s["fc2"], s["fc3"]) == ((120,), (84,), (10,))
    want = conv_p(1, 6, 5) + conv_p(6, 16, 5) + linear_p(400, 120) + linear_p(120, 84) + linear_p(84, 10)
    assert want == 156 + 2_416 + 48_120 + 10_164 + 850 == 61_706
    assert params(net) == want


def test_alexnet_paper():
    net = load_net("alexnet.arch", "alexnet_paper")
    s = shapes(net)
    assert s["conv1"] == (96, 55, 55)                      # (227 - 11) / 4 + 1 = 55
    assert s["pool1"] == (96, 27, 27)                      # (55 - 3) / 2 + 1
    assert s["conv2"] == s["norm2"] == (256, 27, 27)       # 5x5 pad 2 keeps 27
    assert s["pool2"] == (256, 13, 13)
    assert s["conv3"] == s["conv4"] == (384, 13, 13)
    assert s["conv5"] == (256, 13, 13)
    assert s["pool5"] == (256, 6, 6)                       # (13 - 3) / 2 + 1
    assert s["fc6"] == s["fc7"] == (4096,) and s["fc8"] == (1000,)
    layers = {"conv1": conv_p(3, 96, 11), "conv2": conv_p(96, 256, 5), "conv3": conv_p(256, 384, 3),
              "conv4": conv_p(384, 384, 3), "conv5": conv_p(384, 256, 3),
              "fc6": linear_p(6 * 6 * 256, 4096), "fc7": linear_p(4096, 4096), "fc8": linear_p(4096, 1000)}
    assert layers["conv1"] == 34_944 and layers["fc6"] == 37_752_832
    rows = {r.path: r.params for r in net.summary().rows}
    assert {k: rows[k] for k in layers} == layers
    assert params(net) == sum(layers.values()) == 62_378_344


def test_alexnet_torchvision_shapes():
    s = shapes(load_net("alexnet.arch", "alexnet"))
    assert s["features.0"] == (64, 55, 55)                 # (224 + 4 - 11) / 4 + 1
    assert s["features.12"] == (256, 6, 6)
    assert s["avgpool"] == (256, 6, 6)
    assert s["classifier.6"] == (1000,)


# configuration -> kernel sizes per stage (paper, Table 1); stage widths 64, 128, 256, 512, 512
VGG_PAPER = {
    "vgg_a": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "vgg_a_lrn": ((3,), (3,), (3, 3), (3, 3), (3, 3)),
    "vgg_b": ((3, 3), (3, 3), (3, 3), (3, 3), (3, 3)),
    "vgg_c": ((3, 3), (3, 3), (3, 3, 1), (3, 3, 1), (3, 3, 1)),
    "vgg_d": ((3, 3), (3, 3), (3, 3, 3), (3, 3, 3), (3, 3, 3)),
    "vgg_e": ((3, 3), (3, 3), (3, 3, 3, 3), (3, 3, 3, 3), (3, 3, 3, 3)),
}
# exact counts, and the paper's Table 2 in millions
VGG_PAPER_PARAMS = {"vgg_a": (132_863_336, 133), "vgg_a_lrn": (132_863_336, 133),
                    "vgg_b": (133_047_848, 133), "vgg_c": (133_638_952, 134),
                    "vgg_d": (138_357_544, 138), "vgg_e": (143_667_240, 144)}


def vgg_paper_params(kernels, classes=1000) -> int:
    total, cin = 0, 3
    for width, ks in zip((64, 128, 256, 512, 512), kernels):
        for k in ks:
            total += conv_p(cin, width, k)
            cin = width
    return total + linear_p(7 * 7 * 512, 4096) + linear_p(4096, 4096) + linear_p(4096, classes)


@pytest.mark.parametrize("name", VGG_PAPER)
def test_vgg_paper_params(name):
    exact, millions = VGG_PAPER_PARAMS[name]
    assert vgg_paper_params(VGG_PAPER[name]) == exact
    assert round(exact / 1e6) == millions
    net = load_net("vgg.arch", name)
    assert params(net) == exact
    weight_layers = sum(len(ks) for ks in VGG_PAPER[name]) + 3
    assert sum(n.op in ("conv", "linear") for n in net.nodes) == weight_layers  # the "11 ... 19" in the names
    assert sum(n.op == "lrn" for n in net.nodes) == (name == "vgg_a_lrn")
    assert net.shape_of(net.outputs["output"]) == (1000,)


def test_vgg_c_has_1x1_convs_in_the_last_three_stages():
    net = load_net("vgg.arch", "vgg_c")
    ones = [n for n in net.nodes if n.op == "conv" and n.attrs["kernel"] == (1, 1)]
    assert [n.shape for n in ones] == [(256, 56, 56), (512, 28, 28), (512, 14, 14)]


def test_vgg16_memory_table():
    """The course notes' VGG16 table: output size of every layer, weights, and the sums."""
    net = load_net("vgg.arch", "vgg_d")
    rows = [r for r in net.summary().rows if r.op in ("input", "conv", "maxpool", "linear")]
    table = [  # (op, output, values, weights without bias)
        ("input", (3, 224, 224), 224 * 224 * 3, 0),
        ("conv", (64, 224, 224), 224 * 224 * 64, 3 * 3 * 3 * 64),
        ("conv", (64, 224, 224), 224 * 224 * 64, 3 * 3 * 64 * 64),
        ("maxpool", (64, 112, 112), 112 * 112 * 64, 0),
        ("conv", (128, 112, 112), 112 * 112 * 128, 3 * 3 * 64 * 128),
        ("conv", (128, 112, 112), 112 * 112 * 128, 3 * 3 * 128 * 128),
        ("maxpool", (128, 56, 56), 56 * 56 * 128, 0),
        ("conv", (256, 56, 56), 56 * 56 * 256, 3 * 3 * 128 * 256),
        ("conv", (256, 56, 56), 56 * 56 * 256, 3 * 3 * 256 * 256),
        ("conv", (256, 56, 56), 56 * 56 * 256, 3 * 3 * 256 * 256),
        ("maxpool", (256, 28, 28), 28 * 28 * 256, 0),
        ("conv", (512, 28, 28), 28 * 28 * 512, 3 * 3 * 256 * 512),
        ("conv", (512, 28, 28), 28 * 28 * 512, 3 * 3 * 512 * 512),
        ("conv", (512, 28, 28), 28 * 28 * 512, 3 * 3 * 512 * 512),
        ("maxpool", (512, 14, 14), 14 * 14 * 512, 0),
        ("conv", (512, 14, 14), 14 * 14 * 512, 3 * 3 * 512 * 512),
        ("conv", (512, 14, 14), 14 * 14 * 512, 3 * 3 * 512 * 512),
        ("conv", (512, 14, 14), 14 * 14 * 512, 3 * 3 * 512 * 512),
        ("maxpool", (512, 7, 7), 7 * 7 * 512, 0),
        ("linear", (4096,), 4096, 7 * 7 * 512 * 4096),
        ("linear", (4096,), 4096, 4096 * 4096),
        ("linear", (1000,), 1000, 4096 * 1000),
    ]
    assert table[1][2] == 3_211_264 and table[18][2] == 25_088 and table[19][3] == 102_760_448
    biases = 2 * 64 + 2 * 128 + 3 * 256 + 6 * 512 + 4096 + 4096 + 1000
    got = [(r.op, r.shape, r.activations, r.params - (int(r.shape.strip("[]").split(",")[0])
                                                        if r.params else 0)) for r in rows]
    assert got == [(op, "[" + ", ".join(map(str, shape)) + "]", v, w) for op, shape, v, w in table]
    assert sum(w for *_, w in table) + biases == 138_357_544 == params(net)
    # ReLUs work in place and add nothing: the forward pass holds ~15.2M values, ~58 MiB float32
    totals = net.summary().totals
    assert totals["activations"] == sum(v for _, _, v, _ in table) == 15_237_608
    assert totals["activation_bytes"] == 4 * 15_237_608


def test_vgg_torchvision_224_shapes():
    """torchvision's vgg16 at 224 has the paper's shapes (its avgpool is then the identity)."""
    s = shapes(load_net("vgg.arch", "vgg16"))
    convs = [v for k, v in s.items() if k.startswith("features.")]
    assert convs[0] == (64, 224, 224) and convs[-1] == (512, 7, 7)
    assert s["avgpool"] == (512, 7, 7) and s["classifier.0"] == (4096,)


def mlpconv_p(cin, channels, k) -> int:
    c0, c1, c2 = channels
    return conv_p(cin, c0, k) + conv_p(c0, c1, 1) + conv_p(c1, c2, 1)


def test_nin_cifar10():
    net = load_net("nin.arch", "nin")
    s = shapes(net)
    assert s["mlpconv1.4"] == (96, 32, 32)                 # 5x5 pad 2 keeps 32
    assert s["pool1"] == (96, 16, 16)                      # ceil((32 - 3) / 2) + 1
    assert s["mlpconv2.4"] == (192, 16, 16)
    assert s["pool2"] == (192, 8, 8)
    assert s["mlpconv3.4"] == (10, 8, 8)                   # one map per class
    assert net.shape_of(net.outputs["output"]) == (10,)     # global average pooling, no FC
    assert not any(n.op == "linear" for n in net.nodes)
    want = mlpconv_p(3, (192, 160, 96), 5) + mlpconv_p(96, (192, 192, 192), 5) + mlpconv_p(192, (192, 192, 10), 3)
    assert params(net) == want == 966_986


def test_nin_imagenet():
    net = load_net("nin.arch", "nin_imagenet")
    s = shapes(net)
    assert s["mlpconv1.4"] == (96, 55, 55)                 # (227 - 11) / 4 + 1
    assert s["pool1"] == (96, 27, 27)
    assert s["pool2"] == (256, 13, 13)
    assert s["pool3"] == (384, 6, 6)
    assert s["mlpconv4.4"] == (1000, 6, 6)
    want = (mlpconv_p(3, (96, 96, 96), 11) + mlpconv_p(96, (256, 256, 256), 5)
            + mlpconv_p(256, (384, 384, 384), 3) + mlpconv_p(384, (1024, 1024, 1000), 3))
    assert params(net) == want == 7_595_176


def test_classes_and_size_parameters():
    for file, name, size in [("lenet5.arch", "lenet5", 28), ("nin.arch", "nin", 64),
                             ("alexnet.arch", "alexnet_paper", 259), ("vgg.arch", "vgg_e", 64)]:
        net = load_net(file, name, classes=7, size=size)
        assert net.shape_of(net.outputs["output"]) == (7,), name
    assert params(load_net("lenet5.arch", "lenet5", size=28)) == 61_706 - 400 * 120 + 256 * 120


@pytest.mark.parametrize("file,name,size", [
    ("lenet5.arch", "lenet5", 32), ("nin.arch", "nin", 32), ("nin.arch", "nin_imagenet", 99),
    ("alexnet.arch", "alexnet_paper", 227), ("vgg.arch", "vgg_a_lrn", 32), ("vgg.arch", "vgg_c", 32),
])
def test_paper_models_run(file, name, size):
    """The compiled module has archdsl's state_dict and gives the inferred output shape."""
    torch = pytest.importorskip("torch")
    from archdsl.passes.analysis import state_dict_shapes

    net = load_net(file, name, classes=10, size=size)
    model = net.to_torch().eval()
    assert {k: tuple(v.shape) for k, v in model.state_dict().items()} == state_dict_shapes(net)
    channels = net.shape_of(net.inputs["image"])[0]
    with torch.no_grad():
        out = model(torch.randn(2, channels, size, size))
    assert tuple(out.shape) == (2, *net.shape_of(net.outputs["output"]))
