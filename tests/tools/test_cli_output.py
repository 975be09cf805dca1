"""What the commands print on success: summary totals and footer, check of every network, 'wrote'
lines, picture resolution."""
from __future__ import annotations

import json
import shutil
import struct
from pathlib import Path

import pytest

from archdsl.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
RESNET = str(ROOT / "examples" / "resnet.arch")
LENET = str(ROOT / "examples" / "lenet5.arch")


def test_summary_shows_parameters_and_buffers(capsys):
    assert main(["summary", RESNET, "--network", "resnet18", "--depth", "0"]) == 0
    out = capsys.readouterr().out
    assert "parameters:             11,689,512 (all trainable)" in out
    # torchvision's resnet18: 20 batch norms, running mean and var of 4,800 channels in all
    assert "buffers:                9,600 values (batch-norm running statistics" in out
    assert "trainable)" not in out.replace("(all trainable)", "")
    assert "receptive field SIZE/JUMP, in input pixels" in out
    assert main(["summary", RESNET, "--network", "resnet18", "--json"]) == 0
    totals = json.loads(capsys.readouterr().out)["totals"]
    assert totals["buffers"] == 9_600 and totals["params"] == 11_689_512


def test_summary_buffers_match_torch():
    torch = pytest.importorskip("torch")
    import archdsl

    net = archdsl.load(RESNET).network("resnet18")
    model = net.to_torch()
    buffers = sum(b.numel() for name, b in model.named_buffers() if not name.endswith("num_batches_tracked"))
    assert net.summary().totals["buffers"] == buffers
    assert net.summary().totals["params"] == sum(p.numel() for p in model.parameters() if p.requires_grad)
    del torch


def test_check_reports_every_network(tmp_path, capsys):
    f = tmp_path / "two.arch"
    f.write_text("network a() {\n    input x: [3, 8, 8]\n    x -> relu\n}\n"
                 "network b() {\n    input x: [3, 8, 8]\n    x -> conv(4, 9)\n}\n"
                 "network c() {\n    input x: [3, 8, 8]\n    x -> conv(4, 3)\n}\n")
    assert main(["check", str(f)]) == 1
    out, err = capsys.readouterr()
    assert "a: ok" in out and "c: ok" in out and "b: ok" not in out
    assert "conv window 9 is larger" in err and "note: 1 of 3 networks failed: b" in err
    assert main(["check", str(f), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["networks"] == ["a", "c"] and report["failed"] == ["b"]


def test_compile_says_what_it_wrote(tmp_path, capsys):
    assert main(["compile", LENET, "--target", "onnx", "-o", str(tmp_path / "l.onnx")]) == 0
    err = capsys.readouterr().err
    size = (tmp_path / "l.onnx").stat().st_size
    assert f"wrote {tmp_path / 'l.onnx'} ({size / 1024:.0f} KiB); its weights are random" in err
    assert main(["compile", LENET, "-o", str(tmp_path / "l.py")]) == 0
    assert f"wrote {tmp_path / 'l.py'} (" in capsys.readouterr().err


@pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz 'dot' is not installed")
def test_png_resolution(tmp_path):
    def size(p):
        return struct.unpack(">II", p.read_bytes()[16:24])

    assert main(["graph", LENET, "-o", str(tmp_path / "hi.png")]) == 0
    assert main(["graph", LENET, "-o", str(tmp_path / "lo.png"), "--dpi", "96"]) == 0
    (w_hi, h_hi), (w_lo, h_lo) = size(tmp_path / "hi.png"), size(tmp_path / "lo.png")
    assert abs(w_hi / w_lo - 2) < 0.05 and abs(h_hi / h_lo - 2) < 0.05  # the default is 192 dpi


def test_check_json_on_a_syntax_error(tmp_path, capsys):
    f = tmp_path / "bad.arch"
    f.write_text("network n( {\n")
    assert main(["check", str(f), "--json"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False and report["networks"] == []
    assert report["diagnostics"][0]["severity"] == "error" and report["diagnostics"][0]["line"] == 1


@pytest.mark.parametrize("file,network", [("lenet5.arch", None), ("resnet.arch", "resnet18"),
                                          ("densenet.arch", "densenet121"), ("googlenet.arch", "googlenet"),
                                          ("unet.arch", "unet")])
def test_summary_rows_name_real_modules(file, network):
    """A row's module column is a path of named_modules() of the compiled model, or <op> for a
    functional step; every module with weights has its row."""
    pytest.importorskip("torch")
    import archdsl

    net = archdsl.load(ROOT / "examples" / file).network(network)
    modules = dict(net.to_torch().named_modules())
    rows = [r for r in net.summary().rows if r.op != "input"]
    for r in rows:
        last = r.path.rsplit(".", 1)[-1]
        assert r.path in modules or (last.startswith("<") and last.endswith(">")), r.path
    weighted = {name for name, m in modules.items() if any(True for _ in m.parameters(recurse=False))}
    assert weighted <= {r.path for r in rows}


def test_no_abbreviated_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["compile", LENET, "--target", "onnx", "-o", "x.onnx", "--dynamic"])
    assert exit_.value.code == 2 and "unrecognized arguments: --dynamic" in capsys.readouterr().err
