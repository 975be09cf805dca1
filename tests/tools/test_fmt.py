"""``archdsl fmt``: the AST never changes, formatting is idempotent, comments survive.

The properties run over the shipped examples, over mutations of them (every token re-spaced at
random, comments inserted between tokens) and over programs generated from the AST itself.
"""
from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from archdsl.lang import ast as S
from archdsl.lang import parser as P
from archdsl.tools.cli import main
from archdsl.errors import Span
from archdsl.lang.lexicon import KEYWORDS
from archdsl.tools.fmt import comments, format_program, format_source, strip_spans, tokens

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = sorted((ROOT / "examples").glob("*.arch"))


def _settings(n: int):
    return settings(max_examples=n, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


FAST, LONG = _settings(20), _settings(2000)  # LONG: pytest -m fuzz


def same_ast(a: str, b: str) -> bool:
    return strip_spans(P.parse(a)) == strip_spans(P.parse(b))


def check(text: str) -> str:
    out = format_source(text)
    assert same_ast(text, out), out
    assert format_source(out) == out, "not idempotent:\n" + out
    # every comment survives (two trailing comments that land on one line share it)
    kept = "\n".join(c.text for c in comments(out))
    for c in comments(text):
        assert c.text.rstrip() in kept, c.text
    return out


# ------------------------------------------------------------------------------- examples


@pytest.mark.parametrize("path", EXAMPLES, ids=[p.stem for p in EXAMPLES])
def test_examples_keep_their_ast_and_comments(path):
    out = check(path.read_text())
    assert all(len(line) <= 120 for line in out.splitlines())


@st.composite
def respaced(draw, text: str) -> str:
    """The same tokens and comments with random whitespace between them."""
    toks = [t for t in _all_tokens(text)]
    seps = [" ", "  ", "\n", "\n    ", "\n\n", "\t"]
    out = []
    for t in toks:
        out.append(t.text)
        out.append("\n" if t.kind == "comment" else draw(st.sampled_from(seps)))
        if draw(st.integers(0, 30)) == 0:
            out.append(f"# note {len(out)}\n")
    return "".join(out)


def _all_tokens(text: str):
    from archdsl.tools.fmt import lex

    return lex(text)


def _respaced_example(data):
    path = data.draw(st.sampled_from(EXAMPLES))
    check(data.draw(respaced(path.read_text())))


test_respaced_examples_format_to_the_same_ast = FAST(given(st.data())(_respaced_example))
test_respaced_examples_fuzz = pytest.mark.fuzz(LONG(given(st.data())(_respaced_example)))


def test_layout_does_not_depend_on_spacing_of_one_liners():
    a = "network n(){input x:[3,8,8]\nx->conv(4,3,pad=1)->relu}"
    b = "network n() {\n    input x: [3, 8, 8]\n    x -> conv(4, 3, pad=1) -> relu\n}\n"
    assert format_source(a) == b
    assert format_source(b) == b


# ------------------------------------------------------------------------------- generated ASTs

SP = Span("<gen>", 0, 0)
names = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(lambda s: s not in KEYWORDS)


def exprs(depth: int = 3):
    leaves = st.one_of(
        st.integers(0, 10 ** 6).map(lambda v: S.Num(SP, v)),
        st.floats(0, 1e6, allow_nan=False, allow_infinity=False).map(lambda v: S.Num(SP, v)),
        st.text(st.characters(min_codepoint=32, max_codepoint=0x2fff, exclude_characters="{}"), max_size=6)
        .map(lambda v: S.Str(SP, v)),
        st.booleans().map(lambda v: S.Bool(SP, v)),
        names.map(lambda v: S.Name(SP, v)),
        st.just(S.InName(SP)),
    )
    if depth == 0:
        return leaves
    sub = exprs(depth - 1)
    ops = ["+", "-", "*", "/", "//", "%", "**", "==", "!=", "<", ">", "<=", ">="]
    return st.one_of(
        leaves,
        st.builds(lambda o, a, b: S.BinOp(SP, o, a, b), st.sampled_from(ops), sub, sub),
        st.builds(lambda o, a, b: S.BoolOp(SP, o, a, b), st.sampled_from(["and", "or"]), sub, sub),
        sub.map(lambda a: S.Not(SP, a)),
        sub.map(lambda a: S.Neg(SP, a)),
        st.builds(lambda a, b, c: S.Ternary(SP, a, b, c), sub, sub, sub),
        st.builds(lambda a, b: S.Index(SP, a, b), sub, sub),
        st.builds(lambda a, n: S.Attr(SP, a, n), sub, names),
        st.lists(sub, max_size=4).map(lambda xs: S.TupleExpr(SP, tuple(xs))),
        st.lists(sub, max_size=3).map(lambda xs: S.ListExpr(SP, tuple(xs))),
        st.builds(lambda n, xs: S.Func(SP, n, tuple(xs)), names, st.lists(sub, max_size=3)),
    )


args = st.lists(st.builds(lambda n, v: S.Arg(n, v, SP), st.none() | names, exprs(2)), max_size=4)


def stages(depth: int):
    core = st.one_of(
        st.builds(lambda n: S.Call(n, (), False, SP), names),
        st.builds(lambda n, a: S.Call(n, tuple(a), True, SP), names, args),
        st.just(S.InRef(SP)),
    )
    if depth > 0:
        branch = st.lists(statements(depth - 1), max_size=2).map(tuple)
        core = core | st.builds(lambda k, bs: S.Container(k, tuple(bs), SP),
                                st.sampled_from(["add", "concat", "mul", "seq"]),
                                st.lists(branch, min_size=1, max_size=3))
    label = st.none() | st.builds(lambda n: S.Label(n, False, SP), names) | st.builds(
        lambda t: S.Label(t, True, SP), st.from_regex(r"[a-z]{1,4}(\{[a-z]\})?", fullmatch=True))
    return st.builds(lambda lab, c, r: S.Stage(lab, c, r, SP), label, core, st.none() | exprs(1))


def pipelines(depth: int):
    return st.lists(stages(depth), min_size=1, max_size=4).map(lambda ss: S.Pipeline(tuple(ss), SP))


def statements(depth: int = 2):
    simple = st.one_of(
        st.builds(lambda p: S.PipeStmt(p, SP), pipelines(depth)),
        st.builds(lambda ts, p: S.Assign(tuple(ts), p, SP), st.lists(names, min_size=1, max_size=2),
                  pipelines(depth)),
        st.builds(lambda n, p: S.Output(n, p, SP), names, st.none() | pipelines(depth)),
        st.builds(lambda n, e: S.Input(n, e, SP), names, exprs(2)),
        st.builds(lambda n, e: S.Let(n, e, SP), names, exprs(3)),
        st.builds(lambda o, s, a: S.Init(o, s, tuple(a), SP), names, names, args),
    )
    if depth == 0:
        return simple
    body = st.lists(statements(depth - 1), max_size=3).map(tuple)
    return st.one_of(
        simple,
        st.builds(lambda v, a, b, bd: S.For(v, a, b, bd, SP), names, exprs(2), st.none() | exprs(2), body),
        st.builds(lambda c, t, e: S.If(c, t, e, SP), exprs(2), body, st.none() | body),
    )


params = st.lists(st.builds(lambda n, d: S.Param(n, d, SP), names, st.none() | exprs(2)), max_size=4)
items = st.one_of(
    st.builds(lambda p: S.Import(p, SP), st.from_regex(r"[a-z/.]{1,12}", fullmatch=True)),
    st.builds(lambda n, e: S.Let(n, e, SP), names, exprs(3)),
    st.builds(lambda n, p, b: S.BlockDef(n, tuple(p), tuple(b), SP), names, params,
              st.lists(statements(), max_size=4)),
    st.builds(lambda n, p, b: S.NetworkDef(n, tuple(p), tuple(b), SP), names, params,
              st.lists(statements(), max_size=4)),
    st.builds(lambda n, t, a: S.NetworkDef(n, (), (), SP, t, tuple(a)), names, names, args),
)
programs = st.lists(items, max_size=4).map(lambda xs: S.Program("<gen>", list(xs)))


def _generated(prog):
    text = format_program(prog)
    assert strip_spans(P.parse(text)) == strip_spans(prog), text
    assert format_source(text) == text


def _generated_with_comment(prog, data):
    text = format_program(prog)
    toks = tokens(text)
    if not toks:
        return
    # a comment after a random token, either trailing on its line or on a line of its own
    cut = data.draw(st.sampled_from(toks))
    end = cut.pos + len(cut.text)
    own = data.draw(st.booleans())
    check(text[:end] + ("\n# own\n" if own else "  # trailing\n") + text[end:])


test_generated_programs_print_and_parse_back_to_the_same_ast = FAST(given(programs)(_generated))
test_generated_programs_with_comments = FAST(given(programs, st.data())(_generated_with_comment))
test_generated_programs_fuzz = pytest.mark.fuzz(LONG(given(programs)(_generated)))
test_generated_programs_with_comments_fuzz = pytest.mark.fuzz(LONG(given(programs, st.data())(_generated_with_comment)))


# ------------------------------------------------------------------------------- comments


def test_comments_are_kept_in_place():
    src = """# header

let a = 1   # one
block b(x) {  # opens
    # leading
    in -> conv(x, 3) -> relu   # trailing

    # after a blank line
    relu
    # closing
}
# the end
"""
    out = check(src)
    assert out == src.replace("let a = 1   # one\n", "let a = 1   # one\n\n")  # definitions get a blank line


def test_hash_in_a_string_is_not_a_comment():
    out = check('network n() {\n    input x: [1, 4, 4]\n    x -> "a#b": relu  # real\n}\n')
    assert '"a#b": relu' in out and [c.text for c in comments(out)] == ["# real"]


def test_comment_inside_a_container_keeps_it_multi_line():
    src = "network n() {\n    input x: [1, 4, 4]\n    x -> add {\n        relu  # left\n      | identity\n    }\n}\n"
    assert check(src) == src


# ------------------------------------------------------------------------------- layout


def test_canonical_spacing():
    out = format_source("block b(out,stride=1){conv(out,3,stride=stride,pad=(1,1))*2->relu}\n"
                        "let  k=-(1+2)*3**-1\n")
    assert "block b(out, stride = 1) {" in out
    assert "conv(out, 3, stride=stride, pad=(1, 1)) * 2 -> relu" in out
    assert "let k = -(1 + 2) * 3 ** -1" in out


def test_long_pipelines_break_before_arrows_aligned_under_the_first():
    stages = " -> ".join(f"conv{i}: conv({i}, 3, pad=1)" for i in range(1, 9))
    out = format_source(f"network n() {{ input image: [3, 8, 8]\n image -> {stages} }}")
    lines = out.splitlines()
    body = [line for line in lines if "->" in line]
    assert len(body) > 1 and all(len(line) <= 100 for line in lines)
    arrow = body[0].index("->")
    assert all(line.index("->") == arrow for line in body[1:])


def test_long_branches_go_one_per_line():
    branch = " | ".join(f"conv({c}, 1) -> bn -> relu -> conv({c}, 3, pad=1)" for c in (8, 16, 24))
    out = format_source(f"block b() {{ concat {{ {branch} }} }}")
    assert out.splitlines()[1:5] == [
        "    concat {",
        "        conv(8, 1) -> bn -> relu -> conv(8, 3, pad=1)",
        "      | conv(16, 1) -> bn -> relu -> conv(16, 3, pad=1)",
        "      | conv(24, 1) -> bn -> relu -> conv(24, 3, pad=1)",
    ]


def test_minimal_parentheses_keep_the_tree():
    for e in ["(a - b) - c", "a - (b - c)", "(a ** b) ** c", "a ** (b ** c)", "(-a) ** b", "-(a ** b)",
              "not (a and b)", "(not a) and b", "(a < b) == c", "(if a then b else c) + 1",
              "x[(1, 2)]", "(a + b).h", "-(-1)", "a // b * c", "a // (b * c)", '"q\\"uote\\\\"']:
        src = f"let v = {e}\n"
        assert same_ast(src, format_source(src)), e


# ------------------------------------------------------------------------------- command


def test_fmt_command_check_and_rewrite(tmp_path, capsys):
    good = tmp_path / "good.arch"
    good.write_text(format_source(EXAMPLES[0].read_text()))
    bad = tmp_path / "bad.arch"
    bad.write_text("network n(){input x:[1,4,4]\nx->relu}")
    assert main(["fmt", "--check", str(good), str(bad)]) == 1
    out = capsys.readouterr()
    assert str(bad) in out.out + out.err and str(good) not in out.out
    assert bad.read_text() == "network n(){input x:[1,4,4]\nx->relu}"  # --check writes nothing
    bad.chmod(0o644)
    assert main(["fmt", str(good), str(bad)]) == 0
    assert bad.stat().st_mode & 0o777 == 0o644
    assert bad.read_text() == "network n() {\n    input x: [1, 4, 4]\n    x -> relu\n}\n"
    assert main(["fmt", "--check", str(good), str(bad)]) == 0
    assert not [p for p in os.listdir(tmp_path) if p.endswith(".tmp")]


def test_fmt_command_reports_syntax_errors_and_leaves_the_file(tmp_path, capsys):
    broken = tmp_path / "broken.arch"
    broken.write_text("network n() { x -> }")
    assert main(["fmt", str(broken)]) == 1
    err = capsys.readouterr().err
    assert re.search(r"broken\.arch:1:\d+: error", err) and "Traceback" not in err
    assert broken.read_text() == "network n() { x -> }"


def test_examples_are_in_canonical_layout():
    from pathlib import Path

    from archdsl.tools.cli import main

    files = sorted(str(p) for p in (Path(__file__).resolve().parents[2] / "examples").glob("*.arch"))
    assert main(["fmt", "--check", *files]) == 0


def test_fmt_reads_files_as_check_does(tmp_path, capsys):
    """Not UTF-8, missing, or over the size limit: a diagnostic, never an internal error."""
    latin = tmp_path / "latin.arch"
    latin.write_bytes(b"network n() {\n    input x: [3, 8, 8]\n    x -> relu  # \xe9t\xe9\n}\n")
    big = tmp_path / "big.arch"
    big.write_text("#" * 2_000_000 + "\n")
    for path, message in ((latin, "is not UTF-8 text"), (tmp_path / "missing.arch", "no such file"),
                          (big, "source longer than")):
        assert main(["fmt", "--check", str(path)]) == 1
        err = capsys.readouterr().err
        assert message in err and "internal error" not in err, err
    assert main(["fmt", "--check", "--max-source-bytes", "3000000", str(big)]) == 0


def _fmt(args, capsys) -> tuple[int, str, str]:
    code = main(["fmt", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def test_fmt_diff_is_a_patch_and_writes_nothing(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    messy = "network n(){input x:[1,4,4]\nx->relu}"  # no newline at the end either
    Path("a.arch").write_text(messy)
    Path("b.arch").write_text(format_source(messy))  # already formatted
    Path("c.arch").write_text("block b{relu}\r\n\f# c\r\n")  # '\r' and '\f' are whitespace to the lexer
    code, out, err = _fmt(["--diff", "a.arch", "b.arch", "c.arch"], capsys)
    assert code == 1
    assert out.startswith("--- a.arch\n+++ a.arch\n@@ ") and "--- c.arch\n+++ c.arch\n" in out
    assert "b.arch" not in out and "would reformat a.arch" in err and "would reformat c.arch" in err
    assert "\\ No newline at end of file\n" in out
    assert Path("a.arch").read_text() == messy, "--diff writes nothing"
    if shutil.which("patch"):
        subprocess.run(["patch", "-p0", "--quiet"], input=out.encode(), check=True)
        for name in ("a.arch", "b.arch", "c.arch"):
            text = Path(name).read_bytes().decode()
            assert text == format_source(text), name
    assert _fmt(["--diff", "b.arch"], capsys) == (0, "", "")


def test_fmt_diff_with_check_and_with_errors(tmp_path, capsys):
    bad, broken = tmp_path / "bad.arch", tmp_path / "broken.arch"
    bad.write_text("block b{relu}\n")
    broken.write_text("network n() { x -> }\n")
    code, out, err = _fmt(["--diff", "--check", str(bad), str(broken)], capsys)
    assert code == 1 and out.startswith(f"--- {bad}\n") and "broken.arch:1:" in err
    assert "would reformat" not in out, "stdout is the diff alone"
    assert bad.read_text() == "block b{relu}\n"


# ------------------------------------------------------------------------------- definitions without ()


def test_definitions_without_parameters_may_leave_out_the_brackets(tmp_path, capsys):
    short = ("network small {\n    input x: [3, 8, 8]\n    x -> stem -> relu\n}\n\n"
             "block stem {\n    conv(4, 3, pad=1) -> bn\n}\n")
    canonical = short.replace("small {", "small() {").replace("stem {", "stem() {")
    assert same_ast(short, canonical)
    assert format_source(short) == canonical == format_source(canonical)
    path = tmp_path / "short.arch"
    path.write_text(short)
    assert main(["check", str(path)]) == 0, capsys.readouterr().err
    assert main(["fmt", str(path)]) == 0 and path.read_text() == canonical


def test_language_reference_example_of_the_short_form():
    """docs/language.md shows the canonical form (its examples are in fmt layout) and says the
    brackets may be left out; written without them, the example checks and formats back."""
    import archdsl

    doc = (ROOT / "docs" / "language.md").read_text(encoding="utf-8")
    block = next(b for b in re.findall(r"^```arch\n(.*?)^```", doc, re.S | re.M) if "# or: network small {" in b)
    short = re.sub(r"^(network|block) (\w+)\(\) \{", r"\1 \2 {  ", block, flags=re.M)  # comments keep their column
    assert short.count("() {") == 0 < block.count("() {")
    assert archdsl.loads(short).network() is not None
    assert format_source(short) == block
