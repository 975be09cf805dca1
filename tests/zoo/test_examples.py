"""Every example: checks clean with --strict, and the real module's output shape is the inferred one."""
from __future__ import annotations

from pathlib import Path

import pytest

import archdsl
from archdsl.tools.cli import main

EXAMPLES = sorted((Path(__file__).resolve().parents[2] / "examples").glob("*.arch"))
NETWORKS = [(p, name) for p in EXAMPLES for name in archdsl.load(p).networks]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_example_checks_strict(path, capsys):
    assert main(["check", "--strict", str(path)]) == 0, capsys.readouterr().err


def _small(arch, name):
    """The network at the smallest of a few input sizes it accepts (fast on two cores)."""
    net = arch.network(name)
    if "size" not in net.params:
        return net
    for size in (32, 64, 96, 128, 160, 224, 299):
        try:
            return arch.network(name, size=size)
        except archdsl.ArchError:
            continue
    return net


@pytest.mark.parametrize("path,name", NETWORKS, ids=[f"{p.stem}-{n}" for p, n in NETWORKS])
def test_real_output_shape_equals_inferred(path, name):
    import torch

    net = _small(archdsl.load(path), name)
    shapes = {k: net.shape_of(v) for k, v in net.inputs.items()}
    if any(isinstance(d, str) for s in shapes.values() for d in s):
        net = archdsl.load(path).network(name, H=64, W=64)
        shapes = {k: net.shape_of(v) for k, v in net.inputs.items()}
    model = net.to_torch().eval()
    with torch.no_grad():
        out = model(*(torch.randn(1, *s) for s in shapes.values()))
    outs = out if isinstance(out, tuple) else (out,)
    want = [net.shape_of(v) for v in net.outputs.values()]
    assert [tuple(o.shape[1:]) for o in outs] == want


def test_zoo_doc_is_up_to_date():
    import runpy

    root = Path(__file__).resolve().parents[2]
    gen = runpy.run_path(str(root / "scripts" / "gen_zoo.py"))
    assert (root / "docs" / "zoo.md").read_text() == gen["render"](), "run: python scripts/gen_zoo.py"
