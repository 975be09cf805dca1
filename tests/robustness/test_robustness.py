"""Hostile input (issue 8): resource bombs, injection into generated code, atomic outputs, imports.

Every bomb must end in a few seconds with a positioned diagnostic; the limits are documented in
docs/robustness.md.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import archdsl
from archdsl import ArchError
from archdsl.passes.analysis import state_dict_shapes
from archdsl.backends.torch import generate
from archdsl.tools.cli import main
from codecheck import check_generated

ROOT = Path(__file__).resolve().parents[2]
HEAD = "network n() {\n    input x: [3, 32, 32]\n"
TIME_BOUND = 5.0  # seconds of wall time per bomb


def _chain(n: int, block: str, body: str) -> str:
    """Blocks b0 .. b{n-1}; NEXT in ``body`` names the next one."""
    return "".join(f"block {block}{i}() {{ {body.replace('NEXT', f'{block}{i + 1}')} }}\n" for i in range(n))


# name -> (source, a fragment of the expected message)
BOMBS: dict[str, tuple[str, str]] = {
    "repeat_1e9": (HEAD + "    x -> relu * 1000000000\n}\n", "exceeds the limit of"),
    "block_repeat_1e9": ("block b() { conv(8, 3, pad=1) -> relu }\n" + HEAD + "    x -> b() * 1000000000\n}\n",
                         "exceeds the limit of"),
    "nested_loops": (HEAD + "    for i in 1..40000 { for j in 1..40000 { for k in 1..40000 { relu } } }\n}\n",
                     "exceeds the limit of"),
    "nested_loops_without_nodes": (HEAD + "    for i in 1..40000 { for j in 1..40000 { let a = i * j } }\n}\n",
                                   "steps"),
    "nested_repetition": (HEAD + "    x -> seq { seq { relu * 10000 } * 10000 } * 10000\n}\n", "exceeds the limit of"),
    "empty_seq_repetition": (HEAD + "    x -> seq { seq { } * 40000 } * 40000\n}\n", "steps"),
    "block_repetition": ("block b() { relu * 40000 }\n" + HEAD + "    x -> b() * 40000\n}\n", "exceeds the limit of"),
    "exponential_block_calls": (_chain(30, "b", "NEXT() -> " * 9 + "NEXT()") + "block b30() { let a = 1 }\n"
                                + HEAD + "    x -> b0()\n}\n", "steps"),
    "tuple_loops": ("let t = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10) * 10000\n" + HEAD
                    + "    for a in t { for b in t { let c = a } }\n}\n", "steps"),
    "self_call": ("block a() { conv(8, 3) -> a() }\n" + HEAD + "    x -> a()\n}\n", "calls itself (a -> a)"),
    "mutual_call": ("block a() { b() }\nblock b() { a() }\n" + HEAD + "    x -> a()\n}\n", "calls itself (a -> b -> a)"),
    "three_way_call": ("block a() { b() }\nblock b() { relu -> c() }\nblock c() { a() }\n" + HEAD + "    x -> a()\n}\n",
                       "calls itself (a -> b -> c -> a)"),
    "deep_blocks": (_chain(200, "b", "NEXT()") + "block b200() { relu }\n" + HEAD + "    x -> b0()\n}\n",
                    "nested deeper than"),
    "deep_blocks_and_seqs": (_chain(63, "b", "seq { seq { seq { NEXT() } } }") + "block b63() { relu }\n"
                             + HEAD + "    x -> b0()\n}\n", "nested deeper than"),
    "parens_10000": ("let a = " + "(" * 10000 + "1" + ")" * 10000 + "\n" + HEAD + "    x -> relu\n}\n",
                     "brackets nested deeper than"),
    "lists_10000": ("let a = " + "[" * 10000 + "1" + "]" * 10000 + "\n" + HEAD + "    x -> relu\n}\n",
                    "brackets nested deeper than"),
    "seqs_10000": (HEAD + "    x -> " + "seq { " * 10000 + "relu" + " }" * 10000 + "\n}\n", "brackets nested deeper than"),
    "branches_10000": (HEAD + "    x -> " + "add { identity | " * 10000 + "relu" + " }" * 10000 + "\n}\n",
                       "brackets nested deeper than"),
    "ifs_10000": (HEAD + "    " + "if true { " * 10000 + "x -> relu" + " }" * 10000 + "\n}\n", "brackets nested deeper than"),
    "else_if_ladder": (HEAD + "    if false { relu }" + " else if false { relu }" * 5000 + "\n}\n", "nested deeper than"),
    "negations_10000": ("let a = " + "-" * 10000 + "1\n" + HEAD + "    x -> relu\n}\n", "nested deeper than"),
    "operator_chain": ("let a = " + "1 + " * 20000 + "1\n" + HEAD + "    x -> relu\n}\n", "nested deeper than"),
    "power_tower": ("let a = 2 ** 2 ** 2 ** 2 ** 2 ** 2\n" + HEAD + "    x -> relu\n}\n", "too large"),
    "huge_literal": ("let a = " + "9" * 100_000 + "\n" + HEAD + "    x -> relu\n}\n", "number too large"),
    "float_overflow": (HEAD + "    x -> bn(eps=1e999)\n}\n", "number too large"),
    "float_infinity": (HEAD + "    x -> bn(eps=1e308 * 10)\n}\n", "not a finite number"),
    "string_repetition": ('let s = "abc" * 1000000000\n' + HEAD + "    x -> relu\n}\n", "repetition too large"),
    "string_format": ('let s = "%999999999d" % 1\n' + HEAD + "    x -> relu\n}\n", "cannot apply '%'"),
    "source_50MB_comment": ("# " + "x" * 50_000_000 + "\n" + HEAD + "    x -> relu\n}\n", "source longer than"),
    "source_50MB_statements": ("let a = 1\n" * 5_000_000 + HEAD + "    x -> relu\n}\n", "source longer than"),
    "label_1MB": (HEAD + '    x -> "' + "a" * 1_000_000 + '": relu\n}\n', "invalid module name"),
    "label_2MB": (HEAD + '    x -> "' + "a" * 2_000_000 + '": relu\n}\n', "source longer than"),
    "label_interpolations": (HEAD + '    x -> "' + "{1}" * 60_000 + '": relu\n}\n', "invalid module name"),
    "input_absurd_size": ("network n() {\n    input x: [3, 100000000, 100000000]\n    x -> relu\n}\n", "absurdly large"),
    "input_absurd_elements": ("network n() {\n    input x: [3, 65536, 65536]\n    x -> relu\n}\n", "elements; the limit"),
    "conv_1e9_channels": (HEAD + "    x -> conv(1000000000, 3)\n}\n", "from 0 to 2**24"),
    "activation_absurd": (HEAD + "    x -> conv(16777216, 3)\n}\n", "elements; the limit"),
    "weights_1e18": ("network n() {\n    input x: [16777216, 1, 1]\n    x -> conv(16777216, 64, pad=32)\n}\n",
                     "has a weight [16777216, 16777216, 64, 64] of 1,152,921,504,606,846,976 elements"),
    "linear_absurd": ("network n() {\n    input x: [16777216]\n    x -> linear(16777216)\n}\n", "elements; the limit"),
    "params_total": ("network n() {\n    input x: [65536]\n    x -> linear(65536) * 8\n}\n", "parameters and buffers"),
    "upsample_absurd": (HEAD + "    x -> upsample(100000)\n}\n", "elements; the limit"),
    "concat_channels": (HEAD + "    x -> concat { conv(4000000, 1) | conv(4000000, 1) }\n}\n", "elements; the limit"),
}


def _elaborate_all(text: str, file: str = "bomb.arch", **kw) -> ArchError | None:
    try:
        arch = archdsl.loads(text, file, **kw)
        for name in arch.networks:
            arch.network(name)
    except ArchError as err:
        return err
    return None


@pytest.mark.parametrize("name", sorted(BOMBS))
def test_bomb_ends_quickly_with_a_diagnostic(name):
    text, expected = BOMBS[name]
    start = time.perf_counter()
    err = _elaborate_all(text)
    elapsed = time.perf_counter() - start
    assert err is not None, f"{name}: no diagnostic"
    assert elapsed < TIME_BOUND, f"{name}: took {elapsed:.1f}s"
    assert expected in str(err), str(err)[:300]
    assert all(d.span.line >= 1 and d.span.file == "bomb.arch" for d in err.diagnostics), err.diagnostics[:3]
    assert len(str(err)) < 10_000, "a diagnostic does not echo a huge input"


def test_bombs_run_in_bounded_memory():
    """All bombs in one process whose address space is capped: a MemoryError would fail it."""
    script = textwrap.dedent("""
        import json, resource, sys, time
        sys.path[:0] = sys.argv[1:]  # this folder, and tests/ for the shared helpers
        from test_robustness import BOMBS, _elaborate_all
        cap = 1536 * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
        out = {}
        for name, (text, expected) in sorted(BOMBS.items()):
            t = time.perf_counter()
            try:
                err = _elaborate_all(text)
                out[name] = [expected in str(err), round(time.perf_counter() - t, 2)]
            except MemoryError:
                out[name] = ["MemoryError", 0]
        print(json.dumps(out))
    """)
    here = Path(__file__).resolve().parent
    r = subprocess.run([sys.executable, "-c", script, str(here), str(here.parent)], capture_output=True, text=True,
                       timeout=600, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-2000:]
    results = json.loads(r.stdout.splitlines()[-1])
    assert {k: v for k, v in results.items() if v[0] is not True} == {}


def test_max_nodes_is_adjustable():
    text = HEAD + "    x -> relu * 100\n}\n"
    assert _elaborate_all(text, max_nodes=200) is None
    err = _elaborate_all(text, max_nodes=50)
    assert err is not None and "limit of 50 nodes" in str(err) and "--max-nodes" in str(err)
    # steps are bounded by a multiple of the node limit, so --max-nodes raises both
    loops = HEAD + "    for i in 1..100 { for j in 1..100 { let a = 1 } }\n}\n"
    assert "steps" in str(_elaborate_all(loops, max_nodes=1000))
    assert _elaborate_all(loops, max_nodes=10_000) is None


def test_cli_on_bombs(tmp_path, capsys):
    big = tmp_path / "big.arch"
    big.write_text(BOMBS["source_50MB_comment"][0])
    start = time.perf_counter()
    assert main(["check", str(big)]) == 1
    assert "source longer than" in capsys.readouterr().err
    assert main(["check", "/dev/zero"]) == 1  # a device is not a source file
    assert "/dev/zero is a character device" in capsys.readouterr().err
    with open("/dev/zero", "rb") as zero:  # endless standard input: read up to the limit, then stop
        r = subprocess.run([sys.executable, "-m", "archdsl", "check", "-"], stdin=zero, capture_output=True,
                           text=True, timeout=TIME_BOUND)
    assert r.returncode == 1 and "<stdin>" in r.stderr and "longer than" in r.stderr, r.stderr
    wide = tmp_path / "wide.arch"  # fewer characters than the limit, more bytes
    wide.write_text("# " + "é" * 600_000 + "\n" + HEAD + "    x -> relu\n}\n", encoding="utf-8")
    assert main(["check", str(wide)]) == 1
    assert "source longer than 1048576 bytes" in capsys.readouterr().err
    assert time.perf_counter() - start < TIME_BOUND
    loops = tmp_path / "loops.arch"
    loops.write_text(HEAD + "    x -> relu * 300\n}\n")
    assert main(["check", str(loops), "--max-nodes", "100"]) == 1
    assert "limit of 100 nodes" in capsys.readouterr().err
    assert main(["check", str(loops), "--max-nodes", "1000"]) == 0
    assert main(["check", str(loops), "--max-source-bytes", "40"]) == 1
    assert "source longer than 40 bytes" in capsys.readouterr().err
    from archdsl.lang import parser as syntax

    assert syntax.MAX_SOURCE_BYTES == 1 << 20, "the flag holds for one run only"
    with pytest.raises(SystemExit) as exit_:
        main(["check", str(loops), "--max-nodes", "0"])
    assert exit_.value.code == 2


# ============================================================================== injection


HOSTILE = r'''
# labels that are Python keywords, builtins, module names, look-alikes and quoting games
block os(class = 4, self = 1, nn = 1) {
    "import": conv(class, 1) -> "lambda": relu
}
block sys(def = 2) {
    "exec": conv(def, 1) -> "print": bn
}
network n(mode = "fan_out") {
    input self: [3, 8, 8]
    init conv: kaiming_normal(mode="fan_out", nonlinearity="relu")
    self -> class: conv(4, 3, pad=1) -> def: bn -> return: relu
      -> "exec": conv(4, 1) -> builtins: conv(4, 1)
}
'''

LABELS = {
    "class": "class", "def": "def", "return": "return", "None": "None", "True": "True", "import": "import",
    "exec": '"exec"', "print": '"print"', "open": '"open"', "getattr": '"getattr"',
    "super": '"super"', "self": '"self"', "nn": '"nn"', "torch": '"torch"', "F": '"F"', "os": '"os"',
    "OrderedDict": '"OrderedDict"', "MODEL": '"MODEL"',
    "ｃｏｎｖ": '"ｃｏｎｖ"',  # fullwidth letters: NFKC would fold them into 'conv' in an identifier
    "ℌ": '"ℌ"', "ǅ": '"ǅ"',
    "x'y": "\"x'y\"", 'x"y': r'"x\"y"', "x\\y": r'"x\\y"', "x'''y": "\"x'''y\"", 'x"""y': r'"x\"\"\"y"',
    "a);__import__('os');(": "\"a);__import__('os');(\"",
    "'+__import__('os')+'": "\"'+__import__('os')+'\"",
    "x2": '"x{1 + 1}"',  # interpolated
}


def _label_program(labels: dict[str, str]) -> str:
    stages = " -> ".join(f"{src}: conv(4, 1)" for src in labels.values())
    return f"network n() {{\n    input x: [4, 8, 8]\n    x -> {stages}\n}}\n"


def test_hostile_labels_stay_in_string_literals():
    net = archdsl.loads(_label_program(LABELS), "hostile.arch").network()
    source = generate(net)
    check_generated(source)
    assert "PWNED" not in "".join(line for line in source.splitlines() if "PWNED" in line
                                  and not ("'" in line or '"' in line))
    want = {f"{k}.{w}" for k in LABELS for w in ("weight", "bias")}
    assert set(state_dict_shapes(net)) == want


def test_hostile_labels_are_the_state_dict_keys():
    pytest.importorskip("torch")
    net = archdsl.loads(_label_program(LABELS), "hostile.arch").network()
    model = net.to_torch()
    assert set(model.state_dict()) == {f"{k}.{w}" for k in LABELS for w in ("weight", "bias")}
    import torch

    assert model(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)


def test_hostile_blocks_params_inputs_and_init():
    net = archdsl.loads(HOSTILE, "hostile.arch").network()
    source = generate(net)
    check_generated(source)
    keys = set(state_dict_shapes(net))
    assert {"class.weight", "def.weight", "exec.weight", "builtins.weight"} <= keys
    pytest.importorskip("torch")
    model = net.to_torch()
    assert set(model.state_dict()) == keys


@pytest.mark.parametrize("label", ["__class__", "_private", "__dict__", "a.b", "a b", "a\nb", "a\tb", "\x1b[2J",
                                   "\u202eevil", "", "x" * 129, "state_dict", "forward", "to", "training"])
def test_unusable_labels_are_diagnostics(label):
    quoted = '"' + label.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\t", "\\t") \
        .replace("\x1b", "\\x1b") + '"'
    err = _elaborate_all(f"network n() {{\n    input x: [4, 8, 8]\n    x -> {quoted}: conv(4, 1)\n}}\n")
    assert err is not None and "invalid module name" in str(err) and err.span.line == 3


@pytest.mark.parametrize("name", ["os", "sys", "nn", "torch", "F", "self", "super", "OrderedDict", "MODEL",
                                  "getattr", "print", "exec", "eval", "class_", "__import__", "__init__", "N"])
def test_network_and_block_names_that_shadow_python(name):
    text = f"""
block {name}(c) {{ conv(c, 3, pad=1) -> relu }}
network {name}_net(classes = 10) {{
    input x: [3, 8, 8]
    x -> {name}(4) -> b: {name}(4) -> flatten -> linear(classes)
}}
network {name}2 = {name}_net(classes = 3)
"""
    arch = archdsl.loads(text, f"{name}.arch")
    for net_name in arch.networks:
        net = arch.network(net_name)
        check_generated(generate(net))


@pytest.mark.parametrize("kw", ["import", "network", "block", "input", "output", "let", "for", "if", "in", "true",
                                "init", "seq", "add"])
def test_keywords_as_names(kw):
    """The contextual lexer lets a keyword be a name where only a name fits: still safe code."""
    text = f"block {kw}() {{ conv(4, 1) }}\nnetwork {kw}() {{\n    input {kw}: [3, 8, 8]\n    {kw} -> {kw}: {kw}()\n}}\n"
    try:
        net = archdsl.loads(text, "kw.arch").network()
    except ArchError as err:
        assert err.span.line >= 1
        return
    check_generated(generate(net))


@pytest.mark.parametrize("arg", ['std="0.1"', 'std=in', 'mode="fan_out\\"); __import__(\\"os\\"); (\\""',
                                 'nonlinearity="relu\\n"', 'a=true'])
def test_initialisation_arguments_are_checked(arg):
    err = _elaborate_all(f"network n() {{\n    input x: [3, 8, 8]\n    init conv: kaiming_normal({arg})\n"
                         "    x -> conv(4, 1)\n}\n")
    assert err is not None and "initialisation argument" in str(err) and err.span.line == 3


@pytest.mark.parametrize("escape", [r"\x", r"\N{no such name}", r"\ud800", r"\U00110000", "\\"])
def test_bad_string_escapes_are_diagnostics(escape):
    err = _elaborate_all(f'let s = "{escape}"\nnetwork n() {{\n    input x: [3, 8, 8]\n    x -> relu\n}}\n')
    assert err is not None and err.span.line == 1


def test_network_parameter_strings_cannot_break_out_of_the_docstring():
    payload = r'\"\"\" + __import__(\"os\").system(\"echo PWNED\") + \"\"\"'
    net = archdsl.loads(f'network n(s = "{payload}") {{\n    input x: [3, 8, 8]\n    x -> relu\n}}\n').network()
    check_generated(generate(net))


@pytest.mark.parametrize("file_name", ['x.arch\nimport os; os.system("echo PWNED") #', 'x"""+__import__("os")+""".arch'])
def test_file_names_cannot_break_out_of_comments(file_name):
    net = archdsl.loads("network n() {\n    input x: [3, 8, 8]\n    x -> relu\n}\n", file_name).network()
    check_generated(generate(net))


def test_file_names_with_quotes_compile(tmp_path, capsys):
    weird = tmp_path / "we\"ird'name.arch"
    weird.write_text("block b() { conv(4, 1) }\n")
    main_file = tmp_path / "main 'q\".arch"
    main_file.write_text('import "we\\"ird\'name.arch"\nnetwork n() {\n    input x: [3, 8, 8]\n    x -> b()\n}\n')
    out = tmp_path / "out'\".py"
    assert main(["compile", str(main_file), "-o", str(out)]) == 0, capsys.readouterr().err
    check_generated(out.read_text())


def test_onnx_names_are_the_labels():
    pytest.importorskip("onnx")
    try:
        from archdsl.backends.onnx import export
    except ImportError as err:  # pragma: no cover - the ONNX backend is optional
        pytest.skip(f"no ONNX backend: {err}")
    net = archdsl.loads(_label_program(LABELS), "hostile.arch").network()
    model = export(net)
    initializers = {i.name for i in model.graph.initializer}
    assert set(state_dict_shapes(net)) <= initializers
    assert {n.name for n in model.graph.node if n.op_type == "Conv"} == {k for k in LABELS}
    assert [i.name for i in model.graph.input] == ["x"]


# ============================================================================== atomic, deterministic outputs


BROKEN = "network n() {\n    input x: [3, 8, 8]\n    x -> conv(4, 3) -> nosuchop\n}\n"
GOOD = (ROOT / "examples" / "resnet.arch").read_text()


def _targets():
    out = [("torch", ["--target", "torch"], "out.py")]
    try:
        import archdsl.backends.onnx  # noqa: F401

        out.append(("onnx", ["--target", "onnx"], "out.onnx"))
    except ImportError:  # pragma: no cover
        pass
    return out


@pytest.mark.parametrize("target,args,name", _targets(), ids=[t[0] for t in _targets()])
def test_failed_compile_leaves_the_output_alone(tmp_path, capsys, target, args, name):
    src = tmp_path / "broken.arch"
    src.write_text(BROKEN)
    out = tmp_path / name
    out.write_bytes(b"precious \x00 bytes")
    assert main(["compile", str(src), *args, "-o", str(out)]) == 1
    assert out.read_bytes() == b"precious \x00 bytes"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["broken.arch", name]), "no temporary files left"
    assert "nosuchop" in capsys.readouterr().err


@pytest.mark.parametrize("suffix", [".dot", ".mmd", ".svg"])
def test_failed_graph_leaves_the_output_alone(tmp_path, suffix):
    pytest.importorskip("archdsl.backends.graph")
    src = tmp_path / "broken.arch"
    src.write_text(BROKEN)
    out = tmp_path / f"out{suffix}"
    out.write_bytes(b"precious")
    assert main(["graph", str(src), "-o", str(out)]) == 1
    assert out.read_bytes() == b"precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["broken.arch", out.name])


def test_unwritable_output_is_a_diagnostic(tmp_path, capsys):
    src = tmp_path / "good.arch"
    src.write_text(GOOD)
    assert main(["compile", str(src), "-o", str(tmp_path / "no" / "such" / "dir" / "out.py")]) == 1
    assert "Traceback" not in capsys.readouterr().err


_DETERMINISM = """
import hashlib, sys
from archdsl.tools.cli import main
src, out = sys.argv[1], sys.argv[2]
args = [["compile", src, "-n", "resnet50", "-o", out + ".py"],
        ["graph", src, "-n", "resnet50", "-o", out + ".dot"],
        ["graph", src, "-n", "resnet50", "-o", out + ".mmd"]]
try:
    import archdsl.backends.onnx
    args.append(["compile", src, "-n", "resnet18", "--target", "onnx", "-o", out + ".onnx"])
except ImportError:
    pass
for a in args:
    assert main(a) == 0, a
    print(a[-1].rsplit(".", 1)[1], hashlib.sha256(open(a[-1], "rb").read()).hexdigest())
"""


def test_outputs_are_identical_across_runs_and_hash_seeds(tmp_path):
    src = ROOT / "examples" / "resnet.arch"
    digests = []
    for seed in ("0", "1", "12345", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        r = subprocess.run([sys.executable, "-c", _DETERMINISM, str(src), str(tmp_path / f"out{seed}")],
                           capture_output=True, text=True, env=env, timeout=300)
        assert r.returncode == 0, r.stderr[-2000:]
        digests.append(r.stdout)
    assert len(set(digests)) == 1, digests
    assert "py " in digests[0] and "dot " in digests[0]


# ============================================================================== imports


def _write(root: Path, files: dict[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


NET = "network n() {\n    input x: [3, 8, 8]\n    x -> b()\n}\n"


def _load_error(path: Path, **kw) -> ArchError:
    with pytest.raises(ArchError) as err:
        archdsl.load(path, **kw)
    return err.value


def test_import_cycles(tmp_path):
    _write(tmp_path, {"a.arch": 'import "b.arch"\n' + NET, "b.arch": 'import "c.arch"\nblock b() { relu }\n',
                      "c.arch": 'import "a.arch"\n', "self.arch": 'import "self.arch"\nblock b() { relu }\n' + NET,
                      "sub/self.arch": 'import "../sub/./self.arch"\n'})
    err = _load_error(tmp_path / "a.arch")
    assert "import cycle: a.arch -> b.arch -> c.arch -> a.arch" in str(err)
    assert err.span.line == 1 and err.span.file.endswith("c.arch")
    assert "import cycle" in str(_load_error(tmp_path / "self.arch"))
    assert "import cycle" in str(_load_error(tmp_path / "sub" / "self.arch"))


def test_imports_resolve_relative_to_the_importing_file(tmp_path, monkeypatch):
    _write(tmp_path, {"proj/main.arch": 'import "lib/x.arch"\n' + NET, "proj/lib/x.arch": 'import "y.arch"\n',
                      "proj/lib/y.arch": "block b() { relu }\n", "proj/y.arch": "block b() { tanh }\n"})
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    net = archdsl.load(tmp_path / "proj" / "main.arch").network()
    assert [n.op for n in net.nodes] == ["input", "relu"]
    assert main(["check", str(tmp_path / "proj" / "main.arch")]) == 0


def test_include_root(tmp_path, capsys):
    outside = tmp_path / "outside.arch"
    outside.write_text("block b() { relu }\n")
    root = tmp_path / "root"
    _write(root, {"ok.arch": 'import "lib/b.arch"\n' + NET, "lib/b.arch": "block b() { relu }\n",
                  "up.arch": 'import "../outside.arch"\n' + NET,
                  "abs.arch": f'import "{outside}"\n' + NET,
                  "link.arch": 'import "lib/escape.arch"\n' + NET,
                  "inner_link.arch": 'import "lib/alias.arch"\n' + NET})
    (root / "lib" / "escape.arch").symlink_to(outside)
    (root / "lib" / "alias.arch").symlink_to(root / "lib" / "b.arch")
    assert main(["check", str(root / "ok.arch"), "--include-root", str(root)]) == 0
    assert main(["check", str(root / "inner_link.arch"), "--include-root", str(root)]) == 0
    capsys.readouterr()
    for name in ("up.arch", "abs.arch", "link.arch"):
        assert main(["check", str(root / name), "--include-root", str(root)]) == 1, name
        err = capsys.readouterr().err
        assert "outside the include root" in err and f"{name}:1:1" in err, err
        # without the flag the root is the main file's directory: refused too
        assert main(["check", str(root / name)]) == 1, name
        assert "outside the include root" in capsys.readouterr().err
        # a wider root lets them load
        assert main(["check", str(root / name), "--include-root", str(root.parent)]) == 0, name
        capsys.readouterr()
    assert "outside the include root" in str(_load_error(root / "up.arch", include_root=root))


def test_imports_of_special_files(tmp_path):
    fifo = tmp_path / "fifo.arch"
    os.mkfifo(fifo)
    (tmp_path / "dir.arch").mkdir()
    _write(tmp_path, {"fifo_user.arch": 'import "fifo.arch"\n', "dir_user.arch": 'import "dir.arch"\n',
                      "zero_user.arch": 'import "/dev/zero"\n', "missing.arch": 'import "nope.arch"\n',
                      "binary.arch": "", "binary_user.arch": 'import "binary.arch"\n'})
    (tmp_path / "binary.arch").write_bytes(b"\xff\xfe\x00garbage")
    start = time.perf_counter()
    for name, message in [("fifo_user", "is a FIFO"), ("dir_user", "is a directory"),
                          ("zero_user", "outside the include root"), ("missing", "no such file"),
                          ("binary_user", "not UTF-8")]:
        err = _load_error(tmp_path / f"{name}.arch")
        assert message in str(err) and err.span.line == 1, (name, str(err))
    assert time.perf_counter() - start < TIME_BOUND


def test_deep_import_chains(tmp_path):
    _write(tmp_path, {f"f{i}.arch": f'import "f{i + 1}.arch"\n' for i in range(100)})
    (tmp_path / "f100.arch").write_text("block b() { relu }\n")
    assert "imports nested deeper than" in str(_load_error(tmp_path / "f0.arch"))


def test_imports_share_the_size_limit(tmp_path, monkeypatch):
    from archdsl.lang import parser as syntax

    monkeypatch.setattr(syntax, "MAX_SOURCE_BYTES", 2000)
    _write(tmp_path, {"main.arch": 'import "a.arch"\nimport "b.arch"\n' + NET,
                      "a.arch": "# " + "a" * 990 + "\nblock b() { relu }\n", "b.arch": "# " + "b" * 990 + "\n"})
    err = _load_error(tmp_path / "main.arch")
    assert "longer than 2000 characters" in str(err) and err.span.line == 2
