"""Helpers for ONNX parity: one-op networks, and onnxruntime against the compiled PyTorch module."""
from __future__ import annotations

import numpy as np
import onnx
import torch
import onnxruntime as ort

import archdsl
from archdsl.backends.onnx import export

RTOL = 1e-4


def one_op(stage: str, shape=(4, 9, 9)) -> archdsl.Network:
    """A network that feeds an input of ``shape`` through ``stage`` (a pipeline or statements)."""
    dims = ", ".join(str(d) for d in shape)
    body = stage if "\n" in stage else f"x -> {stage}"
    return archdsl.loads(f"network t() {{\n input x: [{dims}]\n {body}\n}}").network()


def randomise(module) -> None:
    """Non-trivial batch-norm statistics and affine parameters, so that folding is really tested."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        for name, t in module.state_dict().items():
            if name.endswith("running_var"):
                t.copy_(torch.rand(t.shape, generator=g) + 0.5)
            elif name.endswith("running_mean"):
                t.copy_(torch.randn(t.shape, generator=g) * 0.2)
            elif t.is_floating_point() and t.dim() == 1:  # norm scales and all biases
                t.copy_(torch.randn(t.shape, generator=g) * 0.3 + (1.0 if name.endswith("weight") else 0.0))


def feeds(net, batch: int, sizes: dict | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    out = {}
    for name, v in net.inputs.items():
        shape = [sizes.get(d, 17) if isinstance(d, str) else d for d in net.shape_of(v)] if sizes is not None \
            else [d if isinstance(d, int) else 17 for d in net.shape_of(v)]
        out[name] = rng.standard_normal((batch, *shape)).astype(np.float32)
    return out


def torch_outputs(module, net, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    with torch.no_grad():
        got = module(*(torch.from_numpy(inputs[k]) for k in net.inputs))
    got = got if isinstance(got, (tuple, list)) else (got,)
    return [t.numpy() for t in got]


def run_ort(model: onnx.ModelProto, inputs: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, inputs)


def rel_error(got: np.ndarray, want: np.ndarray) -> float:
    assert got.shape == want.shape, (got.shape, want.shape)
    scale = max(float(np.abs(want).max()), 1e-6)
    return float(np.abs(got.astype(np.float64) - want).max()) / scale


def parity(net, tmp_path, batch: int = 2, rtol: float = RTOL, **options) -> onnx.ModelProto:
    """Export with the PyTorch module's weights; every output agrees within ``rtol``."""
    module = net.to_torch().eval()
    randomise(module)
    pt = tmp_path / "weights.pt"
    torch.save(module.state_dict(), pt)
    model = export(net, weights=str(pt), **options)
    batch = batch if options.get("dynamic_batch") else 1
    inputs = feeds(net, batch)
    want = torch_outputs(module, net, inputs)
    got = run_ort(model, inputs)
    assert len(got) == len(want) == len(net.outputs)
    err = max(rel_error(g, w) for g, w in zip(got, want))
    assert err < rtol, f"max relative error {err:.2e}"
    return model


def assert_shapes_agree(net, model: onnx.ModelProto) -> None:
    """onnx's own shape inference gives archdsl's shape for every output (known dims)."""
    inferred = onnx.shape_inference.infer_shapes(model, check_type=True, strict_mode=True)
    values = {v.name: v for v in list(inferred.graph.value_info) + list(inferred.graph.output)}
    for name, v in net.outputs.items():
        dims = values[name].type.tensor_type.shape.dim
        want = net.shape_of(v)
        assert len(dims) == len(want) + 1, (name, dims, want)
        for d, w in zip(dims[1:], want):
            if isinstance(w, int):
                assert d.HasField("dim_value") and d.dim_value == w, (name, dims, want)


