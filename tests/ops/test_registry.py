"""Every op of the registry, every one of its examples, against torch and onnxruntime.

A new op needs no edit here: its entry's ``examples`` are picked up, and the facet test names any
facet it lacks (``mish: no onnx lowering``).  Per example: the inferred output shape against the
compiled module's, parameters and ``state_dict`` against torch's, MACs against
``torch.utils.flop_counter`` (which counts conv, conv_transpose and linear: flops = 2 * MACs),
and the ONNX export against onnxruntime.
"""
from __future__ import annotations

import pytest

import archdsl
from archdsl import ops
from archdsl.backends.onnx import MIN_OPSET
from archdsl.ops import Trait
from archdsl.passes.analysis import receptive_fields, state_dict_shapes

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from onnx_parity import assert_shapes_agree, one_op, parity  # noqa: E402

EXAMPLES = ops.examples()


# ------------------------------------------------------------------------------------- facets


def missing_facets(spec: ops.OpSpec) -> list[str]:
    """What an entry lacks, in words; empty when it is complete."""
    out = []
    t = spec.torch
    if not (spec.doc and spec.rule and spec.example):
        out.append("no doc, rule or doc example")
    if t is None or (t.module is None and t.functional is None and t.operator is None):
        out.append("no PyTorch spelling")
    if spec.onnx is None:
        out.append("no onnx lowering")
    if not any(spec.name in {n.op for n in _net(e).nodes} for e in spec.examples):
        out.append("no example that uses it")
    if spec.has(Trait.INITIALISABLE) and (t is None or t.isinstance_of() is None):
        out.append("initialisable but no PyTorch class to find it by (TorchSpec.init_class)")
    if spec.has(Trait.IN_PLACE_OK) and t is not None and t.operator is None and "inplace" not in t.defaults:
        out.append("IN_PLACE_OK but its PyTorch class takes no inplace argument")
    if spec.has_weights and (t is None or t.module is None):
        out.append("weights but no PyTorch module to own them")
    return out


def test_every_op_has_every_facet():
    problems = [f"{name}: {what} (examples: {', '.join(repr(e.text) for e in spec.examples)})"
                for name, spec in ops.REGISTRY.items() for what in missing_facets(spec)]
    assert not problems, "\n".join(problems)


def test_the_facet_test_names_what_is_missing():
    spec = ops.REGISTRY["relu"]
    broken = ops.OpSpec("mish_draft", (), "Element-wise mish.", ops.same_shape, family="act", rule="same",
                        example="relu", torch=spec.torch)
    assert missing_facets(broken) == ["no onnx lowering", "no example that uses it"]


def test_example_ids_are_unique():
    ids = [e.id for s in ops.REGISTRY.values() for e in s.examples]
    assert len(ids) == len(set(ids)), sorted(i for i in ids if ids.count(i) > 1)


# ------------------------------------------------------------------------------------- every example


def _net(example: ops.Example) -> archdsl.Network:
    return one_op(example.text, example.shape)


def _input(net, batch: int = 2):
    (v,) = net.inputs.values()
    return torch.randn(batch, *net.shape_of(v), generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("eid", sorted(EXAMPLES))
def test_example_against_torch(eid):
    net = _net(EXAMPLES[eid][1])
    module = net.to_torch().eval()
    x = _input(net)
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as flops:
        got = module(x)
    got = got if isinstance(got, tuple) else (got,)
    assert [tuple(t.shape[1:]) for t in got] == [net.shape_of(v) for v in net.outputs.values()]
    totals = net.summary().totals
    assert totals["params"] == sum(p.numel() for p in module.parameters())
    assert state_dict_shapes(net) == {k: tuple(t.shape) for k, t in module.state_dict().items()}
    # weights and buffers: the state_dict without the batch counter, which is no weight
    assert totals["weights_and_buffers"] == sum(t.numel() for k, t in module.state_dict().items()
                                                if not k.endswith("num_batches_tracked"))
    assert flops.get_total_flops() == 2 * totals["macs"] * x.shape[0]


@pytest.mark.parametrize("opset", [MIN_OPSET, 17])
@pytest.mark.parametrize("eid", sorted(EXAMPLES))
def test_example_against_onnxruntime(eid, opset, tmp_path):
    """At the default opset and the oldest one, where lowerings spell out newer ONNX ops."""
    net = _net(EXAMPLES[eid][1])
    assert_shapes_agree(net, parity(net, tmp_path, opset=opset))


# ------------------------------------------------------------------------------------- receptive field


def torch_receptive_field(net) -> int:
    """The height of the input window that reaches the centre output value: the rows with a
    gradient, weights made positive so that nothing cancels."""
    module = net.to_torch().eval()
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(p.abs() + 0.01)
    x = _input(net, 1).abs().requires_grad_(True)
    y = module(x)
    y[0, :, y.shape[2] // 2, y.shape[3] // 2].sum().backward()
    rows = x.grad[0].abs().sum(dim=(0, 2)).nonzero().flatten()
    return int(rows.max() - rows.min() + 1)


@pytest.mark.parametrize("stage, size", [
    ("conv(4, 3, dilation=2) -> conv(4, 3)", 7),  # dilation widens the first window to 5
    ("conv(4, 3, stride=2) -> conv(4, 3, dilation=3)", 15),
    ("concat { conv(4, 1) | conv(4, 5, pad=2) }", 5),  # the largest branch second
    ("add { conv(4, 5, pad=2) | conv(4, 1) }", 5),
    ("avgpool(3, stride=2) -> conv(4, 3)", 7),
])
def test_receptive_field_against_torch(stage, size):
    net = one_op(stage, (4, 41, 41))
    (out,) = net.outputs.values()
    rf = receptive_fields(net)[out[0]]
    assert rf[0] == size == torch_receptive_field(net)


# ------------------------------------------------------------------------------------- in place


def test_sequential_child_is_not_in_place_on_a_shared_input(tmp_path):
    """The first child of an nn.Sequential reads the sequence's input, which another branch may
    read too: it never runs in place.  After a fresh producer (a conv) it does; after a sigmoid,
    whose backward keeps its output, it does not."""
    net = one_op("add { s: seq { relu -> conv(4, 1) -> relu -> sigmoid -> relu } | identity }")
    source = net.torch_source()
    assert source.count("nn.ReLU(inplace=True)") == 1
    assert source.index("nn.ReLU()") < source.index("nn.ReLU(inplace=True)") < source.rindex("nn.ReLU()")
    parity(net, tmp_path)  # an in-place first relu would change the identity branch
    module = net.to_torch().train()
    module(_input(net).requires_grad_(True)).sum().backward()  # nothing backward needs was overwritten


@pytest.mark.parametrize("eid", sorted(EXAMPLES))
def test_seeded_onnx_init_starts_where_torch_does(eid):
    """Weights PyTorch initialises to a constant (norm scales and shifts, running statistics,
    PReLU's slope: Weight.fill) have torch's values in the ONNX backend's seeded initialisation."""
    from archdsl.backends.onnx import init_weights
    from archdsl.weights import weight_specs

    net = _net(EXAMPLES[eid][1])
    ours, theirs = init_weights(net), net.to_torch().state_dict()
    for n, w in weight_specs(net):
        if w.fill is not None or w.role in ("bn_weight", "bn_bias", "mean", "var", "count"):
            key = f"{n.path}.{w.name}"
            assert (ours[key] == theirs[key].numpy()).all(), key
