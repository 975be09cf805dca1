"""Dispatch on AST classes: ``visit(node, *args)`` calls ``visit_<ClassName>(node, *args)``.

After pycparser's ``c_ast.NodeVisitor``, so each job that walks the AST (loading a file, the
elaboration walk) is one class with a method per node kind instead of an ``isinstance`` ladder.
The method is looked up once per visitor class and node class: dispatch costs one dict lookup.
"""
from __future__ import annotations

from typing import Any


class NodeVisitor:
    _methods: dict[type, Any] = {}

    def __init_subclass__(cls, **kw: Any) -> None:
        super().__init_subclass__(**kw)
        cls._methods = {}

    def visit(self, node: Any, *args: Any) -> Any:
        try:
            method = self._methods[type(node)]
        except KeyError:
            method = self._methods[type(node)] = getattr(type(self), "visit_" + type(node).__name__,
                                                         type(self).generic_visit)
        return method(self, node, *args)

    def generic_visit(self, node: Any, *args: Any) -> Any:
        """A node kind without a ``visit_`` method: a bug in the visitor, not in the program."""
        raise NotImplementedError(f"{type(self).__name__} has no visit_{type(node).__name__}")
