"""`check`, `summary`, `graph` and `compile --target torch` never import torch (nor networkx or
numpy, which cost ~80 ms each at start-up: the IR builds its networkx graph only when a pass asks
for it, and numpy is for the ONNX backend).

tests/backends/test_torch_backend.py runs check, summary and compile --target torch on a small file in one
process; these tests add what it leaves out: `graph` in every format, the `--json` and `--depth`
paths, the Python API on a zoo file, and a fresh process per command through ``python -m archdsl``
(the way a user runs it), with the stack of the first import of torch in the failure message.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESNET = str(ROOT / "examples" / "resnet.arch")
DENSENET = str(ROOT / "examples" / "densenet.arch")

# Runs the code given after it in a fresh interpreter; records who first imports torch (without
# blocking the import, so a try/except ImportError fallback cannot hide it) and fails if torch,
# torchvision or onnxruntime is in sys.modules at the end.
PRELUDE = r"""
import sys, traceback
HEAVY = ("torch", "torchvision", "onnxruntime", "networkx", "numpy")
first = []
class Spy:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in HEAVY and not first:
            first.append((name, "".join(traceback.format_stack()[:-1])))
        return None
sys.meta_path.insert(0, Spy())
def finish():
    heavy = sorted(m for m in HEAVY if m in sys.modules)
    if heavy or first:
        name, stack = first[0] if first else ("?", "")
        sys.exit(f"imported {heavy or name}; first import of {name!r} from:\n{stack}")
"""


def run(code: str, tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-c", PRELUDE + code + "\nfinish()\n"], capture_output=True,
                       text=True, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-4000:]


def cli(args: list[str]) -> str:
    return ("import runpy, contextlib, io\n"
            f"sys.argv = ['archdsl', *{args!r}]\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    try:\n"
            "        runpy.run_module('archdsl', run_name='__main__', alter_sys=True)\n"
            "    except SystemExit as e:\n"
            "        assert not e.code, f'exit status {e.code}'\n")


@pytest.mark.parametrize("args", [
    ["check", RESNET],
    ["check", DENSENET, "--json"],
    ["summary", RESNET, "--network", "resnet50"],
    ["summary", DENSENET, "--network", "densenet121", "--depth", "1", "--json"],
    ["compile", RESNET, "--network", "resnet50", "--target", "torch", "-o", "resnet50.py"],
    ["compile", DENSENET, "--network", "densenet121", "--target", "torch"],
], ids=lambda a: "-".join(x for x in a if not x.startswith("/")))
def test_command_does_not_import_torch(args, tmp_path):
    run(cli(args), tmp_path)


@pytest.mark.parametrize("suffix", [".dot", ".mmd", ".svg"])
def test_graph_does_not_import_torch(suffix, tmp_path):
    if not (ROOT / "archdsl" / "backends" / "graph.py").exists():
        pytest.skip("no graph backend")
    if suffix == ".svg":
        import shutil

        if shutil.which("dot") is None:
            pytest.skip("Graphviz 'dot' is not installed")
    run(cli(["graph", RESNET, "--network", "resnet50", "--depth", "2", "-o", f"r{suffix}"]), tmp_path)
    assert (tmp_path / f"r{suffix}").stat().st_size > 0


def test_api_without_torch(tmp_path):
    run("import archdsl\n"
        f"net = archdsl.load({RESNET!r}).network('resnet50')\n"
        "assert net.summary().totals['params'] == 25_557_032\n"
        "assert 'class ' in net.torch_source()\n", tmp_path)


@pytest.mark.parametrize("flags", [[], ["--fold-bn", "--functions"]], ids=["plain", "fold-bn-functions"])
def test_onnx_export_does_not_build_the_networkx_graph(flags, tmp_path):
    """An export needs numpy and onnx, not the IR's networkx graph (batch-norm folding counts a
    conv's readers from the nodes' inputs)."""
    pytest.importorskip("onnx")
    run('HEAVY = ("torch", "torchvision", "onnxruntime", "networkx")\n'
        + cli(["compile", RESNET, "--network", "resnet50", "--target", "onnx", *flags, "-o", "r.onnx"]), tmp_path)
    assert (tmp_path / "r.onnx").stat().st_size > 0
