"""The elaborator walks the AST with a visitor: every statement and stage class has its method."""
from __future__ import annotations

import typing

import pytest

import archdsl
from archdsl.errors import ArchError, Span
from archdsl.front.elaborate import Elaborator
from archdsl.front.loader import Module
from archdsl.lang import ast as S

STATEMENTS = typing.get_args(S.Stmt)
STAGE_CORES = typing.get_args(typing.get_type_hints(S.Stage)["core"])


@pytest.mark.parametrize("cls", [*STATEMENTS, *STAGE_CORES], ids=lambda c: c.__name__)
def test_every_ast_class_has_a_visit_method(cls):
    assert callable(getattr(Elaborator, f"visit_{cls.__name__}", None)), \
        f"Elaborator has no visit_{cls.__name__}: {cls.__name__} statements would not be elaborated"


def test_the_classes_are_the_grammar_s():
    assert {c.__name__ for c in STATEMENTS} == {"Input", "Output", "Assign", "PipeStmt", "Let", "For", "If", "Init"}
    assert {c.__name__ for c in STAGE_CORES} == {"Call", "InRef", "Container"}


def test_a_class_without_a_method_is_named():
    class Repeat:  # a statement the grammar might grow
        span = Span("x.arch", 3, 5)

    with pytest.raises(ArchError, match="unsupported statement Repeat"):
        Elaborator(Module("x.arch"), archdsl.errors.Diagnostics()).visit(Repeat(), None, None)


def test_every_statement_kind_elaborates():
    text = """block b(c) {
    init conv: kaiming_normal(mode="fan_out")
    in -> conv(c, 1)
}
network n(k = 2) {
    input x: [4, 8, 8]
    let m = k * 2
    y = x -> b(4) -> seq { relu }
    for i in 1..k {
        y -> identity
    }
    if m > 1 {
        y -> add { identity | relu }
    }
    output out = y -> relu
}
"""
    net = archdsl.loads(text).network("n")
    assert not net.diagnostics.errors
    assert [n.op for n in net.nodes] == ["input", "conv", "relu", "identity", "identity",  # b(4), seq, the loop
                                         "identity", "relu", "add", "relu"]  # the if, the output
