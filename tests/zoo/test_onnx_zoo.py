"""ONNX parity for the zoo: every examples/*.arch network, exported at a small input size, gives
onnxruntime outputs equal to the compiled PyTorch module's (relative error < 1e-4).

Networks are discovered from the files, so new zoo entries are picked up.  A file's variants
that share a structure with a tested one (vgg13, resnet101, densenet169, ...) differ only in depth
or width, which costs minutes without testing anything new; by default a representative subset
runs (the first network of each file plus the variants that add an op or a structure), and
``ARCHDSL_ZOO_ALL=1`` runs every network.
"""
from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest
from onnx_parity import assert_shapes_agree, parity

import archdsl
from archdsl.errors import ArchError

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"

pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

SIZES = (64, 96, 128, 140, 188, 224)  # the smallest that elaborates is used (valid U-Net needs 140)
# parameters that shrink a network without changing its structure
SHRINK = {"fcn32s": {"width": 256}, "unet": {"base": 16}, "unet_valid": {"base": 16}}
# variants worth their time beyond the first network of each file: a new op or structure each
EXTRA = {"alexnet_paper", "resnet50", "resnext50_32x4d", "squeezenet1_1", "vgg11_bn", "vgg_a_lrn",
         "fcn32s", "unet_valid", "nin_imagenet", "shufflenet_v2_x0_5", "mnasnet0_5"}
# over ~20M parameters at the test size: slow (still run)
LARGE = {"alexnet", "alexnet_paper", "vgg", "vgg11_bn", "vgg_a_lrn", "fcn_resnet50", "fcn32s", "resnext50_32x4d",
         "resnet50"}
# with --fold-bn --functions --dynamic-batch as well: the networks with blocks and batch norms
STRUCTURED = {"resnet", "resnet50", "densenet", "googlenet", "inception_v3", "mobilenet_v2", "mnasnet",
              "shufflenet_v2", "unet"}
ALL = bool(os.environ.get("ARCHDSL_ZOO_ALL"))


def discover():
    out = []
    for path in sorted(EXAMPLES.glob("*.arch")):
        try:
            names = archdsl.load(path).networks
        except ArchError:
            continue  # a broken zoo file is the zoo tests' business
        for i, name in enumerate(names):
            marks = [pytest.mark.slow] if name in LARGE or (ALL and i) else []
            if not (ALL or i == 0 or name in EXTRA):
                marks.append(pytest.mark.skip(reason="same structure as a tested network; ARCHDSL_ZOO_ALL=1 runs it"))
            out.append(pytest.param(path.name, name, marks=marks, id=f"{path.stem}:{name}"))
    return out


@functools.cache
def network(file: str, name: str):
    arch = archdsl.load(EXAMPLES / file)
    error = None
    for size in SIZES:
        try:
            return arch.network(name, size=size, **SHRINK.get(name, {}))
        except ArchError as err:
            error = err
    raise error


ZOO = discover()


@pytest.mark.parametrize("file,name", ZOO)
def test_zoo_network(file, name, tmp_path):
    net = network(file, name)
    assert_shapes_agree(net, parity(net, tmp_path))


@pytest.mark.parametrize("file,name", [p for p in ZOO if p.values[1] in STRUCTURED or ALL])
def test_zoo_network_folded_functions(file, name, tmp_path):
    net = network(file, name)
    parity(net, tmp_path, batch=2, fold_bn=True, functions=True, dynamic_batch=True)
