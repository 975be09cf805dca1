"""The ``archdsl`` command: check · summary · compile · graph · fmt · ops.

Exit status: 0 success, 1 errors in the input, 2 usage errors.  Diagnostics go to stderr
(``--json`` puts them on stdout as objects); no input, however broken, shows a traceback.
"""
from __future__ import annotations

import argparse
import contextlib
import gc
import json
import os
import sys
from pathlib import Path
from typing import Any

from ..front.elaborate import DEFAULT_MAX_NODES, STEPS_PER_NODE
from ..lang.parser import MAX_SOURCE_BYTES
from ..errors import ArchError, Diagnostic, Diagnostics, Span
from ..files import check_output, read_source, write_output


def _define(text: str) -> tuple[str, Any]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"-D expects NAME=VALUE, got {text!r}")
    key, value = text.split("=", 1)
    if not key.isidentifier():
        raise argparse.ArgumentTypeError(f"-D name {key!r} is not a valid name")
    from ..lang.expr import Env, evaluate
    from ..lang.parser import parse_expr

    try:
        return key, evaluate(parse_expr(value, "<-D>"), Env())
    except ArchError:
        return key, value  # a bare word is a string: -D mode=bilinear


def _common(p: argparse.ArgumentParser, network=True) -> None:
    p.add_argument("file", help=".arch source file")
    if network:
        p.add_argument("--network", "-n", help="network to use (default: the first in the file)")
    p.add_argument("-D", dest="defines", action="append", type=_define, default=[], metavar="NAME=VALUE",
                   help="override a network parameter (repeatable)")
    p.add_argument("--strict", action="store_true", help="treat warnings (uneven tiling) as errors")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--max-nodes", type=_positive, default=None,
                   help=f"limit on graph nodes (default {DEFAULT_MAX_NODES}); elaboration steps are limited "
                        f"to {STEPS_PER_NODE} times this")
    p.add_argument("--max-source-bytes", type=_positive, default=None,
                   help=f"limit on the size of a file and its imports (default {MAX_SOURCE_BYTES})")
    p.add_argument("--include-root", default=None, help="imports may not leave this directory")


def _positive(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected a positive number, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    from ..version import __version__

    # no abbreviations: `--dynamic` must not silently mean `--dynamic-batch`
    ap = argparse.ArgumentParser(prog="archdsl", description="Compile .arch network descriptions.",
                                 allow_abbrev=False)
    ap.add_argument("--version", action="version", version=f"archdsl {__version__}")
    sub = ap.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("check", allow_abbrev=False, help="parse and shape-check every network (or one with --network)")
    _common(p)
    p.set_defaults(func=cmd_check)

    p = sub.add_parser("summary", allow_abbrev=False, help="per-layer table: shape, params, MACs, memory, receptive field")
    _common(p)
    p.add_argument("--depth", type=int, default=None, help="collapse modules deeper than this")
    p.set_defaults(func=cmd_summary)

    p = sub.add_parser("compile", allow_abbrev=False, help="emit a PyTorch module or an ONNX model")
    _common(p)
    p.add_argument("--target", choices=("torch", "onnx"), default="torch")
    p.add_argument("-o", "--output", help="output file (torch: default stdout)")
    p.add_argument("--opset", type=int, default=17, help="ONNX opset (13 or newer)")
    p.add_argument("--weights", help="ONNX: a state_dict (.pt/.pth) or .safetensors file, checked against the network")
    p.add_argument("--dynamic-batch", action="store_true", help="ONNX: symbolic batch axis")
    p.add_argument("--fold-bn", action="store_true", help="ONNX: fold batch norm into convolutions")
    p.add_argument("--functions", action="store_true", help="ONNX: keep each block as a local function")
    p.set_defaults(func=cmd_compile)

    p = sub.add_parser("graph", allow_abbrev=False, help="draw the network: .svg .png .pdf .dot .mmd")
    _common(p)
    p.add_argument("-o", "--output", required=True, help="output file; the suffix picks the format")
    p.add_argument("--depth", type=int, default=None, help="collapse blocks deeper than this")
    p.add_argument("--rankdir", choices=("TB", "LR"), default="TB")
    p.add_argument("--dpi", type=_positive, default=None,
                   help="resolution of a .png (default 192; Graphviz's own 96 blurs when zoomed)")
    p.set_defaults(func=cmd_graph)

    p = sub.add_parser("fmt", allow_abbrev=False, help="rewrite files in the canonical layout (comments kept)")
    p.add_argument("files", nargs="+", metavar="FILE", help=".arch source files")
    p.add_argument("--check", action="store_true", help="change nothing; exit 1 if a file would change")
    p.add_argument("--diff", action="store_true",
                   help="print the changes as a unified diff instead of writing them; exit 1 if there are any")
    p.add_argument("--max-source-bytes", type=_positive, default=None,
                   help=f"limit on the size of a file (default {MAX_SOURCE_BYTES})")
    p.set_defaults(func=cmd_fmt)

    p = sub.add_parser("ops", allow_abbrev=False, help="the op reference: signature, defaults, shape rule, example")
    p.add_argument("name", nargs="?", help="one op (default: all)")
    p.set_defaults(func=cmd_ops)
    return ap


# ------------------------------------------------------------------------------------------ helpers


class _Failed(Exception):
    pass


def _report(diags: Diagnostics, args) -> None:
    if getattr(args, "json", False):
        return
    if diags.items:
        from .highlight import color_wanted, render_diagnostics

        print(render_diagnostics(diags) if color_wanted(sys.stderr) else diags.render(), file=sys.stderr)


@contextlib.contextmanager
def _source_limit(args):
    """--max-source-bytes: the limit is read while reading and parsing, so set it for that only."""
    from ..lang import parser

    saved = parser.MAX_SOURCE_BYTES
    parser.MAX_SOURCE_BYTES = args.max_source_bytes or saved
    try:
        yield
    finally:
        parser.MAX_SOURCE_BYTES = saved


def _load(args, diags: Diagnostics):
    from ..api import ArchFile
    from ..front.loader import load_module

    try:
        with _source_limit(args):
            module = load_module(args.file, diags=diags, include_root=args.include_root)
    except ArchError as err:
        diags.extend(err)
        raise _Failed() from None
    if diags.errors:
        raise _Failed()
    return ArchFile(module, diags, args.strict, args.max_nodes)


def _network(args, diags: Diagnostics):
    """(the loaded file, the elaborated network named by --network, or the first)."""
    arch = _load(args, diags)
    if not arch.networks:
        diags.error("no network is defined", Span(args.file, 0, 0),
                    "define one: network name() { input x: [3, 32, 32] ... }")
        raise _Failed()
    name = args.network or arch.networks[0]
    if name not in arch.networks:
        from ..errors import did_you_mean

        diags.error(f"no network '{name}'", Span(args.file, 0, 0),
                    did_you_mean(name, arch.networks) or f"networks here: {', '.join(arch.networks)}")
        raise _Failed()
    net = arch.elaborate(name, diags, **dict(args.defines))
    if net is None or diags.errors:
        raise _Failed()
    return arch, net


def _inputs(arch, args) -> list[str]:
    """Every file this run reads: an output may be none of them."""
    return [*arch.module.sources, *([args.weights] if getattr(args, "weights", None) else [])]


def _wrote(path: str, what: str = "") -> None:
    if path != "-" and os.path.isfile(path):
        size = os.path.getsize(path)
        shown = f"{size:,} bytes" if size < 10_000 else f"{size / 2**20:.1f} MiB" if size > 2**20 else f"{size / 1024:.0f} KiB"
        print(f"wrote {path} ({shown}){what}", file=sys.stderr)


# ------------------------------------------------------------------------------------------ commands


def cmd_check(args, diags: Diagnostics) -> int:
    try:
        arch = _load(args, diags)
    except _Failed:
        if args.json:  # the same report as for a network that fails, with no network checked
            print(json.dumps({"ok": False, "networks": [], "failed": [],
                              "diagnostics": [d.to_json() for d in diags.items]}, indent=2))
        raise
    names = [args.network] if args.network else arch.networks
    if not names:
        diags.error("no network is defined", Span(args.file, 0, 0))
    checked = []
    for name in names:
        if name not in arch.networks:
            from ..errors import did_you_mean

            diags.error(f"no network '{name}'", Span(args.file, 0, 0), did_you_mean(name, arch.networks))
            continue
        errors = len(diags.errors)
        net = arch.elaborate(name, diags, **dict(args.defines))
        if net is not None and len(diags.errors) == errors:
            checked.append(net)
    if args.json:
        print(json.dumps({"ok": not diags.errors, "networks": [n.name for n in checked],
                          "failed": [n for n in names if n not in {c.name for c in checked}],
                          "diagnostics": [d.to_json() for d in diags.items]}, indent=2))
    else:  # every network of the file is checked: say how each one went
        for net in checked:
            s = net.summary().totals
            print(f"{net.name}: ok — {s['input']} -> {s['output']}, {s['params']:,} parameters, "
                  f"{s['macs']:,} MACs")
        sys.stdout.flush()
    if diags.errors:
        failed = [n for n in names if n not in {c.name for c in checked}]
        if len(names) > 1 and failed and not args.json:
            diags.items.append(Diagnostic("note", f"{len(failed)} of {len(names)} networks failed: {', '.join(failed)}",
                                          Span(arch.file, 0, 0)))
        raise _Failed()
    _report(diags, args)
    return 0


def cmd_summary(args, diags: Diagnostics) -> int:
    from ..passes.analysis import summarize

    _, net = _network(args, diags)
    s = summarize(net, args.depth)
    _report(diags, args)
    if args.json:
        print(json.dumps({**s.to_json(), "diagnostics": [d.to_json() for d in diags.items]}, indent=2))
    elif sys.stdout.isatty():
        from rich.console import Console

        console = Console()
        console.print(s.to_rich())
        for line in [*s.totals_lines(), "", s.FOOTER]:
            console.print(line, highlight=False)
    else:
        print(s.to_text())
    return 0


def cmd_compile(args, diags: Diagnostics) -> int:
    if args.weights and args.target == "torch":
        # The module's state_dict keys are the file's keys: load_state_dict takes the file as it
        # is, and a copy beside the module (or a path inside it) would add nothing but a second
        # source of truth.  Never ignore the option silently.
        diags.error("--weights is for --target onnx; the generated PyTorch module does not embed weights",
                    Span(args.weights, 0, 0),
                    f"build the module, then load them: model.load_state_dict(torch.load({args.weights!r}, "
                    "weights_only=True))")
        raise _Failed()
    arch, net = _network(args, diags)
    if args.output:  # before any work: a refused output costs nothing
        for path in (args.output, args.output + ".data") if args.target == "onnx" else (args.output,):
            check_output(path, _inputs(arch, args))
    if args.target == "torch":
        _report(diags, args)
        from ..backends.torch import generate

        source = generate(net, source_name=Path(arch.file).name)
        write_output(args.output or "-", source, _inputs(arch, args))
        _wrote(args.output or "-")
        return 0
    if not args.output or args.output == "-":
        diags.error("--target onnx needs an output file: -o model.onnx")
        raise _Failed()
    from ..backends.onnx import export

    model = export(net, args.output, opset=args.opset, weights=args.weights, dynamic_batch=args.dynamic_batch,
                   fold_bn=args.fold_bn, functions=args.functions, diags=diags)
    _report(diags, args)  # after exporting: reading the weights may warn
    if any(t.data_location == t.EXTERNAL for t in model.graph.initializer):
        print(f"note: the weights are in {args.output}.data beside the model (ONNX external data: "
              "the model is over protobuf's 2 GiB limit); keep the two files together", file=sys.stderr)
    _wrote(args.output, "" if args.weights else "; its weights are random (give trained ones with --weights)")
    return 0


def cmd_graph(args, diags: Diagnostics) -> int:
    arch, net = _network(args, diags)
    check_output(args.output, _inputs(arch, args))
    from ..backends.graph import write

    write(net, args.output, depth=args.depth, rankdir=args.rankdir, diags=diags, dpi=args.dpi)
    _report(diags, args)  # after writing: the writer may add warnings (e.g. Mermaid's edge limit)
    _wrote(args.output)
    return 0


def cmd_fmt(args, diags: Diagnostics) -> int:
    from .fmt import format_file, unified_diff

    changed, diffs = [], 0
    for path in args.files:
        try:
            with _source_limit(args):
                old, new = format_file(path)
        except ArchError as err:
            with contextlib.suppress(ArchError):  # quote lines only of a file that is .arch source
                diags.sources[path] = read_source(path, limit=args.max_source_bytes or MAX_SOURCE_BYTES)
            diags.extend(err)
            continue
        except RecursionError:
            diags.error("nesting too deep to format", Span(path, 0, 0))
            continue
        if new != old:
            if args.diff:  # stdout is the diff alone (to pipe into patch); nothing is written
                sys.stdout.write(unified_diff(path, old, new))
                print(f"would reformat {path}", file=sys.stderr)
                diffs += 1
                continue
            changed.append(path)
            if not args.check:
                try:  # in place: a symlink keeps pointing at the file, hard links and modes stay
                    write_output(path, new)
                except ArchError as err:
                    changed.pop()
                    diags.extend(err)
    for path in changed:
        print(f"would reformat {path}" if args.check else f"reformatted {path}",
              file=sys.stdout if args.check else sys.stderr)
    if diags.errors:
        raise _Failed()
    return 1 if (args.check and changed) or diffs else 0


def cmd_ops(args, diags: Diagnostics) -> int:
    from .docs import op_names, op_text

    if args.name and args.name not in op_names():
        from ..errors import did_you_mean
        from ..ops import torch_hint

        diags.error(f"no op '{args.name}'", Span("archdsl ops", 0, 0),
                    torch_hint(args.name) or did_you_mean(args.name, op_names()) or "archdsl ops lists them")
        raise _Failed()
    sys.stdout.write(op_text(args.name))
    return 0


def main(argv: list[str] | None = None) -> int:
    # Checking allocates a few objects per token and node and keeps nearly all of them until it
    # exits; at the default thresholds the cyclic collector rescans them again and again (a fifth
    # of the time of a 10,000-node check).  A command is short-lived: collect rarely.
    gc.set_threshold(100_000, 50, 100)
    parser = build_parser()
    args = parser.parse_args(argv)
    diags = Diagnostics()
    try:
        return args.func(args, diags)
    except _Failed:
        if getattr(args, "json", False) and args.command != "check":
            print(json.dumps({"ok": False, "diagnostics": [d.to_json() for d in diags.items]}, indent=2))
        elif not getattr(args, "json", False):
            _report(diags, args)
        return 1
    except ArchError as err:
        diags.extend(err)
        if getattr(args, "json", False):
            print(json.dumps({"ok": False, "diagnostics": [d.to_json() for d in diags.items]}, indent=2))
        else:
            _report(diags, args)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    except RecursionError:
        print(f"{args.file}: error: input nested too deeply", file=sys.stderr)
        return 1
    except MemoryError:
        print(f"{args.file}: error: out of memory; lower --max-nodes", file=sys.stderr)
        return 1
    except OSError as err:
        print(f"archdsl: error: {err.strerror or err}: {err.filename or ''}".rstrip(": "), file=sys.stderr)
        return 1
    except Exception as err:
        if os.environ.get("ARCHDSL_DEBUG"):
            raise
        print(f"archdsl: internal error (a bug in archdsl, please report it): {type(err).__name__}: {err}\n"
              "hint: set ARCHDSL_DEBUG=1 to see the traceback", file=sys.stderr)
        return 70


if __name__ == "__main__":
    raise SystemExit(main())
