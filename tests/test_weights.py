"""Weights files (archdsl/weights.py): user input that archdsl does not trust.

Each test is one defect class of issue 14 ("Weights files") or 15 (no torch): run through the
CLI, a bad file ends in exit 1 and a diagnostic at the file (``w.pt: error: ...``) that names
the key and the problem, never an internal error; warnings leave exit 0.
"""
from __future__ import annotations

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

import archdsl
from archdsl.tools import cli
from archdsl.backends.onnx import export

torch = pytest.importorskip("torch")

ROOT = Path(archdsl.__file__).resolve().parent.parent  # the archdsl under test, also in a subprocess
SMALL = """network small() {
    input x: [3, 8, 8]
    x -> conv1: conv(4, 3, pad=1) -> bn1: bn -> relu -> flatten -> fc: linear(5)
}
"""


@pytest.fixture
def small(tmp_path):
    src = tmp_path / "small.arch"
    src.write_text(SMALL)
    return src


def state_dict() -> dict:
    net = archdsl.loads(SMALL).network()
    return dict(net.to_torch().state_dict())


def compile_onnx(src: Path, weights: Path, capsys, *extra) -> tuple[int, str]:
    """Exit status and stderr of ``compile --target onnx --weights``; on failure no output file."""
    out = src.parent / "small.onnx"
    out.unlink(missing_ok=True)
    rc = cli.main(["compile", str(src), "--target", "onnx", "-o", str(out), "--weights", str(weights), *extra])
    err = capsys.readouterr().err
    assert "internal error" not in err and "Traceback" not in err, err
    assert rc in (0, 1), err
    assert out.exists() == (rc == 0), err
    return rc, err


def diagnostics_in(err: str) -> list[str]:
    """The diagnostics in ``err`` (lines such as 'wrote small.onnx' are not)."""
    return [line for line in err.splitlines() if any(f"{k}: " in line for k in ("error", "warning", "note"))]


def save(obj, path: Path, **kw) -> Path:
    with warnings.catch_warnings():  # quantized tensors and TypedStorage are deprecated in torch
        warnings.simplefilter("ignore")
        torch.save(obj, path, **kw)
    return path


# ------------------------------------------------------------------------------ tensors no model holds


def _meta(sd):
    sd["conv1.weight"] = torch.empty(sd["conv1.weight"].shape, device="meta")
    return "conv1.weight", "meta device"


def _sparse(sd):
    sd["fc.weight"] = sd["fc.weight"].to_sparse()
    return "fc.weight", "not dense"


def _quantized(sd):
    with warnings.catch_warnings():  # deprecated in torch
        warnings.simplefilter("ignore")
        sd["fc.bias"] = torch.quantize_per_tensor(sd["fc.bias"], 0.1, 0, torch.qint8)
    return "fc.bias", "quantized"


def _non_string_key(sd):
    sd[3] = torch.zeros(1)
    return "key 3 (int)", "not a string"


def _not_a_tensor(sd):
    sd["epoch"] = 7
    return "epoch", "not a tensor"


def _complex(sd):
    sd["fc.bias"] = sd["fc.bias"].to(torch.complex64)
    return "fc.bias", "complex"


def _integer(sd):
    sd["fc.weight"] = torch.ones(sd["fc.weight"].shape, dtype=torch.int32)
    return "fc.weight", "integer or bool"


def _bool(sd):
    sd["bn1.weight"] = torch.ones(sd["bn1.weight"].shape, dtype=torch.bool)
    return "bn1.weight", "integer or bool"


@pytest.mark.parametrize("spoil", [_meta, _sparse, _quantized, _non_string_key, _not_a_tensor, _complex, _integer,
                                   _bool], ids=lambda f: f.__name__.strip("_"))
def test_a_tensor_no_model_can_hold_is_named_with_its_problem(spoil, small, tmp_path, capsys):
    """Meta, sparse, quantized tensors and non-string keys ended in "internal error"; a complex
    tensor lost its imaginary part silently; integer weights were cast to float silently."""
    sd = state_dict()
    key, problem = spoil(sd)
    rc, err = compile_onnx(small, save(sd, tmp_path / "w.pt"), capsys)
    assert rc == 1
    first = err.splitlines()[0]
    assert first.startswith(f"{tmp_path / 'w.pt'}: error: ") and key in first and problem in first, err
    assert "\nhint: " in err
    assert "missing" not in err, err  # the key is reported once, for what is wrong with it


def test_every_problem_is_reported_at_once(small, tmp_path, capsys):
    sd = state_dict()
    _meta(sd), _complex(sd), _non_string_key(sd)
    sd["extra.weight"] = torch.zeros(2)
    rc, err = compile_onnx(small, save(sd, tmp_path / "w.pt"), capsys)
    assert rc == 1 and err.count(": error: ") == 4, err
    assert "meta device" in err and "complex" in err and "not a string" in err and "extra.weight" in err


def test_non_finite_weights_are_exported_with_a_warning(small, tmp_path, capsys):
    sd = state_dict()
    sd["fc.bias"][:2] = torch.tensor([float("nan"), float("inf")])
    sd["bn1.running_var"][0] = float("-inf")
    rc, err = compile_onnx(small, save(sd, tmp_path / "w.pt"), capsys)
    assert rc == 0
    assert err.startswith(f"{tmp_path / 'w.pt'}: warning: non-finite weights in 2 tensors"), err
    assert "fc.bias (1 NaN and 1 infinite of 5)" in err and "bn1.running_var (1 infinite of 4)" in err


def test_non_finite_weights_warn_through_the_api(tmp_path):
    sd = state_dict()
    sd["fc.weight"][0, 0] = float("nan")
    net = archdsl.loads(SMALL).network()
    with pytest.warns(UserWarning, match=r"fc.weight \(1 NaN of 1,280\)"):
        export(net, weights=str(save(sd, tmp_path / "w.pt")))


def test_float64_and_half_weights_are_read_as_float32(small, tmp_path, capsys):
    sd = state_dict()
    sd["fc.weight"] = sd["fc.weight"].double()
    sd["conv1.weight"] = sd["conv1.weight"].to(torch.bfloat16)
    rc, err = compile_onnx(small, save(sd, tmp_path / "w.pt"), capsys)
    assert rc == 0 and not diagnostics_in(err), err


# ------------------------------------------------------------------------------ checkpoints and files


@pytest.mark.parametrize("key", ["model", "state_dict", "model_state_dict", "ema", "net"])
def test_a_training_checkpoint_is_loaded_from_its_state_dict_key(key, small, tmp_path, capsys):
    sd = state_dict()
    ckpt = {key: sd, "epoch": 90, "optimizer": {"state": {}, "param_groups": [{"lr": 0.1}]}}
    rc, err = compile_onnx(small, save(ckpt, tmp_path / "ckpt.pt"), capsys)
    assert rc == 0, err
    assert f"ckpt.pt: note: a checkpoint: using the state_dict under its key '{key}'" in err
    init = {t.name: t for t in __import__("onnx").load(str(tmp_path / "small.onnx")).graph.initializer}
    from onnx import numpy_helper

    assert np.array_equal(numpy_helper.to_array(init["fc.weight"]), sd["fc.weight"].numpy())


def test_a_checkpoint_with_several_state_dicts_names_them(small, tmp_path, capsys):
    sd = state_dict()
    rc, err = compile_onnx(small, save({"model": sd, "ema": sd, "epoch": 3}, tmp_path / "c.pt"), capsys)
    assert rc == 1
    assert "2 state_dicts, under 'model' and 'ema'" in err and "hint: save the one to export" in err


def test_a_checkpoint_without_a_usual_key_gets_the_candidates_in_the_hint(small, tmp_path, capsys):
    rc, err = compile_onnx(small, save({"weights_v2": state_dict(), "step": 3}, tmp_path / "c.pt"), capsys)
    assert rc == 1
    assert "none of which is a state_dict" in err and "hint: the mapping under 'weights_v2' looks like one" in err


def test_a_pickled_model_is_refused_without_running_its_code(small, tmp_path, capsys):
    """weights_only=True: a pickle of a whole module (code) is refused, with the way out."""
    rc, err = compile_onnx(small, save(torch.nn.Linear(2, 3), tmp_path / "m.pt"), capsys)
    assert rc == 1 and "does not unpickle code" in err and "model.state_dict()" in err


def test_an_empty_file_says_empty(small, tmp_path, capsys):
    (tmp_path / "w.pt").write_bytes(b"")
    rc, err = compile_onnx(small, tmp_path / "w.pt", capsys)
    assert rc == 1 and "the weights file is empty (0 bytes)" in err


@pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])
def test_a_truncated_file_says_truncated(legacy, small, tmp_path, capsys):
    """Cut anywhere, the file gave "[Errno 22] Invalid argument" or a zip reader's complaint."""
    whole = save(state_dict(), tmp_path / "whole.pt", _use_new_zipfile_serialization=not legacy).read_bytes()
    for cut in sorted({10, 100, len(whole) // 3, len(whole) // 2, len(whole) - 30, len(whole) - 1}):
        (tmp_path / "w.pt").write_bytes(whole[:cut])
        rc, err = compile_onnx(small, tmp_path / "w.pt", capsys)
        assert rc == 1 and "the weights file is truncated" in err, (cut, err)
        assert "Errno" not in err


def test_a_missing_file_is_named(small, tmp_path, capsys):
    rc, err = compile_onnx(small, tmp_path / "nope.pt", capsys)
    assert rc == 1 and err.startswith(f"{tmp_path / 'nope.pt'}: error: the weights file does not exist")


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_is_refused_without_blocking(small, tmp_path, capsys):
    os.mkfifo(tmp_path / "w.pt")
    rc, err = compile_onnx(small, tmp_path / "w.pt", capsys)
    assert rc == 1 and "not a regular file" in err


def test_weight_errors_are_located_at_the_weights_file(small, tmp_path, capsys):
    """Every weights diagnostic was located at '<unknown>:'."""
    sd = state_dict()
    del sd["fc.bias"]
    cases = {"keys.pt": save(sd, tmp_path / "keys.pt"), "junk.pt": tmp_path / "junk.pt", "w.bin": tmp_path / "w.bin"}
    (tmp_path / "junk.pt").write_bytes(b"not a zip at all")
    (tmp_path / "w.bin").write_bytes(b"x")
    for name, path in cases.items():
        rc, err = compile_onnx(small, path, capsys)
        assert rc == 1 and err.startswith(f"{path}: error: ") and "<unknown>" not in err, err
    out = tmp_path / "small.onnx"
    assert cli.main(["compile", str(small), "--target", "onnx", "-o", str(out), "--weights", str(cases["keys.pt"]),
                     "--json"]) == 1
    import json

    diag = json.loads(capsys.readouterr().out)["diagnostics"][0]
    assert diag["file"] == str(cases["keys.pt"]) and "missing 1 key (fc.bias)" in diag["message"]


# ------------------------------------------------------------------------------ the torch target, no torch


def test_weights_with_the_torch_target_are_refused(small, tmp_path, capsys):
    """--weights with --target torch was silently ignored, even for a missing file."""
    good = save(state_dict(), tmp_path / "w.pt")
    for weights in (good, tmp_path / "missing.pt"):
        out = tmp_path / "small.py"
        assert cli.main(["compile", str(small), "--target", "torch", "-o", str(out), "--weights", str(weights)]) == 1
        err = capsys.readouterr().err
        assert err.startswith(f"{weights}: error: --weights is for --target onnx"), err
        assert "load_state_dict" in err and not out.exists()
    assert cli.main(["compile", str(small), "--weights", str(good)]) == 1  # torch is the default target
    assert capsys.readouterr().out == ""


def test_reading_pt_without_torch_says_how_to_install_it(small, tmp_path):
    """Without torch, compile --weights x.pt said "internal error (a bug in archdsl)"."""
    pt = save(state_dict(), tmp_path / "w.pt")
    code = ("import sys\n"
            "class NoTorch:\n"
            "    def find_spec(self, name, path=None, target=None):\n"
            "        if name.split('.')[0] == 'torch':\n"
            "            raise ImportError(f'No module named {name!r}')\n"
            "sys.meta_path.insert(0, NoTorch())\n"
            "from archdsl.tools import cli\n"
            f"sys.exit(cli.main(['compile', {str(small)!r}, '--target', 'onnx', '-o', {str(tmp_path / 'o.onnx')!r}, "
            f"'--weights', {str(pt)!r}]))\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path,
                       env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert r.returncode == 1, r.stderr
    assert r.stderr.startswith(f"{pt}: error: reading a .pt/.pth file needs PyTorch, which is not installed")
    assert "hint: pip install torch" in r.stderr and "archdsl[torch]" in r.stderr
    assert not (tmp_path / "o.onnx").exists()


def test_keys_from_the_file_are_shown_not_obeyed(small, tmp_path, capsys):
    sd = state_dict()
    sd["\x1b[2Jevil" + "x" * 500] = torch.zeros(1)
    rc, err = compile_onnx(small, save(sd, tmp_path / "w.pt"), capsys)
    assert rc == 1 and "\x1b" not in err and "\\x1b[2Jevil" in err and "x" * 200 not in err


def test_an_empty_state_dict_fits_a_network_without_weights(tmp_path, capsys):
    src = tmp_path / "small.arch"
    src.write_text("network n() {\n    input x: [3, 4, 4]\n    x -> relu -> maxpool(2)\n}\n")
    rc, err = compile_onnx(src, save({}, tmp_path / "w.pt"), capsys)
    assert rc == 0 and not diagnostics_in(err), err


def test_safetensors_files_get_the_same_checks(small, tmp_path, capsys):
    st = pytest.importorskip("safetensors.torch")
    sd = state_dict()
    sd["conv1.weight"] = sd["conv1.weight"].to(torch.bfloat16)
    st.save_file(sd, tmp_path / "w.safetensors")
    rc, err = compile_onnx(small, tmp_path / "w.safetensors", capsys)
    assert rc == 0 and not diagnostics_in(err), err
    whole = (tmp_path / "w.safetensors").read_bytes()
    (tmp_path / "w.safetensors").write_bytes(whole[: len(whole) // 2])
    rc, err = compile_onnx(small, tmp_path / "w.safetensors", capsys)
    assert rc == 1 and "the weights file is truncated" in err, err
    _complex(sd)
    st.save_file(sd, tmp_path / "w.safetensors")
    rc, err = compile_onnx(small, tmp_path / "w.safetensors", capsys)
    assert rc == 1 and err.startswith(f"{tmp_path / 'w.safetensors'}: error: tensor fc.bias (complex64) is complex")


def test_a_hostile_key_of_a_bad_entry_is_shown_escaped(small, tmp_path, capsys):
    sd = state_dict()
    sd["\x1b]0;title\x07"] = "not a tensor"
    rc, err = compile_onnx(small, save(sd, tmp_path / "w.pt"), capsys)
    assert rc == 1 and "\x1b" not in err and "\x07" not in err and "entry \\x1b]0;title\\x07 (a str) is not a tensor" in err
