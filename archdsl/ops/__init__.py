"""The op registry: one :class:`OpSpec` per layer kind, declared in its family module.

``spec.py`` says what an entry holds; ``conv.py``, ``norm.py``, ``pool.py``, ``act.py``,
``merge.py`` and ``shape.py`` hold the entries, each complete (schema, shape rule, weights, costs,
traits, PyTorch spelling, ONNX lowering, picture label, examples).  Adding an op is one entry in
one family module, plus regenerating the docs (``python -m archdsl.tools.docs``);
``tests/ops/test_registry.py`` checks every entry's facets against torch and onnxruntime.
"""
from __future__ import annotations

import re

from .arith import conv_dim, fmt_shape, known, need_rank, numel, one, pair
from .spec import (GLOBAL, POINTWISE, REGISTRY, REQUIRED, RESAMPLE, RF, Attr, Dim, Emitter, Example, OpError,
                   OpSpec, OpWarning, RFKind, Shape, Style, TorchSpec, Trait, Weight, register, same_shape,
                   with_trait)

__all__ = ["GLOBAL", "POINTWISE", "REGISTRY", "REQUIRED", "RESAMPLE", "RF", "Attr", "Dim", "Emitter", "Example",
           "OpError", "OpSpec", "OpWarning", "RFKind", "Shape", "Style", "TorchSpec", "Trait", "Weight",
           "conv_dim", "examples", "fmt_shape", "get", "has", "known", "need_rank", "numel", "one", "pair", "register",
           "same_shape", "torch_hint", "torch_is_module", "torch_spelling", "with_trait"]


def get(name: str) -> OpSpec | None:
    return REGISTRY.get(name)


def has(op: str, trait: Trait) -> bool:
    """Whether op ``op`` has ``trait`` (False for ``input``, which is no registry op)."""
    spec = REGISTRY.get(op)
    return spec is not None and trait in spec.traits


def examples() -> dict[str, tuple[OpSpec, Example]]:
    """Every example of every op, by id (``conv``, ``conv_strided`` ...)."""
    return {e.id: (spec, e) for spec in REGISTRY.values() for e in spec.examples}


def torch_is_module(op: str, attrs: dict, in_shapes: list, labeled: bool, in_seq: bool) -> bool:
    """Whether a node is a submodule of the compiled PyTorch model (it has a ``named_modules()``
    path and a row of its own in the summary) or a functional call (``F.relu(x)``): weighted,
    labelled and ``seq`` members are modules; other steps are calls where torch has a function."""
    spec = REGISTRY[op]
    t = spec.torch
    if t is None or t.module is None:
        return False
    if spec.has_weights or in_seq or labeled:
        return True
    return t.functional is None and t.operator is None


# ---------------------------------------------------------------------------------------------
# PyTorch's spellings: people write the class they know (BatchNorm2d, conv2d, Linear).  Each op's
# doc names its PyTorch class ("... (nn.BatchNorm2d)"); the words below are the few that no doc
# names.  Names match without case, underscores or a 1d/2d/3d suffix: batch_norm is BatchNorm2d.
_MORE_SPELLINGS = {"nn.Sequential": "seq", "torch.cat": "concat", "Dense": "linear", "swish": "silu"}


def _key(name: str) -> str:
    return re.sub(r"[123]d$", "", name.lower().replace("_", ""))


def torch_spelling(name: str) -> tuple[str, str] | None:
    """``(archdsl op, PyTorch spelling)`` for a name written the PyTorch way, e.g.
    ``batchnorm`` -> ``("bn", "nn.BatchNorm2d")``; None if it is not one."""
    table = {_key(n.split(".")[-1]): (op, n) for n, op in _MORE_SPELLINGS.items()}
    for spec in REGISTRY.values():
        for ns, cls in re.findall(r"\b(nn|torch|F)\.(\w+)", spec.doc):
            table.setdefault(_key(cls), (spec.name, f"{ns}.{cls}"))
    for spec in REGISTRY.values():  # GlobalAvgPool, LayerNorm: archdsl's own name, spelt otherwise
        table.setdefault(_key(spec.name), (spec.name, spec.name))
    found = table.get(_key(name))
    return found if found is not None and found[0] != name else None


def torch_hint(name: str) -> str | None:
    """A hint for a name written the PyTorch way: the archdsl op and how it is called."""
    found = torch_spelling(name)
    if found is None:
        return None
    op, torch = found
    if torch == op:
        return f"did you mean '{op}'?"
    text = f"archdsl's name for {torch} is '{op}'"
    spec = REGISTRY.get(op)
    if spec is None:  # seq, a container
        return text + f": {op} {{ ... }}"
    if spec.inputs == "many":
        return text + f": {op} {{ ... | ... }} or {op}(a, b)"
    if spec.attrs:
        text += f", called as {op}({', '.join(a.name for a in spec.attrs)})"
    if spec.has_weights:  # nn.Conv2d(3, 16, 3) names its input size; archdsl reads it from the flow
        text += "; it reads its input size from the tensor flowing in"
    return text


# Import the families so that every entry is registered when archdsl.ops is imported.
from . import act, conv, merge, norm, pool  # noqa: E402,F401
from . import shape as _shape_ops  # noqa: E402,F401
