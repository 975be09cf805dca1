"""Helpers for parity tests against torchvision (random weights; none are downloaded)."""
from __future__ import annotations

from pathlib import Path

import archdsl
from archdsl.passes.analysis import state_dict_shapes

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def load_net(file: str, network: str, **params):
    return archdsl.load(EXAMPLES / file).network(network, **params)


def tv_shapes(model) -> dict[str, tuple[int, ...]]:
    return {k: tuple(v.shape) for k, v in model.state_dict().items()}


def assert_same_state_dict(net, model) -> None:
    """Same keys, same shapes, same parameter count as the torchvision model."""
    ours, theirs = state_dict_shapes(net), tv_shapes(model)
    missing = sorted(set(theirs) - set(ours))
    extra = sorted(set(ours) - set(theirs))
    assert not missing and not extra, f"missing {missing[:8]} ... extra {extra[:8]} ..."
    wrong = {k: (ours[k], theirs[k]) for k in theirs if ours[k] != theirs[k]}
    assert not wrong, f"shape mismatches: {dict(list(wrong.items())[:8])}"
    tv_params = sum(p.numel() for p in model.parameters())
    assert net.summary().totals["params"] == tv_params


def assert_same_outputs(net, model, size: int, batch: int = 2, rtol: float = 1e-5) -> None:
    """Load torchvision's random weights into the compiled module; eval outputs must agree."""
    import torch

    ours = net.to_torch()
    ours.load_state_dict(model.state_dict(), strict=True)
    ours.eval()
    model.eval()
    channels = net.shape_of(next(iter(net.inputs.values())))[0]
    torch.manual_seed(0)
    x = torch.randn(batch, channels, size, size)
    with torch.no_grad():
        want = model(x)
        got = ours(x)
    if isinstance(want, dict):  # segmentation models return {"out": ...}
        want = want["out"]
    if isinstance(got, (tuple, list)):
        got = got[0]
    assert got.shape == want.shape
    scale = want.abs().max().clamp_min(1e-6)
    assert ((got - want).abs().max() / scale).item() < rtol, (got - want).abs().max().item()


def torchvision_random(name: str, classes: int = 1000):
    """A torchvision model with seeded random weights and perturbed batch-norm statistics, so that
    BN is not a near-identity and a wrong eps or layer order shows in the outputs."""
    import torch
    from torchvision import models

    torch.manual_seed(0)
    model = getattr(models, name)(weights=None, num_classes=classes).eval()
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
    return model
