"""The parser keeps no state between parses: each has its own AST builder (the file its spans
name) and its own bracket count, so parses in threads do not need a lock."""
from __future__ import annotations

import threading

import pytest

from archdsl.errors import ArchError
from archdsl.lang import ast as A
from archdsl.lang.parser import MAX_NESTING, parse


def _files(node, out):
    span = getattr(node, "span", None)
    if span is not None:
        out.add(span.file)
    for child in A.children(node):
        _files(child, out)
    return out


def test_parses_in_threads_keep_their_own_file_names():
    text = "network n() {\n    input x: [3, 8, 8]\n" + "    x -> conv(8, 3, pad=(1, 1)) -> relu\n" * 200 + "}\n"
    results, errors = {}, []

    def work(k):
        try:
            for _ in range(5):
                prog = parse(text, f"f{k}.arch")
                results[k] = _files(prog.items[0], set())
        except Exception as err:  # noqa: BLE001 - reported below
            errors.append(err)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert results == {k: {f"f{k}.arch"} for k in range(4)}


def test_the_bracket_count_starts_afresh_for_each_parse():
    deep = "let v = " + "(" * (MAX_NESTING + 1) + "1" + ")" * (MAX_NESTING + 1) + "\n"
    with pytest.raises(ArchError, match="brackets nested deeper"):
        parse(deep, "deep.arch")
    ok = "let v = " + "(" * MAX_NESTING + "1" + ")" * MAX_NESTING + "\n"
    assert parse(ok, "ok.arch").items[0].value.value == 1
