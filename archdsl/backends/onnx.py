"""ONNX backend: a ModelProto built straight from the graph IR with ``onnx.helper``.

No tracing: every IR node is handed to its op's ONNX lowering (the ``onnx`` facet of its registry
entry, declared beside the op in ``archdsl/ops/``), which appends ONNX nodes to an
:class:`Emitter`.  Names follow the ``.arch`` file: graph inputs and outputs are the network's
tensors, node names are module paths (``layer1.0.conv1``) and initializers are ``state_dict``
keys (``layer1.0.conv1.weight``).  The model is for inference: dropout disappears and batch norm
uses its running statistics.

Weights come from a PyTorch ``state_dict`` file (``.pt``/``.pth``, read with torch) or a
``.safetensors`` file, read and checked by :mod:`archdsl.weights`; without one they are initialised with numpy, seeded and deterministic,
the way the generated PyTorch module initialises itself (its ``init`` declarations, otherwise
PyTorch's defaults), so this path never imports torch.
"""
from __future__ import annotations

import math
import zlib
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from google.protobuf.message import EncodeError
from onnx import TensorProto, helper, numpy_helper

from .. import ops
from ..version import __version__
from ..errors import ArchError, Diagnostics
from ..ir import Network, Node, Scope, Value
from ..ops import Trait
from ..ops.init import gain
from ..weights import load as load_weights
from ..weights import weight_specs

MIN_OPSET = 13
DOMAIN = "archdsl"  # the domain of the local functions of --functions


def export(net: Network, path: str | None = None, *, opset: int = 17, weights: str | None = None,
           dynamic_batch: bool = False, fold_bn: bool = False, functions: bool = False,
           seed: int = 0, diags: Diagnostics | None = None) -> onnx.ModelProto:
    """Build (and, with ``path``, write atomically) the ONNX model of ``net``.

    ``weights``: a ``state_dict`` file (``.pt``/``.pth``) or ``.safetensors``, read and checked by
    :mod:`archdsl.weights` (its warnings go to ``diags``); default: seeded initialisation.
    ``dynamic_batch``: a symbolic ``batch`` axis instead of 1.  ``fold_bn``: fold
    batch norm into the convolution before it.  ``functions``: each ``block`` instance becomes a call
    of an ONNX local function (one function per distinct block body).
    """
    latest = onnx.defs.onnx_opset_version()
    if not MIN_OPSET <= opset <= latest:
        raise ArchError(f"opset {opset} is not supported", hint=f"choose an opset from {MIN_OPSET} to {latest}")
    missing = sorted({n.op for n in net.nodes if n.op != "input" and ops.REGISTRY[n.op].onnx is None})
    if missing:  # pragma: no cover - every registry op has a lowering (tests/ops/test_registry.py)
        raise ArchError(f"no ONNX lowering for {', '.join(missing)}")
    tensors = load_weights(net, weights, diags) if weights else init_weights(net, seed)
    folded = fold_batch_norms(net, tensors, functions) if fold_bn else set()
    model = _Builder(net, opset, tensors, dynamic_batch, functions, folded).model()
    try:
        size = model.ByteSize()
    except EncodeError:  # protobuf cannot even measure a message over 2 GiB
        size = PROTOBUF_LIMIT
    if size >= PROTOBUF_LIMIT:
        if path is None:
            weights = sum(len(t.raw_data) for t in model.graph.initializer)
            raise ArchError(f"the ONNX model holds {weights / 2**30:.1f} GiB of weights, over protobuf's 2 GiB "
                            "limit for one message",
                            hint="write it to a file (compile -o model.onnx): the weights then go to "
                                 "model.onnx.data beside it")
        _save_with_external_data(model, path)
        return model
    data = model.SerializeToString()  # once: the checker and the file take the same bytes
    onnx.checker.check_model(data, full_check=True)
    if path is not None:
        from ..files import write_atomic

        write_atomic(path, data)
    return model


PROTOBUF_LIMIT = 2**31 - 1  # bytes of one serialised message; larger models keep their weights beside


def _save_with_external_data(model: onnx.ModelProto, path: str) -> None:
    """Write ``path`` and ``path.data`` (the weights, ONNX external data) together: both are made in
    a temporary directory beside them, checked, then moved into place."""
    import os
    import shutil
    import tempfile

    from ..files import output_mode

    target = Path(path)
    data_name = target.name + ".data"
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    try:
        onnx.save_model(model, str(tmp / target.name), save_as_external_data=True, all_tensors_to_one_file=True,
                        location=data_name, size_threshold=1024)
        onnx.checker.check_model(str(tmp / target.name), full_check=True)
        for name in (data_name, target.name):
            os.chmod(tmp / name, output_mode())
            os.replace(tmp / name, target.parent / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ============================================================================== emitting nodes


class Emitter:
    """Collects the ONNX nodes of the main graph or of one local function.

    Op emitters call :meth:`op`, :meth:`const` and :meth:`weight`; names are made unique here.
    ``prefix`` is the module path of a function's block (``layer1.0.``), stripped from the node
    and weight names inside it.
    """

    def __init__(self, builder: _Builder, prefix: str, reserved=()):
        self.b = builder
        self.net = builder.net
        self.opset = builder.opset
        self.dynamic_batch = builder.dynamic_batch
        self.prefix = prefix
        self.nodes: list[onnx.NodeProto] = []
        self.values: set[str] = set(reserved)
        self.node_names: set[str] = set()
        self.used: list[str] = []  # full state_dict keys read here, in first-use order
        self.current: Node | None = None

    # --------------------------------------------------------------------------- names
    def _rel(self, path: str) -> str:
        return path[len(self.prefix):] if self.prefix and path.startswith(self.prefix) else path

    def _base(self) -> str:
        n = self.current
        if n is None:
            return "node"
        return self._rel(n.path if n.name else ".".join([*n.scope.path_parts, n.op]))

    @staticmethod
    def _unique(used: set[str], base: str) -> str:
        name, i = base, 1
        while name in used:
            name = f"{base}_{i}"
            i += 1
        used.add(name)
        return name

    # --------------------------------------------------------------------------- nodes
    def op(self, op_type: str, inputs: list[str], n_out: int = 1, *, name: str | None = None,
           domain: str = "", **attrs: Any):
        """Append a node; returns its output name (a list of names when ``n_out > 1``)."""
        base = name or self._base()
        nname = self._unique(self.node_names, base if base not in self.node_names else f"{base}/{op_type}")
        outs = [self._unique(self.values, nname if n_out == 1 else f"{nname}:{k}") for k in range(n_out)]
        self.nodes.append(helper.make_node(op_type, inputs, outs, name=nname, domain=domain, **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=np.float32) -> str:
        """A Constant node holding ``value``."""
        arr = np.asarray(value, dtype=dtype)
        return self.op("Constant", [], value=numpy_helper.from_array(arr))

    def ints(self, values) -> str:
        """A 1-D int64 Constant (shapes, axes, pads)."""
        return self.const(list(values), np.int64)

    def weight(self, n: Node, name: str) -> str | None:
        """The initializer of ``n``'s weight ``name`` (``weight``, ``running_mean``), or None."""
        key = f"{n.path}.{name}"
        if key not in self.b.tensors:
            return None
        return self.use(key)

    def use(self, key: str) -> str:
        if key not in self.used:
            self.used.append(key)
        return self._rel(key)

    def in_shape(self, n: Node, k: int = 0):
        return self.net.shape_of(n.inputs[k])

    def folded(self, n: Node) -> bool:
        """Whether ``n`` (a batch norm) was folded into the conv before it: it passes its input on."""
        return n.id in self.b.folded

    def reduce(self, op_type: str, x: str, axes: list[int], keepdims: int = 1) -> str:
        """ReduceMean/ReduceMax/...: axes are an attribute before opset 18, an input from 18."""
        if self.opset >= 18:
            return self.op(op_type, [x, self.ints(axes)], keepdims=keepdims)
        return self.op(op_type, [x], axes=axes, keepdims=keepdims)


# ============================================================================== graph and functions


class _Builder:
    def __init__(self, net: Network, opset: int, tensors: dict[str, np.ndarray], dynamic_batch: bool,
                 functions: bool, folded: set[int]):
        self.net, self.opset, self.tensors = net, opset, tensors
        self.dynamic_batch, self.functions, self.folded = dynamic_batch, functions, folded
        self.function_protos: list[onnx.FunctionProto] = []
        self.function_names: dict[tuple, str] = {}
        self.function_used: set[str] = set()

    def model(self) -> onnx.ModelProto:
        net = self.net
        reserved = set(net.inputs) | set(net.outputs) | set(self.tensors)
        e = Emitter(self, "", reserved)
        vals: dict[Value, str] = {v: name for name, v in net.inputs.items()}
        self.emit_scope(e, net.root, vals)
        self._name_outputs(e, vals)
        batch = "batch" if self.dynamic_batch else 1
        inputs = [_value_info(name, (batch, *net.shape_of(v))) for name, v in net.inputs.items()]
        outputs = [_value_info(name, (batch, *net.shape_of(v))) for name, v in net.outputs.items()]
        graph = helper.make_graph(e.nodes, net.name, inputs, outputs,
                                  doc_string=f"network {net.name} of {Path(net.file).name}, compiled by archdsl")
        opsets = [helper.make_opsetid("", self.opset)]
        if self.function_protos:
            opsets.append(helper.make_opsetid(DOMAIN, 1))
        model = helper.make_model(graph, opset_imports=opsets, functions=self.function_protos,
                                  producer_name="archdsl", producer_version=__version__,
                                  ir_version=helper.find_min_ir_version_for(opsets, True))
        for key in e.used:  # straight into the model: no copies of 100M-parameter graphs
            _add_initializer(model.graph, key, self.tensors[key])
        params = ", ".join(f"{k}={v!r}" for k, v in net.params.items())
        helper.set_model_props(model, {"source": Path(net.file).name, "network": f"{net.name}({params})"})
        return model

    def emit_scope(self, e: Emitter, scope: Scope, vals: dict[Value, str]) -> None:
        """Emit a scope's items in program order (which is a topological order)."""
        for item in scope.items:
            if isinstance(item, Scope):
                if self.functions and item.kind == "block" and _self_contained(item):
                    self.call_function(e, item, vals)
                else:
                    self.emit_scope(e, item, vals)
            elif item.op != "input":
                e.current = item
                emit = ops.REGISTRY[item.op].onnx
                outs = emit(e, item, [vals[v] for v in item.inputs])
                assert len(outs) == len(item.shapes), item.op
                for k, out in enumerate(outs):
                    vals[(item.id, k)] = out
                e.current = None

    def call_function(self, e: Emitter, scope: Scope, vals: dict[Value, str]) -> None:
        """Emit a block instance as a function body, then call it from ``e``."""
        prefix = scope.path + "."
        keys = [k for k in self.tensors if k.startswith(prefix)]
        sub = Emitter(self, prefix, {"x"} | {k[len(prefix):] for k in keys})
        svals = {scope.inputs[0]: "x"}
        self.emit_scope(sub, scope, svals)
        out = svals[scope.outputs[0]]
        if out == "x":
            sub.current = None
            out = sub.op("Identity", ["x"], name="identity")
        formals = ["x"] + [k[len(prefix):] for k in sub.used]
        fname = self._function(scope.block or "block", formals, out, sub.nodes)
        actuals = [vals[scope.inputs[0]]] + [e.use(k) for k in sub.used]
        e.current = None
        vals[scope.outputs[0]] = e.op(fname, actuals, name=e._rel(scope.path), domain=DOMAIN)

    def _function(self, block: str, formals: list[str], out: str, nodes: list) -> str:
        """One FunctionProto per distinct body; instances with the same body share it."""
        key = (tuple(formals), out, tuple(n.SerializeToString() for n in nodes))
        if key not in self.function_names:
            name = Emitter._unique(self.function_used, block)
            self.function_names[key] = name
            opsets = [helper.make_opsetid("", self.opset)]
            if any(n.domain == DOMAIN for n in nodes):  # calls of nested blocks
                opsets.append(helper.make_opsetid(DOMAIN, 1))
            self.function_protos.append(helper.make_function(DOMAIN, name, formals, [out], nodes, opsets,
                                                             doc_string=f"block {block}"))
        return self.function_names[key]

    def _name_outputs(self, e: Emitter, vals: dict[Value, str]) -> None:
        """Rename the producers of the network outputs to the outputs' names (Identity if shared)."""
        rename: dict[str, str] = {}
        extra = []
        for oname, v in self.net.outputs.items():
            src = vals[v]
            if src in rename or src in self.net.inputs or src in self.tensors:
                extra.append(helper.make_node("Identity", [src], [oname], name=f"{oname}/identity"))
            else:
                rename[src] = oname
        for node in e.nodes + extra:
            node.input[:] = [rename.get(x, x) for x in node.input]
            node.output[:] = [rename.get(x, x) for x in node.output]
        e.nodes.extend(extra)


def _add_initializer(graph: onnx.GraphProto, name: str, arr: np.ndarray) -> None:
    t = graph.initializer.add()
    t.name = name
    t.data_type = helper.np_dtype_to_tensor_dtype(arr.dtype)
    t.dims.extend(arr.shape)
    t.raw_data = np.ascontiguousarray(arr, arr.dtype.newbyteorder("<")).tobytes()


def _value_info(name: str, shape: tuple) -> onnx.ValueInfoProto:
    dims = [d if isinstance(d, int) or (isinstance(d, str) and d.isidentifier()) else None for d in shape]
    return helper.make_tensor_value_info(name, TensorProto.FLOAT, dims)


def _block_scope(scope: Scope) -> Scope:
    while scope.parent is not None and scope.kind != "block":
        scope = scope.parent
    return scope


def _self_contained(scope: Scope) -> bool:
    """A block reads only its input (named tensors never cross into a block, but be sure)."""
    if len(scope.inputs) != 1 or len(scope.outputs) != 1:
        return False
    inside = {n.id for n in scope.nodes()}
    return all(v[0] in inside or v == scope.inputs[0] for n in scope.nodes() for v in n.inputs)


# ============================================================================== weights


def init_weights(net: Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Seeded numpy initialisation following ``init`` declarations, else PyTorch's defaults.

    Each tensor has its own generator (seeded by ``seed`` and its key), so editing one layer does
    not change the others' values.
    """
    out: dict[str, np.ndarray] = {}
    for n, w in weight_specs(net):
        key = f"{n.path}.{w.name}"
        rng = np.random.default_rng([seed, zlib.crc32(key.encode())])
        weights = ops.REGISTRY[n.op].weights(n.attrs, [net.shape_of(v) for v in n.inputs])
        main = next((x for x in weights if x.name == "weight"), None)
        out[key] = _init_tensor(n, w, main, _declaration(n), rng)
    return out


def _declaration(n: Node) -> tuple[str, dict] | None:
    """The nearest ``init`` for this node that does something (``default`` is a no-op in torch):
    searching outwards, in each scope its label first, then its op kind (the order in which the
    generated PyTorch module applies them, so the last one it applies)."""
    if not ops.has(n.op, Trait.INITIALISABLE):
        return None
    s: Scope | None = n.scope
    while s is not None:
        for key, table in ((n.name, s.label_inits), (n.op, s.inits)):
            if key in table:
                if table[key][0] != "default":
                    return table[key]
                break
        s = s.parent
    return None


def _fans(shape: tuple[int, ...]) -> tuple[int, int]:
    """PyTorch's ``_calculate_fan_in_and_fan_out``: dim 1 is fan in, dim 0 fan out."""
    if len(shape) < 2:
        return (shape[0] if shape else 1,) * 2
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


def _init_tensor(n: Node, w: ops.Weight, main: ops.Weight | None, decl, rng) -> np.ndarray:
    shape = tuple(w.shape)
    if w.role == "count":
        return np.zeros(shape, np.int64)
    if decl is not None and w.name == "weight":
        return _scheme(decl[0], decl[1], shape, rng).astype(np.float32, copy=False)
    if decl is not None and w.name == "bias" and "bias" in decl[1]:
        return np.full(shape, decl[1]["bias"], np.float32)
    if w.fill is not None:
        return np.full(shape, w.fill, np.float32)
    const = {"bn_weight": 1.0, "bn_bias": 0.0, "mean": 0.0, "var": 1.0}
    if w.role in const:
        return np.full(shape, const[w.role], np.float32)
    # conv / linear: kaiming_uniform(a=sqrt(5)) weights and uniform(1/sqrt(fan_in)) biases,
    # both of which come to a bound of 1/sqrt(fan_in)
    fan_in = _fans(tuple(main.shape))[0] if main is not None else 0
    bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0.0
    return _uniform(rng, -bound, bound, shape)


def _normal(rng, mean: float, std: float, shape) -> np.ndarray:
    out = rng.standard_normal(shape, dtype=np.float32)  # float32 draws: VGG's 138M in a second or two
    out *= np.float32(std)
    out += np.float32(mean)
    return out


def _uniform(rng, lo: float, hi: float, shape) -> np.ndarray:
    out = rng.random(shape, dtype=np.float32)
    out *= np.float32(hi - lo)
    out += np.float32(lo)
    return out


def _scheme(scheme: str, args: dict, shape: tuple[int, ...], rng) -> np.ndarray:
    """One tensor drawn like ``torch.nn.init.<scheme>_`` (same distribution, numpy's generator)."""
    fan_in, fan_out = _fans(shape)
    if scheme in ("kaiming_normal", "kaiming_uniform"):
        a = args.get("a", 0)
        fan = fan_in if args.get("mode", "fan_in") == "fan_in" else fan_out
        std = gain(args.get("nonlinearity", "leaky_relu"), a) / math.sqrt(max(fan, 1))
        if scheme == "kaiming_normal":
            return _normal(rng, 0.0, std, shape)
        return _uniform(rng, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, shape)
    if scheme in ("xavier_normal", "xavier_uniform"):
        std = args.get("gain", 1.0) * math.sqrt(2.0 / max(fan_in + fan_out, 1))
        if scheme == "xavier_normal":
            return _normal(rng, 0.0, std, shape)
        return _uniform(rng, -math.sqrt(3.0) * std, math.sqrt(3.0) * std, shape)
    if scheme == "normal":
        return _normal(rng, args.get("mean", 0.0), args.get("std", 1.0), shape)
    if scheme == "uniform":
        return _uniform(rng, args.get("a", 0.0), args.get("b", 1.0), shape)
    if scheme == "trunc_normal":
        mean, std, lo, hi = (args.get(k, d) for k, d in (("mean", 0.0), ("std", 1.0), ("a", -2.0), ("b", 2.0)))
        out = _normal(rng, mean, std, shape)
        bad = (out < lo) | (out > hi)
        while bad.any():  # resample outside [a, b]: the truncated normal
            out[bad] = _normal(rng, mean, std, (int(bad.sum()),))
            bad = (out < lo) | (out > hi)
        return out
    if scheme == "constant":
        return np.full(shape, args.get("value", 1), np.float32)
    raise ArchError(f"unknown initialisation '{scheme}'")  # pragma: no cover - checked by elaboration


# ============================================================================== batch-norm folding


def fold_batch_norms(net: Network, tensors: dict[str, np.ndarray], functions: bool = False) -> set[int]:
    """Fold each ``bn`` that is the only reader of a ``conv`` into that conv's weight and bias.

    Updates ``tensors`` (the conv gets a bias, the bn's tensors go) and returns the folded bn ids;
    their emitter passes the input through.  With ``functions`` both must lie in the same block.
    """
    outputs = set(net.outputs.values())
    # out-degrees from the inputs: an export need not build the networkx graph (~85 ms to import)
    readers = Counter(src for n in net.nodes for src, _port in n.inputs)
    folded = set()
    for bn in net.nodes:
        if not ops.has(bn.op, Trait.FOLDABLE) or len(bn.inputs) != 1 or bn.inputs[0][1] != 0:
            continue
        conv = net.node(bn.inputs[0][0])
        if (not ops.has(conv.op, Trait.FOLD_TARGET) or (conv.id, 0) in outputs
                or readers[conv.id] != 1):
            continue
        if functions and _block_scope(conv.scope) is not _block_scope(bn.scope):
            continue
        c, b = conv.path, bn.path
        out_ch = tensors[f"{c}.weight"].shape[0]
        gamma = tensors.get(f"{b}.weight", np.ones(out_ch)).astype(np.float64)
        beta = tensors.get(f"{b}.bias", np.zeros(out_ch)).astype(np.float64)
        mean = tensors[f"{b}.running_mean"].astype(np.float64)
        var = tensors[f"{b}.running_var"].astype(np.float64)
        scale = gamma / np.sqrt(var + bn.attrs["eps"])
        weight = tensors[f"{c}.weight"].astype(np.float64) * scale[:, None, None, None]
        bias = tensors.get(f"{c}.bias", np.zeros(out_ch)).astype(np.float64)
        tensors[f"{c}.weight"] = weight.astype(np.float32)
        tensors[f"{c}.bias"] = ((bias - mean) * scale + beta).astype(np.float32)
        for name in ("weight", "bias", "running_mean", "running_var", "num_batches_tracked"):
            tensors.pop(f"{b}.{name}", None)
        folded.add(bn.id)
    return folded


__all__ = ["Emitter", "export", "fold_batch_norms", "init_weights", "load_weights"]
