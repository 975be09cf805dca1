"""What generated PyTorch source may contain: a structural allow-list checked on its AST.

Used by the injection tests (test_robustness.py) and the fuzzer (test_fuzz.py): whatever the
``.arch`` file says, the generated module is imports of torch, classes with ``__init__`` and
``forward``, and calls of nn.*, F.*, torch.*, submodules, tensors' methods and its own classes.
Text from the ``.arch`` file may appear only inside string literals.
"""
from __future__ import annotations

import ast

ALLOWED_IMPORTS = {
    "from collections import OrderedDict", "import torch", "import torch.nn.functional as F", "from torch import nn",
}
CALLABLE_NAMES = {"super", "getattr", "OrderedDict", "isinstance"}
CALL_ROOTS = {"nn", "F", "torch", "self", "m"}
FORBIDDEN_NAMES = {"__import__", "eval", "exec", "open", "compile", "globals", "locals", "vars", "os", "sys",
                   "subprocess", "builtins", "__builtins__", "input", "breakpoint", "setattr", "delattr", "print"}
FUNCTION_STATEMENTS = (ast.Assign, ast.AugAssign, ast.Return, ast.Expr, ast.For, ast.If)


def check_generated(source: str) -> ast.Module:
    """Assert that ``source`` has only the shape archdsl emits; return its AST."""
    tree = ast.parse(source)
    classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
    for i, node in enumerate(tree.body):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            assert ast.unparse(node) in ALLOWED_IMPORTS, ast.unparse(node)
        elif isinstance(node, ast.Expr):
            assert i == 0 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str), \
                f"module-level expression: {ast.unparse(node)[:80]}"
        elif isinstance(node, ast.Assign):
            assert ast.unparse(node) in {f"MODEL = {c}" for c in classes}, ast.unparse(node)[:80]
        else:
            assert isinstance(node, ast.ClassDef), f"module-level {type(node).__name__}: {ast.unparse(node)[:80]}"
            _check_class(node, classes)
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            assert node.id not in FORBIDDEN_NAMES, f"name {node.id!r} in generated code"
        elif isinstance(node, ast.Attribute):
            assert not node.attr.startswith("_") or node.attr == "__init__", f"attribute {node.attr!r}"
        elif isinstance(node, (ast.Lambda, ast.Starred, ast.NamedExpr, ast.Await, ast.Yield, ast.YieldFrom)):
            raise AssertionError(f"{type(node).__name__} in generated code")
    return tree


def _check_class(cls: ast.ClassDef, classes: set[str]) -> None:
    assert [ast.unparse(b) for b in cls.bases] in (["nn.Module"], ["nn.Sequential"]), ast.unparse(cls)[:80]
    assert not cls.decorator_list and not cls.keywords
    for j, item in enumerate(cls.body):
        if isinstance(item, ast.Expr):
            assert j == 0 and isinstance(item.value, ast.Constant), f"class-level {ast.unparse(item)[:80]}"
            continue
        assert isinstance(item, ast.FunctionDef) and item.name in ("__init__", "forward"), \
            f"class-level {ast.unparse(item)[:80]}"
        assert not item.decorator_list
        local = {a.arg for a in item.args.args}
        for node in ast.walk(item):
            if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                local.add(node.id)
        for stmt in item.body:
            _check_statements(stmt, local, classes)


def _check_statements(stmt: ast.stmt, local: set[str], classes: set[str]) -> None:
    assert isinstance(stmt, FUNCTION_STATEMENTS), f"{type(stmt).__name__}: {ast.unparse(stmt)[:80]}"
    for node in ast.walk(stmt):
        if isinstance(node, ast.stmt) and node is not stmt:
            assert isinstance(node, FUNCTION_STATEMENTS), f"{type(node).__name__}: {ast.unparse(node)[:80]}"
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name):
                assert func.id in CALLABLE_NAMES | classes, f"call of {func.id!r}"
                continue
            root = func
            while isinstance(root, ast.Attribute):
                root = root.value
            if isinstance(root, ast.Call):  # super().__init__(...), x.unflatten(...).transpose(...)
                continue
            assert isinstance(root, ast.Name) and root.id in CALL_ROOTS | local, \
                f"call of {ast.unparse(func)[:80]!r}"
