"""User text never runs as code in the generated PyTorch source (issue 14).

Every kind of user text that reaches the generated module (module labels, block and network
names, string values through parameter reprs, the source file name) is tried at every length
from 1 to 300 with a hostile payload at its end, so that the payload crosses the docstring
wrap column at every offset.  Each source must compile, pass the AST allow-list, run on import
without creating a file (executed against a stand-in torch, so most of the file needs no torch),
and keep the user's text: labels exactly, docstrings up to the whitespace the wrapper changes.
The second half builds modules whose user names collide with the file's own top-level names.
"""
from __future__ import annotations

import ast
import dataclasses
import builtins
import os
import types

import pytest

import archdsl
from archdsl import ArchError
from archdsl.passes.analysis import state_dict_shapes
from archdsl.backends.torch.names import escape
from archdsl.backends.torch import generate
from codecheck import GeneratedCodeError, check_generated

LENGTHS = range(1, 301)
SENTINEL = "PWNED"
# What an attacker puts at the wrap column: quotes that close a docstring, escapes a split can
# break in two, and code to run once the docstring is closed.
PAYLOADS = {
    "close_quotes": f'""""""+open("{SENTINEL}","w")+""""""',
    "escaped_quotes": f'\\"""+open("{SENTINEL}","w")+"""\\',
    "named_escape": "\\N\\N\\N",
    "backslashes": "\\\\\\",
    "hex_escapes": "\\x00\\x\\u2028\\U0001",
    "single_quotes": f"'''+open('{SENTINEL}','w')+'''",
}
# Characters only a string value can hold: NUL and what the tokenizer or str.splitlines breaks at.
CONTROLS = "\x00\n\r\x0b\x0c\x1c\x85\u2028\u2029\ufeff\u202e"


def _arch_string(text: str) -> str:
    """``text`` as an .arch string literal."""
    body = text.replace("\\", "\\\\").replace('"', '\\"')
    return '"' + "".join(c if c.isprintable() else f"\\u{ord(c):04x}" for c in body) + '"'


def _sized(payload: str, length: int) -> str:
    """A string of exactly ``length`` characters ending in (the end of) ``payload``."""
    return ("a" * length + payload)[-length:]


def _fake_import(name, globals=None, locals=None, fromlist=(), level=0):
    if name.split(".")[0] != "torch":
        return builtins.__import__(name, globals, locals, fromlist, level)
    nn = types.SimpleNamespace(Module=type("Module", (), {}), Sequential=type("Sequential", (), {}),
                               functional=types.SimpleNamespace())
    return types.SimpleNamespace(nn=nn)


def _assert_safe(source: str) -> ast.Module:
    """Compiles, passes the allow-list, and importing it (in an empty working directory) makes no file."""
    tree = check_generated(source)
    before = set(os.listdir("."))
    namespace = {"__name__": "generated", "__builtins__": {**vars(builtins), "__import__": _fake_import}}
    exec(compile(tree, "<generated>", "exec"), namespace)  # noqa: S102 - the point of the test
    assert set(os.listdir(".")) == before and not os.path.exists(SENTINEL)
    return tree


def _docstrings(tree: ast.Module) -> list[str]:
    """The module's and every class's docstring, whitespace normalised (the wrapper changes only that)."""
    nodes = [tree] + [n for n in tree.body if isinstance(n, ast.ClassDef)]
    return [" ".join(ast.get_docstring(n, clean=False).split()) for n in nodes]


def _label_strings(tree: ast.Module) -> set[str]:
    """The module labels the source names: getattr/add_module/OrderedDict keys."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id == "getattr" or \
                    isinstance(func, ast.Attribute) and func.attr == "add_module":
                out.add(node.args[1 if isinstance(func, ast.Name) else 0].value)
        elif isinstance(node, ast.Tuple) and len(node.elts) == 2 and isinstance(node.elts[0], ast.Constant):
            out.add(node.elts[0].value)
    return out


@pytest.fixture(autouse=True)
def _in_empty_dir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)


# ------------------------------------------------------------------------------ the escaping function


@pytest.mark.parametrize("quote", ["'", '"', '"""'])
def test_escape_is_one_printable_line_that_evaluates_back_to_the_text(quote):
    for text in [*PAYLOADS.values(), CONTROLS, "\ud800lone\udfff", "ℌｃｏｎｖé", "end\\", 'end"', "'\"", ""]:
        body = escape(text, quote)
        assert body.isprintable() and len(body.splitlines()) <= 1
        assert ast.literal_eval(quote + body + quote) == text
        shown = ast.literal_eval(quote + escape(text, quote, visible=True) + quote)  # what a docstring holds
        assert shown.isprintable() and shown == _shown(text)


def _shown(text: str) -> str:
    """What a docstring shows of ``text``: unprintable characters as their escapes."""
    return "".join(c if c.isprintable() else c.encode("unicode_escape").decode() for c in text)


# ------------------------------------------------------------------------------ every length


@pytest.mark.parametrize("payload", sorted(PAYLOADS))
def test_labels_of_every_length(payload):
    labels = [_sized(PAYLOADS[payload], n) for n in range(1, 129)]  # 128 is the limit on a module name
    # each label names a class of its own (a seq that is not a plain chain) and a Sequential entry
    stages = " -> ".join(f"{_arch_string(lb)}: seq {{ add {{ conv(4, 1) | identity }} }}" for lb in labels)
    chains = " -> ".join(f"s{k}: seq {{ {_arch_string(lb)}: conv(4, 1) -> relu }}" for k, lb in enumerate(labels))
    text = f"network n() {{\n    input x: [4, 8, 8]\n    x -> {stages}\n    -> {chains}\n}}\n"
    net = archdsl.loads(text, "labels.arch").network()
    tree = _assert_safe(generate(net))
    assert _label_strings(tree) >= set(labels)
    docs = " ".join(_docstrings(tree))
    assert all(f"The `{lb}` sequence of labels.arch." in docs for lb in labels)


@pytest.mark.parametrize("length", [129, 200, 300])
def test_longer_labels_are_diagnostics(length):
    label = _arch_string(_sized(PAYLOADS["close_quotes"], length))
    with pytest.raises(ArchError, match="invalid module name"):
        archdsl.loads(f"network n() {{\n    input x: [4, 8, 8]\n    x -> {label}: conv(4, 1)\n}}\n").network()


def test_block_names_of_every_length():
    names = ["b" * n for n in LENGTHS]  # a name holds no quotes or escapes: its length is the attack
    blocks = "".join(f"block {name}(c) {{ add {{ conv(c, 1) | identity }} }}\n" for name in names)
    stages = " -> ".join(f"{name}(4)" for name in names)
    net = archdsl.loads(f"{blocks}network n() {{\n    input x: [4, 8, 8]\n    x -> {stages}\n}}\n", "b.arch").network()
    tree = _assert_safe(generate(net))
    docs = " ".join(_docstrings(tree))
    assert all(f"Block `{name}` from b.arch." in docs for name in names)


def test_network_names_of_every_length():
    for n in LENGTHS:
        name = "n" * n
        net = archdsl.loads(f"network {name}() {{\n    input x: [4, 8, 8]\n    x -> relu\n}}\n", "n.arch").network()
        docs = _docstrings(_assert_safe(generate(net)))
        assert docs[0].startswith(f"{name}(), compiled from n.arch") and f"Network `{name}` from n.arch" in docs[-1]


@pytest.mark.parametrize("payload", sorted(PAYLOADS) + ["controls"])
def test_string_values_of_every_length(payload):
    """A network parameter's string default reaches the module docstring through its repr."""
    for n in LENGTHS:
        value = _sized(PAYLOADS.get(payload, CONTROLS), n)
        text = f"network n(s = {_arch_string(value)}, t = 1) {{\n    input x: [4, 8, 8]\n    x -> relu\n}}\n"
        net = archdsl.loads(text, "s.arch").network()
        assert net.params["s"] == value
        docs = _docstrings(_assert_safe(generate(net)))
        assert docs[0].startswith(f"n(s={' '.join(repr(value).split())}, t=1), compiled from s.arch")


@pytest.mark.parametrize("payload", sorted(PAYLOADS) + ["controls"])
def test_source_file_names_of_every_length(payload):
    net = archdsl.loads("block b() { add { conv(4, 1) | identity } }\n"
                        "network n() {\n    input x: [4, 8, 8]\n    x -> b() -> b()\n}\n", "f.arch").network()
    for n in LENGTHS:
        name = _sized(PAYLOADS.get(payload, CONTROLS) + "\udcff", n)  # a file name may hold an undecodable byte
        source = generate(net, source_name=name)
        tree = _assert_safe(source)
        assert source.splitlines()[1] == "# change the .arch file and compile again."  # the comment stayed one line
        layout = str.maketrans("\t\n\x0b\x0c\r", "     ")  # ASCII whitespace: the wrapper may break lines there
        flat = " ".join(_shown(name.translate(layout)).split())
        assert all(flat in doc for doc in _docstrings(tree))


def test_hostile_string_arguments_are_diagnostics():
    """String attributes are choices: a payload never reaches a constructor."""
    for attr in (f'upsample(mode={_arch_string(PAYLOADS["close_quotes"])})',
                 f'gelu(approximate={_arch_string(PAYLOADS["single_quotes"])})'):
        with pytest.raises(ArchError):
            archdsl.loads(f"network n() {{\n    input x: [4, 8, 8]\n    x -> {attr}\n}}\n").network()


def test_comments_never_reach_the_source():
    payload = PAYLOADS["close_quotes"]
    text = "".join(f"# {_sized(payload, n)}\n" for n in LENGTHS) + \
        f"network n() {{  # {payload}\n    input x: [4, 8, 8]\n    x -> relu  # {payload}\n}}\n"
    source = generate(archdsl.loads(text, "c.arch").network())
    _assert_safe(source)
    assert SENTINEL not in source


def test_a_sample_builds_and_imports_with_torch():
    """The stand-in torch above is only for speed: a sample runs against the real one."""
    torch = pytest.importorskip("torch")
    labels = [_sized(PAYLOADS[p], n) for p in sorted(PAYLOADS) for n in (1, 40, 87, 88, 89, 90, 91, 92, 93, 128)]
    stages = " -> ".join(f"{_arch_string(lb)}: seq {{ add {{ conv(4, 1) | identity }} }}" for lb in dict.fromkeys(labels))
    text = f"network n(s = {_arch_string(CONTROLS + PAYLOADS['close_quotes'])}) {{\n    input x: [4, 8, 8]\n" \
           f"    x -> {stages}\n}}\n"
    net = archdsl.loads(text, "sample.arch").network()
    model = net.to_torch()
    assert {k.rsplit(".", 2)[0] for k in model.state_dict()} == set(labels)
    namespace: dict = {"__name__": "generated"}
    exec(compile(generate(net), "<generated>", "exec"), namespace)  # noqa: S102 - a real import
    assert not os.listdir(".")
    assert namespace["MODEL"]()(torch.zeros(1, 4, 8, 8)).shape == (1, 4, 8, 8)


# ------------------------------------------------------------------------------ the allow-list

VALID = '''"""doc."""
from torch import nn


class N(nn.Module):
    """Doc."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, kernel_size=1)

    def forward(self, x):
        x = self.conv(x)
        return x


MODEL = N
'''
FORWARD = "        return x\n"
INIT = "        super().__init__()\n"


@pytest.mark.parametrize("old, new", [
    (FORWARD, "        open('x')\n" + FORWARD),
    (FORWARD, "        x = __import__('os')\n" + FORWARD),
    (FORWARD, "        x = x.__class__\n" + FORWARD),
    (FORWARD, "        x = getattr(x, 'weight')\n" + FORWARD),
    (FORWARD, "        x = getattr(self, x)\n" + FORWARD),
    (FORWARD, "        x = (lambda: x)()\n" + FORWARD),
    (FORWARD, "        x = f'{x}'\n" + FORWARD),
    (FORWARD, "        x = x * inf\n" + FORWARD),
    (FORWARD, "        'a string statement'\n" + FORWARD),
    (FORWARD, "        x = self.conv('positional string')\n" + FORWARD),
    (FORWARD, "        import os\n" + FORWARD),
    (FORWARD, "        def g():\n            pass\n" + FORWARD),
    (FORWARD, "        nn = x\n" + FORWARD),
    (FORWARD, "        x = self.conv(*x)\n" + FORWARD),
    (INIT, INIT + "        self.conv = nn.Conv2d(**{})\n"),
    ("from torch import nn\n", "from torch import nn\nimport os\n"),
    ("from torch import nn\n", "from torch import nn\nprint('hi')\n"),
    ('"""doc."""\n', '"""doc."""\n"""second"""\n'),
    ("class N(nn.Module):", "class N(object):"),
    ("class N(nn.Module):", "@nn.Module\nclass N(nn.Module):"),
    ("MODEL = N", "nn = N"),
    ("MODEL = N", "MODEL = print"),
    ("MODEL = N", "MODEL = N\nMODEL2 = N"),
    ('    """Doc."""', '    """Doc."""\n    x = 1'),
    ("def forward(self, x):", "def forward(self, x=open):"),
    ('"""doc."""', '"""doc.""" """'),
])
def test_the_allow_list_refuses_what_the_backend_never_emits(old, new):
    assert old in VALID
    check_generated(VALID)
    with pytest.raises(GeneratedCodeError):
        check_generated(VALID.replace(old, new, 1))


@pytest.mark.parametrize("emitted, message", [(f"open('{SENTINEL}')", "name 'open'"), ("x +)", "does not parse")])
def test_a_violation_is_an_internal_error_and_nothing_is_written(emitted, message, tmp_path, monkeypatch, capsys):
    """A backend bug that emits code outside the allow-list (or no code at all) writes nothing."""
    from archdsl import ops
    from archdsl.tools.cli import main

    relu = ops.REGISTRY["relu"]
    monkeypatch.setattr(relu, "torch", dataclasses.replace(relu.torch, functional=lambda a, x, ins: emitted))
    src = tmp_path / "r.arch"
    src.write_text("network n() {\n    input x: [4, 8, 8]\n    x -> add { relu | identity }\n}\n")
    net = archdsl.load(str(src)).network()
    with pytest.raises(GeneratedCodeError, match=message):
        generate(net)
    out = tmp_path / "r.py"
    assert main(["compile", str(src), "--target", "torch", "-o", str(out)]) == 70
    assert "internal error" in capsys.readouterr().err
    assert not out.exists() and not (tmp_path / SENTINEL).exists()


# ------------------------------------------------------------------------------ one namespace


def _build_and_run(text: str, name: str = "n", channels: int = 3):
    torch = pytest.importorskip("torch")
    net = archdsl.loads(text, "names.arch").network(name)
    _assert_safe(generate(net))
    model = net.to_torch()
    with torch.no_grad():
        return net, model, model(torch.zeros(1, channels, 8, 8))


@pytest.mark.parametrize("block", ["MODEL", "nn", "torch", "F", "OrderedDict", "Tensor", "math", "super", "print",
                                   "getattr", "isinstance", "None", "class", "model", "N"])
def test_block_names_that_are_the_files_own_names(block):
    text = (f"block {block}(c) {{ conv(c, 3, pad=1) -> relu }}\n"
            f"network n() {{\n    input x: [3, 8, 8]\n    x -> {block}(4) -> b2: {block}(4) -> {block}(8)\n}}\n")
    net, model, y = _build_and_run(text)
    assert y.shape == (1, 8, 8, 8)
    assert set(model.state_dict()) == set(state_dict_shapes(net)) and "b2.0.weight" in state_dict_shapes(net)


def test_a_block_named_model_keeps_its_class_and_the_alias_moves():
    text = "block MODEL(c) { conv(c, 1) }\nnetwork n() {\n    input x: [3, 8, 8]\n    x -> MODEL(4) -> MODEL(5)\n}\n"
    source = generate(archdsl.loads(text).network())
    assert "class MODEL(nn.Sequential):" in source and source.endswith("\n\nMODEL_1 = N\n")
    assert "``MODEL_1`` is an alias of ``N``: ``MODEL`` names another class of this file." in source
    _build_and_run(text)


def test_a_network_named_model_needs_no_alias():
    text = "network MODEL() {\n    input x: [3, 8, 8]\n    x -> conv(4, 1)\n}\n"
    source = generate(archdsl.loads(text).network())
    assert "class MODEL(nn.Module):" in source and "\nMODEL = " not in source
    assert _build_and_run(text, "MODEL")[2].shape == (1, 4, 8, 8)


def test_names_that_camel_case_alike_are_separate_blocks():
    text = ("block basic_x(c) { add { conv(c, 3, pad=1) | identity } }\nblock basicX(c) { conv(c, 1) -> relu }\n"
            "network n() {\n    input x: [3, 8, 8]\n    x -> basicX(3) -> basic_x(3) -> basicX(5)\n}\n")
    source = generate(archdsl.loads(text).network())
    assert "class BasicX(" in source and "class BasicX_1(" in source
    assert "Specialised" not in source  # two blocks, not two variants of one
    assert _build_and_run(text)[2].shape == (1, 5, 8, 8)


@pytest.mark.parametrize("text", [
    # a constructor parameter named like the class of a nested block
    "block inner(c) { conv(c, 1) -> relu }\nblock outer(Inner) { inner(Inner) -> conv(Inner, 1) }\n"
    "network n() {\n    input x: [3, 8, 8]\n    x -> outer(4) -> outer(6)\n}\n",
    # a parameter named like an import, used through a derived slot (`nn * 4`)
    "block b(nn) { conv(nn * 4, 1) -> conv(nn, 1) }\nnetwork n() {\n    input x: [3, 8, 8]\n    x -> b(1) -> b(2)\n}\n",
    "block b(F, torch) { conv(F * torch, 1) -> maxpool(3, stride=1, pad=1) -> relu -> conv(torch, 1) }\n"
    "network n() {\n    input x: [3, 8, 8]\n    x -> b(1, 2) -> b(2, 3)\n}\n",
    # tensors named like the imports
    "network n() {\n    input x: [3, 8, 8]\n    math = x -> conv(4, 1)\n    F = math -> maxpool(2)\n"
    "    torch = F -> relu\n    OrderedDict = concat(torch, torch)\n}\n",
])
def test_parameters_and_tensors_named_like_the_files_names(text):
    _build_and_run(text)
