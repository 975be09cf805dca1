"""Every diagnostic, exercised by a deliberately broken file with a golden expected message.

Regenerate the goldens with ``ARCHDSL_REGEN=1 python -m pytest tests/front/test_diagnostics.py`` and
review the diff.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from archdsl.tools.cli import main

ROOT = Path(__file__).resolve().parents[2]
BROKEN = sorted((ROOT / "tests" / "broken").glob("*.arch"))
CASES = [(p, []) for p in BROKEN] + [(ROOT / "tests" / "broken" / "uneven_tiling.arch", ["--strict"])]


def _run(args, capsys):
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        code = main(args)
    finally:
        os.chdir(cwd)
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.mark.parametrize("path,extra", CASES, ids=[p.stem + ("-strict" if e else "") for p, e in CASES])
def test_broken_file_golden(path, extra, capsys):
    rel = path.relative_to(ROOT).as_posix()
    code, out, err = _run(["check", rel, *extra], capsys)
    got = f"{err}exit: {code}\n"
    golden = path.with_suffix(".strict.expected" if extra else ".expected")
    if os.environ.get("ARCHDSL_REGEN"):
        golden.write_text(got)
    assert golden.exists(), f"missing golden {golden.name}; run with ARCHDSL_REGEN=1"
    assert got == golden.read_text()
    assert "Traceback" not in err
    if path.stem != "uneven_tiling" or extra:
        assert code == 1
        assert f"{rel}:" in err or "import_cycle" in rel, "a diagnostic names the file"
        assert "^" in err, "a caret points at the source"


def test_several_independent_errors_are_all_reported(capsys):
    code, _, err = _run(["check", "tests/broken/several_errors.arch"], capsys)
    assert code == 1
    assert err.count(": error:") == 2  # line 6 is fine; lines 4 and 5 are both reported


def test_json_diagnostics(capsys):
    code, out, _ = _run(["check", "--json", "tests/broken/unknown_op.arch"], capsys)
    data = json.loads(out)
    assert code == 1 and data["ok"] is False
    d = data["diagnostics"][0]
    assert (d["severity"], d["line"], d["column"]) == ("error", 3, 33)
    assert d["hint"] == "did you mean 'maxpool'?"


def test_usage_error_exits_2():
    r = subprocess.run([sys.executable, "-m", "archdsl", "check"], capture_output=True, text=True)
    assert r.returncode == 2 and "Traceback" not in r.stderr


def test_missing_file_is_a_diagnostic(capsys):
    code, _, err = _run(["check", "no/such/file.arch"], capsys)
    assert code == 1 and "no such file" in err and "Traceback" not in err
