"""Fuzzing (issue 8): mutated zoo files and generated programs never crash and never hang.

Every outcome is a success (summary and generated PyTorch source pass the code allow-list of
``codecheck.py``) or an :class:`archdsl.ArchError` whose diagnostics point into the file.  The
default run is seeded and small; ``pytest -m fuzz`` (or ``bench/fuzz_long.py``, which runs the
same strategies in parallel and counts the outcomes) is the long run recorded in
docs/robustness.md.
"""
from __future__ import annotations

import os
import re
import signal
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

import archdsl
from archdsl import ArchError
from archdsl.backends.torch import generate
from archdsl.tools.cli import main
from codecheck import check_generated

ROOT = Path(__file__).resolve().parents[2]
CORPUS = {p.name: p.read_text() for p in sorted((ROOT / "examples").glob("*.arch"))}
CASE_SECONDS = 30  # a case that runs longer is a hang
# The torch backend's forward() is quadratic in the nodes of one scope (docs/robustness.md):
# generate code only for graphs of this size, so that a huge but legal mutation stays a quick case.
GENERATE_MAX_NODES = 2000
STATS: Counter = Counter()  # outcome counts, read by bench/fuzz_long.py

LONG = int(os.environ.get("ARCHDSL_FUZZ_EXAMPLES", "10000"))
LONG_SEED = int(os.environ.get("ARCHDSL_FUZZ_SEED", "0"))
_HEALTH = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
           HealthCheck.large_base_example]
QUICK = settings(derandomize=True, database=None, deadline=None, max_examples=120, suppress_health_check=_HEALTH,
                 print_blob=True)
SLOW = settings(derandomize=False, database=None, deadline=None, max_examples=LONG, suppress_health_check=_HEALTH,
                print_blob=True)


# ============================================================================== running one case


class Hang(AssertionError):
    pass


@contextmanager
def time_limit(seconds: float):
    def alarm(signum, frame):
        raise Hang(f"no result after {seconds}s")

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


def check_error(err: ArchError, text: str, file: str) -> None:
    """A diagnostic, not a crash: every error points at a line of the file (or of an import)."""
    assert err.diagnostics, "an ArchError without diagnostics"
    for d in err.diagnostics:
        assert d.severity in ("error", "warning", "note") and d.message
        assert d.span.line >= 1, f"no position: {d.render()}"
        if d.span.file == file:
            assert d.span.line <= text.count("\n") + 1, f"position past the end: {d.render()}"
        d.render({file: text})  # carets under any text, however odd
    assert str(err)


def check_text(text: str, file: str = "fuzz.arch", networks: int | None = 3) -> str:
    """Load, elaborate (the first ``networks``), summarise and generate; return the outcome."""
    start = time.perf_counter()
    with time_limit(CASE_SECONDS):
        outcome = _check(text, file, networks)
    STATS[outcome] += 1
    STATS["cases"] += 1
    STATS["max_ms"] = max(STATS["max_ms"], int(1000 * (time.perf_counter() - start)))
    return outcome


def _check(text: str, file: str, networks: int | None) -> str:
    try:
        arch = archdsl.loads(text, file)
    except ArchError as err:
        check_error(err, text, file)
        return "load error"
    names = arch.networks[:networks]
    ok = 0
    for name in names:
        try:
            net = arch.network(name)
        except ArchError as err:
            check_error(err, text, file)
            continue
        totals = net.summary().totals
        assert totals["params"] >= 0 and totals["nodes"] == len(net.graph)
        if len(net.graph) <= GENERATE_MAX_NODES:
            check_generated(generate(net))
        ok += 1
    if not names:
        return "no network"
    return "ok" if ok == len(names) else ("some ok" if ok else "network error")


# ============================================================================== mutations of the zoo

TOKEN = re.compile(r'"(?:[^"\\\n]|\\.)*"|#[^\n]*|\d+(?:\.\d+)?(?:[eE][+-]?\d+)?|[A-Za-z_]\w*'
                   r"|->|\*\*|//|==|!=|<=|>=|\.\.|\s+|.", re.S)
VOCAB = ["network", "block", "input", "output", "let", "for", "in", "if", "else", "then", "import", "init",
         "seq", "add", "concat", "mul", "identity", "conv", "relu", "linear", "flatten", "maxpool", "bn",
         "x", "in.channels", "x.h", "true", "not", "and", "{", "}", "(", ")", "[", "]", "->", "|", ",", ":",
         "=", "*", "**", "//", "..", ";", '"layer{i}"', '"{', '"', "#", "\\", "-", "%", "1..3", "in -> ",
         "\n", "conv(8, 3, pad=1)", "add { identity | relu }", "x -> ", "output o = x", "input y: [3, 8, 8]"]
HUGE = ["0", "-1", "1", "3", "16777216", "16777217", "2147483648", "4611686018427387904", "9223372036854775808",
        "1" + "0" * 30, "9" * 5000, "1e308", "1e999", "1e-999", "0.0", "0.5", "(2 ** 62)", "(2 ** 62 + 1)",
        "(10 ** 18)", "(1 / 0)", "(0 - 1)", "100000", "49999", "(2 ** 24)"]
NASTY = ["\x00", "\x1b[2J", "\u202e", "\ufeff", "\u2028", "ｃｏｎｖ", "\r", "\t", "é", "\U0001f642", '"""', "'''",
         "\\x", "\\N{", "__import__('os')", '";import os;"', "\x7f", "\ud800", "\\u", "{{", "}}"]
OPENERS = [("(", ")"), ("[", "]"), ("seq { ", " }"), ("add { identity | ", " }"), ("if true { ", " }"),
           ("{", "}"), ("-", ""), ("not ", ""), ("1 + ", "")]
MUTATIONS = ["delete", "duplicate", "swap", "insert", "number", "name", "bytes", "truncate", "nest", "repeat"]


def tokens(text: str) -> list[str]:
    return TOKEN.findall(text)


@st.composite
def mutated(draw) -> str:
    toks = tokens(draw(st.sampled_from(sorted(CORPUS.values()))))
    for _ in range(draw(st.integers(1, 4))):
        if not toks:
            break
        i = draw(st.integers(0, len(toks) - 1))
        kind = draw(st.sampled_from(MUTATIONS))
        if kind == "delete":
            del toks[i:i + draw(st.integers(1, 3))]
        elif kind == "duplicate":
            toks[i:i] = toks[i:i + draw(st.integers(1, 8))] * draw(st.integers(1, 3))
        elif kind == "swap":
            j = draw(st.integers(0, len(toks) - 1))
            toks[i], toks[j] = toks[j], toks[i]
        elif kind == "insert":
            toks.insert(i, " " + draw(st.sampled_from(VOCAB)) + " ")
        elif kind == "number":
            numbers = [k for k, t in enumerate(toks) if t[:1].isdigit()]
            if numbers:
                toks[draw(st.sampled_from(numbers))] = draw(st.sampled_from(HUGE))
        elif kind == "name":
            names = [k for k, t in enumerate(toks) if t[:1].isalpha() or t[:1] == "_"]
            if names:
                toks[draw(st.sampled_from(names))] = draw(st.sampled_from([toks[k] for k in names] + VOCAB))
        elif kind == "bytes":
            toks.insert(i, draw(st.one_of(st.sampled_from(NASTY), st.text(max_size=6))))
        elif kind == "truncate":
            del toks[i:]
        elif kind == "nest":
            j = draw(st.integers(i, min(len(toks), i + 40)))
            left, right = draw(st.sampled_from(OPENERS))
            n = draw(st.sampled_from([1, 2, 5, 63, 64, 65, 101, 300]))
            toks[i:j] = [left * n, *toks[i:j], right * n]
        elif kind == "repeat":
            toks.insert(i, f" * {draw(st.sampled_from(HUGE))} ")
    return "".join(toks)


# ============================================================================== programs from the grammar


def _grammar_programs() -> st.SearchStrategy[str]:
    """Strings of the grammar (hypothesis.extra.lark), with names and numbers drawn so that some
    of them get past name resolution, and spaces around every token so that none merge."""
    from hypothesis.extra.lark import from_lark
    from lark import Lark

    from archdsl.lang.parser import _grammar_text

    grammar = Lark(_grammar_text(), parser="lalr", start="start")
    terminals, _, _ = grammar.grammar.compile(["start"], ())
    names = st.sampled_from(["x", "y", "image", "out", "c", "i", "n", "b", "basic", "conv", "relu", "bn", "linear",
                             "flatten", "maxpool", "identity", "seq", "add", "concat", "channels", "h", "w",
                             "kaiming_normal", "std", "stride", "pad", "max", "len", "make_divisible"])
    explicit = {}
    for t in terminals:
        if t.name == "NAME":
            s = st.one_of(names, st.from_regex(r"[A-Za-z_][A-Za-z_0-9]{0,6}", fullmatch=True))
        elif t.name == "NUMBER_INT":
            s = st.one_of(st.sampled_from(["1", "2", "3", "8", "16", "32"]), st.sampled_from(HUGE[:10]))
        elif t.name == "NUMBER_FLOAT":
            s = st.sampled_from(["0.5", "1.0", "1e-5", "1e999", "2.5e3"])
        elif t.name == "STRING":
            s = st.sampled_from(['"layer{i}"', '"fan_out"', '"relu"', '"a"', '""', '"{"', '"\\x"', '"a b"',
                                 '"__init__"', '"x.y"', '"\\"\\"\\""', '"' + "ｃ" * 3 + '"', '"l{1 // 0}"'])
        elif t.name == "COMMENT":
            s = st.just("# c\n")
        elif t.pattern.type == "str":
            s = st.just(t.pattern.value)
        else:
            s = st.from_regex(t.pattern.to_regexp(), fullmatch=True).filter(lambda v: v.strip() == v or not v.strip())
        explicit[t.name] = s.map(lambda v: f" {v} ")
    return from_lark(grammar, start="start", explicit=explicit)


GRAMMAR = _grammar_programs()


# ============================================================================== plausible programs

OPS = ["relu", "bn", "identity", "flatten", "sigmoid", "dropout(0.5)", "maxpool(2)", "avgpool(2, stride=1)",
       "adaptive_avgpool(1)", "conv({c}, {k}, pad={p})", "conv({c}, {k}, stride={s})", "conv({c}, 1, groups={g})",
       "conv_transpose({c}, 2, stride=2)", "linear({c})", "upsample({s})", "softmax", "chunk(2)",
       "channel_shuffle({g})", "group_norm({g})", "layer_norm", "pad({p})", "reshape((-1,))", "leaky_relu(0.1)",
       "lrn(3)", "crop({k})", "gelu", "hardswish"]
LABELS = ["conv1", "layer{i}", "class", "def", "import", "x", "self", "super", "os", "print", "nn", "F", "torch",
          "ｃｏｎｖ", "a'b", 'a\\"b', "a\\\\b", "0", "1", "features", "MODEL", "None", "__x", "to", "a.b", "é"]


@st.composite
def plausible(draw) -> str:
    """A network of random but mostly well-formed stages: many reach the code generator."""
    ints = st.sampled_from([0, 1, 2, 3, 4, 8, 16])

    def stage(depth: int) -> str:
        kind = draw(st.sampled_from(["op"] * 6 + ["block", "add", "concat", "seq", "for"] if depth < 3 else ["op"]))
        if kind == "op":
            text = draw(st.sampled_from(OPS)).format(c=draw(ints), k=draw(ints), p=draw(ints), s=draw(ints),
                                                     g=draw(ints))
        elif kind == "block":
            text = f"b({draw(ints)})"
        elif kind in ("add", "concat"):
            branches = [pipe(depth + 1) for _ in range(draw(st.integers(1, 3)))]
            text = f"{kind} {{ {' | '.join(branches)} }}"
        elif kind == "seq":
            text = f"seq {{ {pipe(depth + 1)} }}"
        else:
            return f"seq {{ for i in 1..{draw(ints)} {{ {pipe(depth + 1)} }} }}"
        if draw(st.booleans()):
            label = draw(st.sampled_from(LABELS))
            bare = label.isascii() and label.isidentifier() and draw(st.booleans())
            text = f"{label}: {text}" if bare else f'"{label}": {text}'
        if draw(st.integers(0, 9)) == 0:
            text += f" * {draw(ints)}"
        return text

    def pipe(depth: int) -> str:
        return " -> ".join(stage(depth) for _ in range(draw(st.integers(0 if depth else 1, 4))))

    c, h = draw(st.sampled_from([1, 3, 4, 8])), draw(st.sampled_from([1, 2, 7, 8, 16, "H"]))
    block = f"block b(c = 4) {{ {pipe(1) or 'identity'} -> conv(c, 1) }}\n"
    return f"{block}network n(H = 8) {{\n    input x: [{c}, {h}, {h}]\n    x -> {pipe(0)}\n}}\n"


# ============================================================================== the default (seeded) run


@QUICK
@given(mutated())
def test_mutated_examples(text):
    check_text(text)


@settings(QUICK, max_examples=40)
@given(GRAMMAR)
def test_grammar_programs(text):
    check_text(text)


@settings(QUICK, max_examples=100)
@given(plausible())
def test_plausible_programs(text):
    check_text(text)


@settings(QUICK, max_examples=20)
@given(st.sampled_from(sorted(CORPUS)), st.binary(max_size=64), st.integers(0, 10_000))
def test_random_bytes_in_files(name, junk, at):
    """Bytes, not text: invalid UTF-8 and NULs through load() and the CLI."""
    import tempfile

    data = CORPUS[name].encode()
    data = data[:at] + junk + data[at:]
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / name
        path.write_bytes(data)
        with time_limit(CASE_SECONDS):
            try:
                arch = archdsl.load(path)
                for net_name in arch.networks[:2]:
                    try:
                        arch.network(net_name)
                    except ArchError as err:
                        check_error(err, data.decode("utf-8", "replace"), str(path))
            except ArchError as err:
                assert err.span.line >= 0  # a file that is not UTF-8 has no line to point at
            out = Path(tmp) / "out.py"
            for args in (["check", str(path)], ["compile", str(path), "-o", str(out)],
                         ["summary", str(path), "--json"]):
                assert main(args) in (0, 1), args


@settings(QUICK, max_examples=25)
@given(mutated())
def test_cli_on_mutated_examples(text):
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "m.arch"
        path.write_text(text, encoding="utf-8", errors="surrogatepass")
        out = Path(tmp) / "out.py"
        out.write_text("old")
        with time_limit(CASE_SECONDS):
            for args in (["check", str(path)], ["check", "--json", str(path)], ["compile", str(path), "-o", str(out)],
                         ["summary", str(path)], ["check", str(path), "--strict", "--max-nodes", "500"]):
                code = main(args)
                assert code in (0, 1, 2), (args, code)
            if out.read_text() != "old":
                check_generated(out.read_text())


def test_the_examples_themselves():
    for name, text in CORPUS.items():
        assert check_text(text, name, networks=None) == "ok", name


# ============================================================================== the long run (pytest -m fuzz)


@pytest.mark.fuzz
@seed(LONG_SEED)
@SLOW
@given(mutated())
def test_long_mutated_examples(text):
    check_text(text)


@pytest.mark.fuzz
@seed(LONG_SEED)
@settings(SLOW, max_examples=LONG // 2)
@given(GRAMMAR)
def test_long_grammar_programs(text):
    check_text(text)


@pytest.mark.fuzz
@seed(LONG_SEED)
@settings(SLOW, max_examples=LONG // 2)
@given(plausible())
def test_long_plausible_programs(text):
    check_text(text)
