"""The op reference, printed from the op registry itself: ``archdsl ops [NAME]``, ``docs/ops.md``
and the op names of the TextMate grammar in ``editors/vscode``.

Regenerate after changing an op (a test fails while a generated file is stale)::

    python -m archdsl.tools.docs            # writes docs/ops.md and editors/vscode/syntaxes/arch.tmLanguage.json
    python -m archdsl.tools.docs --check    # exit 1 if either is out of date
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import ops
from ..ops import REQUIRED, Attr, OpSpec

FAMILIES = {  # family -> heading, in reading order
    "conv": "Convolutions and linear layers",
    "pool": "Pooling",
    "norm": "Normalisation and dropout",
    "act": "Activations",
    "merge": "Merges",
    "shape": "Shape and resampling",
}

KINDS = {
    "int": "int", "float": "float", "number": "float", "bool": "bool", "str": "string", "axis": "int (axis)",
    "pair": "int or (h, w)", "pad": 'int, (h, w) or "same"', "ints": "tuple of ints",
}

def _checkout() -> Path:
    """The source checkout this package lives in (the folder with pyproject.toml above it): the
    generated files belong to the repository, not to an installed copy of the package."""
    for d in Path(__file__).resolve().parents:
        if (d / "pyproject.toml").is_file() and (d / "docs").is_dir():
            return d
    return Path.cwd()


DOCS_PATH = _checkout() / "docs" / "ops.md"


def op_names() -> list[str]:
    """Every op, grouped by family in :data:`FAMILIES` order, then in registration order."""
    order = list(FAMILIES)
    specs = sorted(ops.REGISTRY.values(), key=lambda s: order.index(s.family) if s.family in order else len(order))
    return [s.name for s in specs]


def value(v) -> str:
    """A default value as ``.arch`` source."""
    if v is REQUIRED:
        return "required"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return f'"{v}"'
    if isinstance(v, tuple):
        return "(" + ", ".join(value(x) for x in v) + ("," if len(v) == 1 else "") + ")"
    if v is None or callable(v):
        return "derived"
    return repr(v)


def signature(spec: OpSpec) -> str:
    """``conv(out, kernel, stride=1, ...)``; merges show both of their forms."""
    if spec.inputs == "many":
        kw = "".join(f", {a.name}={value(a.default)}" for a in spec.attrs)
        return f"{spec.name} {{ branch | branch ... }}    {spec.name}(a, b, ...{kw})"
    parts = []
    for a in spec.attrs:
        if a.default is REQUIRED:
            parts.append(a.name)
        elif a.default is None or callable(a.default):
            parts.append(f"[{a.name}]")
        else:
            parts.append(f"{a.name}={value(a.default)}")
    if not parts:
        return spec.name
    return f"{spec.name}({', '.join(parts)})"


def _attr_doc(a: Attr) -> str:
    text = a.doc
    if a.choices:
        text = (text + "; " if text else "") + "one of " + ", ".join(value(c) for c in a.choices)
    return text


def op_text(name: str | None = None) -> str:
    """The reference of one op, or of all of them, as plain text."""
    names = [name] if name else op_names()
    blocks = []
    for n in names:
        spec = ops.REGISTRY[n]
        lines = [signature(spec), f"    {spec.doc}"]
        if spec.attrs:
            width = max(len(a.name) for a in spec.attrs)
            kinds = max(len(KINDS.get(a.kind, a.kind)) for a in spec.attrs)
            for a in spec.attrs:
                doc = _attr_doc(a)
                lines.append(f"    {a.name:<{width}}  {KINDS.get(a.kind, a.kind):<{kinds}}  "
                             f"{value(a.default)}{'  ' + doc if doc else ''}".rstrip())
        if spec.rule:
            lines.append(f"    shape:   {spec.rule}")
        if spec.example:
            lines.append(f"    example: {spec.example}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks) + "\n"


def markdown() -> str:
    """``docs/ops.md``."""
    out = ["# Op reference", "",
           "<!-- generated from archdsl.ops.REGISTRY by `python -m archdsl.tools.docs`; do not edit -->", "",
           "Every op a pipeline stage can call. Positional arguments follow the order below; any argument",
           "can be given by name (`conv(64, 3, stride=2)`). Shapes leave out the batch dimension: an",
           "image is `[C, H, W]`, a feature vector `[F]`. `archdsl ops NAME` prints the same entry.", ""]
    by_family: dict[str, list[str]] = {}
    for n in op_names():
        by_family.setdefault(ops.REGISTRY[n].family, []).append(n)
    out.append("| family | ops |")
    out.append("|---|---|")
    for fam, names in by_family.items():
        out.append(f"| {FAMILIES.get(fam, fam)} | " + ", ".join(f"[`{n}`](#{n})" for n in names) + " |")
    out.append("")
    for fam, names in by_family.items():
        out += [f"## {FAMILIES.get(fam, fam)}", ""]
        for n in names:
            spec = ops.REGISTRY[n]
            out += [f"### {n}", "", "```", signature(spec), "```", "", spec.doc, ""]
            if spec.attrs:
                out += ["| argument | type | default | meaning |", "|---|---|---|---|"]
                for a in spec.attrs:
                    doc = _attr_doc(a).replace("|", "\\|")
                    out.append(f"| `{a.name}` | {KINDS.get(a.kind, a.kind).replace('|', '/')} | "
                               f"`{value(a.default)}` | {doc} |")
                out.append("")
            if spec.rule:
                out += [f"**Shape:** `{spec.rule}`", ""]
            if spec.example:
                out += ["```arch", spec.example, "```", ""]
    return "\n".join(out).rstrip("\n") + "\n"


def textmate() -> str:
    """``editors/vscode/syntaxes/arch.tmLanguage.json``: the TextMate grammar (VS Code, Sublime,
    GitHub's linguist), its op names taken from the registry like the Pygments lexer's."""
    import json

    from ..lang import lexicon as L
    from ..lang.expr import FUNCTIONS

    name = L.NAME
    ops_ = sorted(ops.REGISTRY, key=lambda n: (-len(n), n))
    repo = {
        "comment": {"name": "comment.line.number-sign.arch", "match": "#.*$"},
        "string": {"name": "string.quoted.double.arch", "begin": '"', "end": '"|$',
                   "patterns": [{"name": "constant.character.escape.arch", "match": r"\\."},
                                {"name": "meta.interpolation.arch", "match": r"\{[^{}\"]*\}"}]},
        "definition": {"match": rf"\b({'|'.join(L.DECLARATIONS)})\s+({name})",
                       "captures": {"1": {"name": "storage.type.arch"}, "2": {"name": "entity.name.function.arch"}}},
        "init": {"match": rf"\b(init)\s+({name})\s*(:)\s*({name})",
                 "captures": {"1": {"name": "keyword.control.arch"}, "2": {"name": "support.function.op.arch"},
                              "3": {"name": "punctuation.separator.arch"},
                              "4": {"name": "support.function.init.arch"}}},
        "keyword": {"name": "keyword.control.arch", "match": rf"\b({'|'.join(L.CONTROL)})\b"},
        "logical": {"name": "keyword.operator.logical.arch", "match": rf"\b({'|'.join(L.LOGICAL)})\b"},
        "constant": {"name": "constant.language.arch", "match": rf"\b({'|'.join(L.CONSTANTS)})\b"},
        "label": {"match": rf"\b({name})\s*(:)(?!\s*\[)",
                  "captures": {"1": {"name": "entity.name.tag.label.arch"}, "2": {"name": "punctuation.separator.arch"}}},
        "container": {"name": "keyword.other.container.arch", "match": rf"\b({'|'.join(L.CONTAINERS)})(?=\s*\{{)"},
        "kwarg": {"match": rf"\b({name})\s*(=)(?!=)",
                  "captures": {"1": {"name": "variable.parameter.arch"}, "2": {"name": "keyword.operator.assignment.arch"}}},
        "op": {"name": "support.function.op.arch", "match": rf"\b({'|'.join(ops_)})\b"},
        "function": {"name": "support.function.builtin.arch", "match": rf"\b({'|'.join(FUNCTIONS)})(?=\s*\()"},
        "shape": {"match": rf"(\.)({'|'.join(L.SHAPE_ATTRS)})\b",
                  "captures": {"1": {"name": "punctuation.accessor.arch"}, "2": {"name": "variable.other.property.arch"}}},
        "number": {"name": "constant.numeric.arch", "match": rf"\b({L.NUMBER_FLOAT}|{L.NUMBER_INT})\b"},
        "operator": {"name": "keyword.operator.arch", "match": L.OPERATOR},
    }
    grammar = {
        "$schema": "https://raw.githubusercontent.com/martinring/tmlanguage/master/tmlanguage.json",
        "name": "archdsl",
        "scopeName": "source.arch",
        "fileTypes": ["arch"],
        "comment": "generated from archdsl's op registry by `python -m archdsl.tools.docs`; do not edit",
        "patterns": [{"include": f"#{k}"} for k in repo],
        "repository": repo,
    }
    return json.dumps(grammar, indent=2) + "\n"


def outputs() -> dict[Path, str]:
    """Every generated file and its content."""
    root = DOCS_PATH.parent.parent
    return {DOCS_PATH: markdown(), root / "editors" / "vscode" / "syntaxes" / "arch.tmLanguage.json": textmate()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m archdsl.tools.docs",
                                 description="regenerate docs/ops.md and the TextMate grammar from the op registry")
    ap.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file is out of date")
    args = ap.parse_args(argv)
    stale = [p for p, text in outputs().items()
             if not p.exists() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for p in stale:
            print(f"{p} is out of date; run: python -m archdsl.tools.docs", file=sys.stderr)
        return 1 if stale else 0
    from ..files import write_atomic

    for p in stale:
        p.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(str(p), outputs()[p])
        print(f"wrote {p}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
