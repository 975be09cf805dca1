"""Language tooling: the op reference and generated docs, the language reference's examples,
highlighting (Pygments, TextMate, coloured diagnostics) and notebook display."""
from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

import archdsl
from archdsl.tools import docs
from archdsl import ops
from archdsl.tools.cli import main
from archdsl.tools.fmt import format_source

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.arch"))
LANGUAGE = ROOT / "docs" / "language.md"
VSCODE = ROOT / "editors" / "vscode"
ANSI = re.compile(r"\x1b\[[0-9;]*m")


# ------------------------------------------------------------------------------- archdsl ops


def test_ops_lists_every_registered_op(capsys):
    assert main(["ops"]) == 0
    out = capsys.readouterr().out
    for name, spec in ops.REGISTRY.items():
        assert docs.signature(spec) in out, name
        assert spec.example in out and spec.rule in out


def test_ops_one_op_shows_signature_defaults_rule_and_example(capsys):
    assert main(["ops", "conv"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("conv(out, kernel, stride=1, pad=0, dilation=1, groups=1, bias=true)\n")
    assert re.search(r"bias\s+bool\s+true", out) and re.search(r"out\s+int\s+required\s+output channels", out)
    assert "shape:   [C, H, W] -> [out," in out and "example: conv(64, 3" in out
    assert "maxpool" not in out


def test_ops_unknown_name_suggests_one(capsys):
    assert main(["ops", "maxpol"]) == 1
    err = capsys.readouterr().err
    assert "no op 'maxpol'" in err and "did you mean 'maxpool'?" in err


def _elaborates(statement: str) -> bool:
    for shape in ("[64, 64, 64]", "[16, 32, 32]", "[64]"):
        try:
            archdsl.loads(f"network n() {{\n    input x: {shape}\n    {statement}\n}}\n").network()
            return True
        except archdsl.ArchError:
            continue
    return False


@pytest.mark.parametrize("name", list(ops.REGISTRY))
def test_every_op_has_docs_and_a_working_example(name):
    spec = ops.REGISTRY[name]
    assert spec.doc and spec.rule and spec.example and spec.family in docs.FAMILIES
    ex = spec.example
    statement = ex if re.match(r"\w+(, \w+)* = ", ex) else f"x -> {ex}"
    assert _elaborates(statement), f"the example of {name} does not elaborate: {ex}"


def test_generated_files_are_up_to_date():
    """docs/ops.md and the TextMate grammar come from the registry: `python -m archdsl.tools.docs`."""
    stale = [str(p.relative_to(ROOT)) for p, text in docs.outputs().items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    assert not stale, f"stale: {stale}; run `python -m archdsl.tools.docs` and commit the result"


def test_docs_check_command_detects_staleness(tmp_path, monkeypatch):
    monkeypatch.setattr(docs, "DOCS_PATH", tmp_path / "docs" / "ops.md")
    assert docs.main(["--check"]) == 1
    assert docs.main([]) == 0
    assert docs.main(["--check"]) == 0
    assert (tmp_path / "docs" / "ops.md").read_text() == docs.markdown()


# ------------------------------------------------------------------------------- language reference


def _arch_blocks(text: str) -> list[str]:
    return re.findall(r"^```arch\n(.*?)^```", text, re.S | re.M)


LANG_BLOCKS = _arch_blocks(LANGUAGE.read_text(encoding="utf-8"))


def test_language_reference_has_examples():
    assert len(LANG_BLOCKS) >= 10


@pytest.mark.parametrize("k", range(len(LANG_BLOCKS)))
def test_language_reference_examples_check_and_are_formatted(k, tmp_path, capsys):
    block = LANG_BLOCKS[k]
    path = tmp_path / "example.arch"
    path.write_text(block)
    for imp in re.findall(r'^import "([^"]+)"', block, re.M):
        (tmp_path / imp).write_text("")  # the reference shows import syntax; the file may be empty
    assert main(["check", str(path)]) == 0, capsys.readouterr().err
    assert format_source(block) == block, "not in `archdsl fmt` layout:\n" + format_source(block)


def test_language_reference_covers_every_construct():
    text = "\n".join(LANG_BLOCKS)
    for construct in ["import ", "let ", "block ", "network ", "= mlp(", "input ", "output ", "->", " = ",
                      "seq {", "add {", "concat {", "mul {", "concat(", " * ", '"conv{i}"', "for ", "..",
                      "if ", "else if", "else {", "init ", "in.channels", "#"]:
        assert construct in text, construct


# ------------------------------------------------------------------------------- highlighting


def _error_tokens(text: str):
    from pygments.token import Error

    from archdsl.tools.highlight import ArchLexer

    return [(t, v) for t, v in ArchLexer().get_tokens(text) if t in Error]


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_lexer_has_no_error_tokens_on_examples(path):
    assert _error_tokens(path.read_text()) == []


def test_lexer_token_kinds():
    from pygments.token import Comment, Keyword, Name, Number, String

    from archdsl.tools.highlight import ArchLexer

    src = 'block b(c = 1) {\n    "l{i}": conv(c, 3, pad=1) -> bn1: bn  # note\n}\n'
    toks = [(t, v) for t, v in ArchLexer().get_tokens(src) if v.strip()]
    assert (Keyword.Declaration, "block") in toks and (Name.Class, "b") in toks
    assert (Name.Builtin, "conv") in toks and (Name.Label, "bn1") in toks
    assert (String.Interpol, "{i}") in toks and (Number.Integer, "3") in toks
    assert (Comment.Single, "# note") in toks and not _error_tokens(src)


def test_lexer_is_registered_with_pygments():
    text = (ROOT / "pyproject.toml").read_text()
    assert '[project.entry-points."pygments.lexers"]' in text
    assert 'arch = "archdsl.tools.highlight:ArchLexer"' in text
    from importlib.metadata import entry_points

    if not any(ep.value == "archdsl.tools.highlight:ArchLexer" for ep in entry_points(group="pygments.lexers")):
        pytest.skip("installed metadata predates the entry point: pip install -e .")
    from pygments.lexers import get_lexer_by_name, get_lexer_for_filename

    assert get_lexer_by_name("arch").name == "archdsl"
    assert get_lexer_for_filename("net.arch").name == "archdsl"


def test_vscode_extension_loads():
    pkg = json.loads((VSCODE / "package.json").read_text())
    lang = pkg["contributes"]["languages"][0]
    assert ".arch" in lang["extensions"]
    json.loads((VSCODE / lang["configuration"]).read_text())
    grammar_ref = pkg["contributes"]["grammars"][0]
    assert grammar_ref["language"] == lang["id"] and grammar_ref["scopeName"] == "source.arch"
    grammar = json.loads((VSCODE / grammar_ref["path"]).read_text())
    assert grammar["scopeName"] == "source.arch"
    for rule in grammar["repository"].values():  # the regexes are plain enough for Python's re too
        for key in ("match", "begin", "end"):
            if key in rule:
                re.compile(rule[key])
    assert all(p["include"][1:] in grammar["repository"] for p in grammar["patterns"])


def test_textmate_grammar_tags_ops_and_comments():
    grammar = json.loads((VSCODE / "syntaxes" / "arch.tmLanguage.json").read_text())
    rep = grammar["repository"]
    assert re.search(rep["op"]["match"], "x -> maxpool(2)").group() == "maxpool"
    assert re.search(rep["comment"]["match"], "relu  # note").group() == "# note"


# ------------------------------------------------------------------------------- coloured errors


class _Tty(io.StringIO):
    def isatty(self):
        return True


BROKEN = ROOT / "tests" / "broken" / "add_mismatch.arch"


def _check_stderr(monkeypatch, stream) -> str:
    monkeypatch.chdir(ROOT)
    monkeypatch.setattr(sys, "stderr", stream)
    assert main(["check", str(BROKEN.relative_to(ROOT))]) == 1
    return stream.getvalue()


def test_errors_are_coloured_on_a_terminal_and_otherwise_plain(monkeypatch):
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.setenv("TERM", "xterm-256color")
    coloured = _check_stderr(monkeypatch, _Tty())
    plain = _check_stderr(monkeypatch, io.StringIO())
    assert "\x1b[" in coloured and "\x1b[" not in plain
    assert ANSI.sub("", coloured) == plain  # the same text, only coloured
    golden = BROKEN.with_suffix(".expected").read_text()
    assert plain + "exit: 1\n" == golden


def test_no_color_turns_colour_off(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in _check_stderr(monkeypatch, _Tty())


def test_subprocess_output_is_plain():
    r = subprocess.run([sys.executable, "-m", "archdsl", "check", str(BROKEN)], capture_output=True, text=True)
    assert r.returncode == 1 and "\x1b[" not in r.stderr and "error:" in r.stderr


# ------------------------------------------------------------------------------- notebooks


@pytest.fixture(scope="module")
def lenet():
    return archdsl.load(ROOT / "examples" / "lenet5.arch")


def test_summary_rows_have_the_fields_of_summary_json(lenet, capsys):
    s = lenet.network().summary()
    assert main(["summary", str(ROOT / "examples" / "lenet5.arch"), "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert [asdict(r) for r in s.rows] == data["rows"]
    assert s.totals == data["totals"] and s.totals["params"] == 61706
    assert s.rows[1].path and s.rows[1].op == "conv"


def test_html_repr_is_the_summary_table(lenet):
    html = lenet._repr_html_()
    assert "<table>" in html and "conv1" in html and "61,706" in html and "lenet5" in html
    net_html = lenet.network()._repr_html_()
    assert net_html in html and lenet.network().summary()._repr_html_() == net_html


def test_svg_repr_or_graceful_fallback(lenet, monkeypatch):
    from archdsl.backends import graph

    svg = lenet._repr_svg_()
    assert svg is None or "<svg" in svg

    def broken(*a, **k):
        raise archdsl.ArchError("Graphviz 'dot' was not found")

    monkeypatch.setattr(graph, "to_svg", broken)
    assert lenet.network()._repr_svg_() is None and lenet._repr_svg_() is None


def test_reprs_of_a_file_with_errors_show_the_diagnostic():
    arch = archdsl.loads("network n() {\n    input x: [3, 8, 8]\n    x -> conv(4, 9)\n}\n", "bad.arch")
    html = arch._repr_html_()
    assert html.startswith("<pre>") and "bad.arch:3:" in html and "^" in html
    assert arch._repr_svg_() is None
