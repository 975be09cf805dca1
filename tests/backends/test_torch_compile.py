"""torch.compile traces the generated modules in one graph (no graph breaks)."""
from __future__ import annotations

from pathlib import Path

import pytest

import archdsl

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.mark.slow
@pytest.mark.parametrize("file,name", [("resnet.arch", "resnet50"), ("densenet.arch", "densenet121"),
                                       ("googlenet.arch", "googlenet")])
def test_no_graph_breaks(file, name):
    import torch
    import torch._dynamo

    model = archdsl.load(EXAMPLES / file).network(name, size=64).to_torch().eval()
    torch._dynamo.reset()
    explanation = torch._dynamo.explain(model)(torch.randn(1, 3, 64, 64))
    assert explanation.graph_break_count == 0, explanation.break_reasons
    assert explanation.graph_count == 1
