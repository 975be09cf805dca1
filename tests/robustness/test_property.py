"""Property test: random valid networks -> inferred shapes and parameter counts equal real torch's."""
from __future__ import annotations

import torch
from hypothesis import HealthCheck, assume, given, settings

import archdsl
from networks import program


@settings(max_examples=500, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
@given(program())
def test_inferred_shapes_and_params_equal_torch(case):
    src, shape = case
    try:
        net = archdsl.loads(src).network()
    except archdsl.ArchError:
        assume(False)  # the random stack shrank the map below a kernel: not a valid network
        return
    model = net.to_torch().eval()
    with torch.no_grad():
        y = model(torch.randn(2, *shape))
    assert tuple(y.shape[1:]) == net.shape_of(net.outputs["output"]), src
    assert net.summary().totals["params"] == sum(p.numel() for p in model.parameters()), src


def test_the_generator_produces_mostly_valid_networks():
    """Guard against a generator that only yields rejected programs (the property would be vacuous)."""
    from hypothesis import find

    def valid(case):
        try:
            archdsl.loads(case[0]).network()
        except archdsl.ArchError:
            return False
        return "concat" in case[0] and "add" in case[0] and "groups" in case[0]

    src, _ = find(program(), valid, settings=settings(database=None, max_examples=2000))
    assert "concat" in src
