"""Reading a weights file: user input that archdsl does not trust, checked against a network.

One job: turn a ``.pt``/``.pth`` file (read with ``torch.load(weights_only=True)``, which rebuilds
tensors and containers and never runs pickled code) or a ``.safetensors`` file into numpy arrays
keyed by ``state_dict`` name, float32 (int64 for counters), or diagnostics located at the file
(``model.pt: error: ...``) that name the key and what is wrong with it.  Everything wrong is
reported at once: keys that are missing, unexpected or of the wrong shape, and tensors that no
exported model can hold (meta, sparse, quantized, complex, integer where a float is needed).
Non-finite values are allowed but warned about.  Only reading a ``.pt`` file imports torch.
"""
from __future__ import annotations

import re
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path

import numpy as np

from . import ops
from .errors import ArchError, Diagnostic, Diagnostics, Span
from .ir import Network, Node

# Where training code puts the model's state_dict inside a checkpoint (torchvision's reference
# scripts, timm, Lightning, mmcv, detectron2, ...).  One level deep is searched.
NESTED_KEYS = ("state_dict", "model", "model_state_dict", "module", "net", "network", "ema", "model_ema",
               "state_dict_ema", "ema_state_dict", "params", "weights")
SAVE_HINT = "save the model's parameters: torch.save(model.state_dict(), path)"
TRUNCATED_HINT = "the file was cut short (an interrupted save, copy or download): make it again"


def weight_specs(net: Network) -> Iterator[tuple[Node, ops.Weight]]:
    """(node, Weight) for every tensor of the state_dict, in module order."""
    for n in net.nodes:
        spec = ops.REGISTRY.get(n.op)
        if spec is not None:
            for w in spec.weights(n.attrs, [net.shape_of(v) for v in n.inputs]):
                yield n, w


def load(net: Network, path: str, diags: Diagnostics | None = None) -> dict[str, np.ndarray]:
    """The checked tensors of ``path`` for ``net``; raises :class:`ArchError` located at the file.

    Warnings and notes go to ``diags`` (without one, warnings are Python warnings).
    """
    span = Span(str(path), 0, 0)
    p = Path(path)
    if not p.exists():
        raise ArchError("the weights file does not exist", span)
    if not p.is_file():  # a FIFO would block the reader, a directory confuse it
        raise ArchError("the weights path is not a regular file", span, "give a .pt, .pth or .safetensors file")
    readers = {".safetensors": _read_safetensors, ".pt": _read_torch, ".pth": _read_torch}
    read = readers.get(p.suffix.lower())
    if read is None:
        raise ArchError(f"unknown weights format '{p.suffix}'", span,
                        "give a PyTorch state_dict (.pt, .pth) or a .safetensors file")
    raw, problems = read(p, span, diags)
    return _check(net, raw, problems, diags)


# ------------------------------------------------------------------------------------------ files


def _check_complete(p: Path, span: Span) -> None:
    """Refuse an empty or cut-short file before a reader sees it (they say "[Errno 22]" or nothing)."""
    try:
        size = p.stat().st_size
        with p.open("rb") as f:
            head = f.read(4)
            f.seek(max(0, size - 66_000))  # the end record of a zip: 22 bytes and a comment of at most 64 KiB
            tail = f.read()
    except OSError as err:
        raise ArchError(f"cannot read the weights file: {err.strerror or err}", span) from None
    if size == 0:
        raise ArchError("the weights file is empty (0 bytes)", span,
                        "an interrupted save or copy leaves one: save it again with torch.save(model.state_dict(), path)")
    end = tail.rfind(b"PK\x05\x06")
    if head == b"PK\x03\x04" and (end < 0 or len(tail) - end < 22):
        raise ArchError(f"the weights file is truncated: the zip archive that torch.save writes ends "
                        f"without its directory ({size:,} bytes)", span, TRUNCATED_HINT)


def _read_safetensors(p: Path, span: Span, diags: Diagnostics | None) -> tuple[dict, _Problems]:
    try:
        from safetensors.numpy import load_file
    except ImportError:
        raise ArchError("reading a .safetensors file needs the 'safetensors' package, which is not installed",
                        span, "pip install safetensors, or save the state_dict with torch.save to a .pt file"
                        ) from None
    _check_complete(p, span)
    try:
        return dict(load_file(str(p))), _Problems(span)
    except Exception as err:  # noqa: BLE001 - any reader failure is a bad input file
        if "not fully covered" in str(err):  # the reader's words for a file shorter than its header says
            raise ArchError("the weights file is truncated", span, TRUNCATED_HINT) from None
        raise ArchError(f"cannot read the file as safetensors: {_first_line(err)}", span) from None


def _read_torch(p: Path, span: Span, diags: Diagnostics | None) -> tuple[dict, _Problems]:
    try:
        import torch  # only here: every other path runs without torch
    except ImportError:
        raise ArchError("reading a .pt/.pth file needs PyTorch, which is not installed", span,
                        "pip install torch (or archdsl's extra: pip install 'archdsl[torch]'), "
                        "or save the weights as .safetensors") from None
    _check_complete(p, span)
    try:
        with warnings.catch_warnings():  # torch's deprecation chatter is not the user's business
            warnings.simplefilter("ignore")
            obj = torch.load(str(p), map_location="cpu", weights_only=True)
    except Exception as err:  # noqa: BLE001 - pickle and zip errors alike mean a bad file
        raise _torch_load_error(err, span) from None
    sd = _find_state_dict(obj, span, diags, lambda v: isinstance(v, torch.Tensor))
    problems = _Problems(span)
    return {k: a for k, v in sd.items() if (a := _tensor_to_numpy(torch, k, v, problems)) is not None}, problems


def _torch_load_error(err: Exception, span: Span) -> ArchError:
    text = str(err)
    if isinstance(err, EOFError) or "truncated" in text or "unexpected EOF" in text:
        return ArchError("the weights file is truncated", span, TRUNCATED_HINT)
    code = re.search(r"Unsupported global: GLOBAL (\S+)", text)
    if code:
        return ArchError(f"the weights file holds Python objects, not only tensors ({code[1]}); "
                         "archdsl does not unpickle code", span, SAVE_HINT)
    # torch's own advice for a weights-only failure is to load with weights_only=False: not here
    said = () if "Weights only load failed" in text else (f"torch.load said {type(err).__name__}: {_first_line(err)}",)
    return ArchError(Diagnostic("error", "cannot read the file as a PyTorch state_dict: it is not a file that "
                                "torch.save wrote, or a damaged one", span, SAVE_HINT, said))


def _first_line(err: Exception) -> str:
    line = (str(err).strip().splitlines() or [type(err).__name__])[0]
    return line if len(line) <= 200 else line[:200] + "..."


def _find_state_dict(obj, span: Span, diags: Diagnostics | None, is_tensor) -> Mapping:
    """``obj`` itself, or the one state_dict of a training checkpoint (``{'model': ..., 'epoch': 3}``)."""
    if not isinstance(obj, Mapping):
        raise ArchError(f"the weights file holds {_a(obj)}, not a state_dict (a mapping of names to tensors)",
                        span, SAVE_HINT)
    if not obj or any(is_tensor(v) for v in obj.values()):
        return obj  # a state_dict (empty for a network without weights); odd entries are reported one by one

    def holds_tensors(v) -> bool:
        return isinstance(v, Mapping) and len(v) > 0 and all(is_tensor(t) for t in v.values())

    found = [k for k in NESTED_KEYS if holds_tensors(obj.get(k))]
    if len(found) == 1:
        if diags is not None:
            diags.items.append(Diagnostic("note", f"a checkpoint: using the state_dict under its key "
                                          f"'{found[0]}'", span))
        return obj[found[0]]
    keys = _few([repr(k) for k in obj], 8)
    if found:
        raise ArchError(f"the checkpoint holds {len(found)} state_dicts, under "
                        f"{' and '.join(repr(k) for k in found)}", span,
                        f"save the one to export: torch.save(torch.load(path)[{found[0]!r}], 'weights.pt')")
    others = [k for k, v in obj.items() if holds_tensors(v)]
    hint = (f"the mapping under {others[0]!r} looks like one: torch.save(torch.load(path)[{others[0]!r}], "
            "'weights.pt')" if others else SAVE_HINT)
    raise ArchError(f"the weights file holds a dict with the keys {keys}, none of which is a state_dict", span, hint)


def _a(obj) -> str:
    name = type(obj).__name__
    return f"an {name}" if name[:1] in "aeiou" else f"a {name}"


def _name(torch_thing) -> str:
    return str(torch_thing).removeprefix("torch.")


def _tensor_to_numpy(torch, key, v, problems: _Problems) -> np.ndarray | None:
    """The numpy array of one state_dict entry, or None after recording why there is none."""
    if not isinstance(key, str):
        problems.add("key", repr(key), type(key).__name__)
        return None
    if not isinstance(v, torch.Tensor):
        problems.add("value", key, _a(v))
        return None
    if v.is_meta:
        problems.add("meta", key)
        return None
    if v.is_quantized:
        problems.add("quantized", key, _name(v.dtype))
        return None
    if v.is_nested or v.layout != torch.strided:
        problems.add("layout", key, "nested" if v.is_nested else _name(v.layout))
        return None
    t = v.detach().cpu()
    if t.is_floating_point() and t.dtype not in (torch.float32, torch.float64):
        t = t.float()  # float16, bfloat16, float8: numpy lacks some; float32 holds them all
    elif t.dtype == torch.complex32:
        t = t.to(torch.complex64)
    try:
        return t.numpy()
    except (TypeError, RuntimeError):
        problems.add("dtype", key, _name(v.dtype))
        return None


# ------------------------------------------------------------------------------------------ checks

# kind -> (noun, plural noun, what is wrong with one, with several, hint): one diagnostic per kind
_KINDS = {
    "key": ("key", "keys", "is not a string", "are not strings", "keys are module paths such as 'conv1.weight'"),
    "value": ("entry", "entries", "is not a tensor", "are not tensors", SAVE_HINT),
    "meta": ("tensor", "tensors", "is on the meta device (a shape without data)",
             "are on the meta device (shapes without data)",
             "save the state_dict of a model whose weights are loaded or initialised"),
    "quantized": ("tensor", "tensors", "is quantized", "are quantized",
                  "archdsl exports float models: save the float model's state_dict, or t.dequantize() each tensor"),
    "layout": ("tensor", "tensors", "is not dense", "are not dense", "save dense tensors: t.to_dense()"),
    "dtype": ("tensor", "tensors", "has a dtype numpy cannot hold", "have dtypes numpy cannot hold",
              "save float32 tensors: t.float()"),
    "complex": ("tensor", "tensors", "is complex", "are complex",
                "the network's parameters are real: save t.real if the imaginary part is meant to be zero"),
    "integer": ("tensor", "tensors", "is integer or bool where the network has a float parameter",
                "are integer or bool where the network has float parameters", "save float tensors: t.float()"),
}


class _Problems:
    """What is wrong with the file's entries, by kind, each kind one diagnostic at the file."""

    def __init__(self, span: Span):
        self.span = span
        self.by_kind: dict[str, list[str]] = {}
        self.keys: set = set()  # reported here, so not again as missing

    def add(self, kind: str, key, detail: str = "") -> None:
        self.keys.add(key)
        self.by_kind.setdefault(kind, []).append(f"{key} ({detail})" if detail else str(key))

    def diagnostics(self) -> list[Diagnostic]:
        out = []
        for kind, items in self.by_kind.items():
            noun, nouns, one, several, hint = _KINDS[kind]
            message = f"{noun} {_few(items)} {one}" if len(items) == 1 else f"{len(items)} {nouns} {several}: {_few(items)}"
            out.append(Diagnostic("error", message, self.span, hint))
        return out


def _check(net: Network, raw: dict, problems: _Problems, diags: Diagnostics | None) -> dict[str, np.ndarray]:
    """The arrays ``net`` needs from ``raw``, converted; every problem is raised at once."""
    span = problems.span
    want = {f"{n.path}.{w.name}": w for n, w in weight_specs(net)}
    out: dict[str, np.ndarray] = {}
    nonfinite = []
    for key, w in want.items():
        if key not in raw or tuple(np.shape(raw[key])) != tuple(w.shape):
            continue
        arr = np.asarray(raw[key])
        is_float = arr.dtype.kind == "f" or "float" in arr.dtype.name  # also ml_dtypes' bfloat16, float8
        if arr.dtype.kind == "c":
            problems.add("complex", key, str(arr.dtype))
        elif not is_float and arr.dtype.kind not in "iub":
            problems.add("dtype", key, str(arr.dtype))
        elif not is_float and w.role != "count":
            problems.add("integer", key, str(arr.dtype))
        else:
            out[key] = arr.astype(np.int64 if w.role == "count" else np.float32, copy=False)
            if is_float and w.role != "count" and not np.isfinite(out[key]).all():
                nonfinite.append(_count_nonfinite(key, out[key]))
    errors = _fit_errors(net, raw, want, problems) + problems.diagnostics()
    if errors:
        raise ArchError(errors)
    if nonfinite:
        _warn(diags, Diagnostic("warning", f"non-finite weights in {len(nonfinite)} tensor"
                                f"{'s' * (len(nonfinite) > 1)}: {_few(nonfinite)}", span,
                                "the model computes NaN or inf wherever they are used; "
                                "was the checkpoint saved after training diverged?"))
    return out


def _count_nonfinite(key: str, arr: np.ndarray) -> str:
    nan = int(np.isnan(arr).sum())
    inf = int(np.isinf(arr).sum())
    parts = [f"{nan} NaN"] * bool(nan) + [f"{inf} infinite"] * bool(inf)
    return f"{key} ({' and '.join(parts)} of {arr.size:,})"


def _fit_errors(net: Network, raw: dict, want: dict, problems: _Problems) -> list[Diagnostic]:
    """Keys missing, unexpected, or of the wrong shape (one diagnostic for all)."""
    missing = [k for k, w in want.items() if k not in raw and k not in problems.keys and w.role != "count"]
    extra = [k for k in raw if k not in want]
    wrong = [f"{k} is {list(np.shape(raw[k]))} in the file, {list(w.shape)} in the network"
             for k, w in want.items() if k in raw and tuple(np.shape(raw[k])) != tuple(w.shape)]
    if not (missing or extra or wrong):
        return []
    parts = []
    if missing:
        parts.append(f"missing {len(missing)} key{'s' * (len(missing) > 1)} ({_few(missing)})")
    if extra:
        parts.append(f"{len(extra)} unexpected key{'s' * (len(extra) > 1)} ({_few(extra)})")
    if wrong:
        parts.append(f"{len(wrong)} shape mismatch{'es' * (len(wrong) > 1)} ({_few(wrong)})")
    hint = "keys are the module paths of `archdsl summary`; save model.state_dict() of the compiled module"
    prefix = _common_prefix(raw)
    if missing and prefix and {k[len(prefix):] for k in raw} >= set(missing):
        hint = (f"every key starts with '{prefix}' (a wrapper such as DataParallel or a Lightning module): "
                f"save the inner model's state_dict, or strip the prefix from the keys")
    return [Diagnostic("error", f"the weights do not fit network '{net.name}': " + "; ".join(parts),
                       problems.span, hint)]


def _common_prefix(raw: dict) -> str:
    """``module.`` when every key starts with it (the first dotted part), else ''."""
    firsts = {k.split(".", 1)[0] for k in raw}
    if len(firsts) != 1 or not all("." in k for k in raw):
        return ""
    return firsts.pop() + "."


def _few(items: list[str], n: int = 4) -> str:
    """The first ``n`` items; keys come from the file, so they are shown, never obeyed (escapes), and cut."""
    shown = [x if x.isprintable() else ascii(x)[1:-1] for x in items[:n]]
    shown = [x if len(x) <= 120 else x[:100] + "..." for x in shown]
    return ", ".join(shown) + (f", ... {len(items) - n} more" if len(items) > n else "")


def _warn(diags: Diagnostics | None, d: Diagnostic) -> None:
    if diags is not None:
        diags.items.append(d)
    else:
        warnings.warn(d.render(), stacklevel=3)
