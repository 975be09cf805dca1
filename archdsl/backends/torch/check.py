"""The allow-list for generated PyTorch source, checked on its AST before ``generate()`` returns.

Whatever an ``.arch`` file says, a generated module is a docstring, imports of torch (and math,
OrderedDict), classes deriving from ``nn.Module`` or ``nn.Sequential`` with ``__init__`` and
``forward``, and at most one alias ``MODEL = <a class of the file>``.  Inside the methods, names
are the method's own arguments and locals, the imported modules and the file's classes; calls go
to those, to submodules and to tensors' methods; no attribute starts with ``_`` (but
``super().__init__``).  User text may appear only in string constants, and string constants only
where the backend writes them: docstrings, module labels (``add_module``, ``getattr(self, ...)``,
``OrderedDict`` keys, ``get_submodule``, ``label == ...``) and keyword argument values.  Anything
else is a bug in archdsl: :class:`GeneratedCodeError`, and nothing is written.
"""
from __future__ import annotations

import ast
import math

ALLOWED_IMPORTS = {
    "from collections import OrderedDict", "import math", "import torch", "import torch.nn.functional as F",
    "from torch import nn",
}
GLOBALS = {"nn", "F", "torch", "math", "OrderedDict", "super", "getattr", "isinstance"}
CLASS_BASES = ({"nn.Module"}, {"nn.Sequential"})
# Every node type the backend emits inside a method; anything else (lambdas, comprehensions,
# f-strings, with, try, global, del, imports, nested definitions, walrus, ...) is refused.
NODES = {
    ast.arguments, ast.arg, ast.Assign, ast.AugAssign, ast.Return, ast.Expr, ast.For, ast.If, ast.Pass,
    ast.Call, ast.keyword, ast.Attribute, ast.Subscript, ast.Slice, ast.Name, ast.Constant, ast.Tuple, ast.List,
    ast.BinOp, ast.UnaryOp, ast.Compare, ast.Load, ast.Store, ast.Add, ast.Sub, ast.Mult, ast.Div, ast.FloorDiv,
    ast.Mod, ast.Pow, ast.USub, ast.Eq, ast.NotEq, ast.Is, ast.IsNot,
}
# Methods whose first argument is a module label or path.
LABEL_METHODS = {"add_module", "get_submodule", "rpartition"}


class GeneratedCodeError(Exception):
    """The generated source is outside the allow-list: a bug in archdsl, never the user's fault."""


def check_generated(source: str) -> ast.Module:
    """Check ``source`` against the allow-list; return its AST (to ``compile`` without a re-parse)."""
    try:
        tree = ast.parse(source)
    except SyntaxError as err:
        raise GeneratedCodeError(f"generated source does not parse: {err.msg} at line {err.lineno}") from None
    _Checker(tree).run()
    return tree


def _fail(node: ast.AST, what: str) -> None:
    raise GeneratedCodeError(f"line {getattr(node, 'lineno', '?')}: {what}: {ast.unparse(node)[:80]!r}")


def _docstring(body: list[ast.stmt]) -> ast.Constant | None:
    first = body[0] if body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return first.value
    return None


class _Checker:
    def __init__(self, tree: ast.Module):
        self.tree = tree
        self.classes = {n.name for n in tree.body if isinstance(n, ast.ClassDef)}
        self.strings: set[int] = set()  # ids of the string constants found where strings belong

    def run(self) -> None:
        body = self.tree.body
        doc = _docstring(body)
        if doc is not None:
            self.strings.add(id(doc))
            body = body[1:]
        for k, node in enumerate(body):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                if ast.unparse(node) not in ALLOWED_IMPORTS:
                    _fail(node, "import")
            elif isinstance(node, ast.ClassDef):
                self.check_class(node)
            elif not (k == len(body) - 1 and self.is_alias(node)):
                _fail(node, "module-level statement")

    def is_alias(self, node: ast.stmt) -> bool:
        return (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
                and node.targets[0].id not in self.classes | GLOBALS and isinstance(node.value, ast.Name)
                and node.value.id in self.classes)

    def check_class(self, cls: ast.ClassDef) -> None:
        if {ast.unparse(b) for b in cls.bases} not in CLASS_BASES or cls.keywords or cls.decorator_list:
            _fail(cls, "class header")
        body = cls.body
        doc = _docstring(body)
        if doc is not None:
            self.strings.add(id(doc))
            body = body[1:]
        for fn in body:
            if not (isinstance(fn, ast.FunctionDef) and fn.name in ("__init__", "forward")) or fn.decorator_list \
                    or fn.returns or fn.args.defaults or fn.args.vararg or fn.args.kwarg or fn.args.kwonlyargs:
                _fail(fn, "class member")
            self.check_function(fn)

    def check_function(self, fn: ast.FunctionDef) -> None:
        nodes = list(ast.walk(fn))  # breadth first: a call comes before its arguments
        local = {a.arg for a in fn.args.posonlyargs + fn.args.args}
        local.update(n.id for n in nodes if type(n) is ast.Name and type(n.ctx) is ast.Store)
        if local & (GLOBALS | self.classes):
            _fail(fn, f"local shadows a global ({', '.join(sorted(local & (GLOBALS | self.classes)))})")
        names = local | GLOBALS | self.classes
        for node in nodes[1:]:
            kind = type(node)
            if kind not in NODES:
                _fail(node, f"{kind.__name__} node")
            elif kind is ast.Name:
                if node.id not in names:
                    _fail(node, f"name {node.id!r}")
            elif kind is ast.Attribute:
                if node.attr.startswith("_") and not (node.attr == "__init__" and _is_super(node.value)):
                    _fail(node, f"attribute {node.attr!r}")
            elif kind is ast.Call:
                self.check_call(node)
            elif kind is ast.Constant:
                self.check_constant(node)
            elif kind is ast.Expr:
                if not isinstance(node.value, ast.Call):
                    _fail(node, "expression statement")
            elif kind is ast.Compare:  # label == 'conv1' in an init loop
                if isinstance(node.left, ast.Name) and node.left.id == "label":
                    self.strings.update(id(c) for c in node.comparators)

    def check_call(self, call: ast.Call) -> None:
        func = call.func
        if isinstance(func, ast.Name) and func.id == "getattr":
            if len(call.args) != 2 or not (isinstance(call.args[0], ast.Name) and call.args[0].id == "self") \
                    or not _is_str(call.args[1]) or call.args[1].value.startswith("_"):
                _fail(call, "getattr other than of a submodule")
            self.strings.add(id(call.args[1]))
        elif isinstance(func, ast.Name) and func.id == "OrderedDict":  # OrderedDict([(label, module), ...])
            for item in (call.args[0].elts if call.args and isinstance(call.args[0], ast.List) else []):
                if isinstance(item, ast.Tuple) and len(item.elts) == 2:
                    self.strings.add(id(item.elts[0]))
        elif isinstance(func, ast.Attribute) and func.attr in LABEL_METHODS and call.args:
            self.strings.add(id(call.args[0]))
        self.strings.update(id(k.value) for k in call.keywords)
        if any(k.arg is None for k in call.keywords):
            _fail(call, "** argument")

    def check_constant(self, node: ast.Constant) -> None:
        value = node.value
        if isinstance(value, str):
            if id(node) not in self.strings:
                _fail(node, "string constant outside a docstring, label or keyword value")
        elif isinstance(value, float):
            if not math.isfinite(value):
                _fail(node, "non-finite number")
        elif not (value is None or isinstance(value, (bool, int))):
            _fail(node, f"{type(value).__name__} constant")


def _is_str(node: ast.AST) -> bool:
    return isinstance(node, ast.Constant) and isinstance(node.value, str)


def _is_super(node: ast.AST) -> bool:
    return isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "super" \
        and not node.args and not node.keywords
