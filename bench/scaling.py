"""Scaling: ``archdsl check`` on synthetic networks of 1,000, 10,000 and 100,000 nodes.

    python bench/scaling.py [--sizes 1000,10000,100000] [--shapes chain,wide,dense,loop] [--json FILE]

Shapes, written out as plain ``.arch`` text, one line per unit, so the parser sees every node:

- ``chain``: a deep chain, one ``conv -> bn -> relu`` statement per line;
- ``wide``:  wide concats, 64 parallel 1x1 convs joined by ``concat`` and reduced by a 1x1 conv;
- ``dense``: DenseNet-style blocks, each layer ``concat { identity | bn -> relu -> conv1x1 -> bn
  -> relu -> conv3x3 }``, 12 layers then a transition;
- ``loop``:  the ``chain`` network written as a ``for`` loop (a few lines of text): the same
  elaboration work without the parsing, so the two rows separate parser from elaborator.

Each file is checked in a fresh process, with ``--max-source-bytes`` and ``--max-nodes`` raised
(100,000 nodes written out exceed the default limits on source size and node count).  Reported:
the time of ``check`` itself (measured inside the process: parse, elaborate, shape-check, the
totals it prints; the interpreter's start and the imports are not counted), the whole-process
time, and the process's peak RSS; then the cost per node and the growth from one size to the
next, both above the cost of a 10-node network of the same shape (so 10.0x time for 10x nodes is
linear).  ``archdsl`` raises the cyclic garbage collector's thresholds for the length of a
command (``gc.set_threshold(100_000, 50, 100)`` in ``cli.main``); for the written-out shapes the
two largest sizes are also checked once with Python's default thresholds, which shows what that
buys.
"""
from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, ROOT, child_env, cli, fmt_s, machine, save, stats, table

WIDTH = 64       # branches of one wide concat
DENSE_LAYERS = 12
CHECK = r"""
import gc, json, resource, sys, time, contextlib, io
if sys.argv[2:] == ["default-gc"]:  # keep Python's thresholds: cli.main may not raise them
    import archdsl.tools.cli
    archdsl.tools.cli.gc = type("DefaultGc", (), {"set_threshold": staticmethod(lambda *a: None)})
t0 = time.perf_counter()
import archdsl
from archdsl.tools.cli import main
t1 = time.perf_counter()
nodes = []
elaborate = archdsl.ArchFile.elaborate
def counting(self, *a, **k):
    net = elaborate(self, *a, **k)
    nodes.append(len(net.nodes) if net is not None else 0)
    return net
archdsl.ArchFile.elaborate = counting
with contextlib.redirect_stdout(io.StringIO()):
    rc = main(["check", sys.argv[1], "--max-source-bytes", str(1 << 26), "--max-nodes", str(10**6)])
t2 = time.perf_counter()
assert rc == 0, rc
print(json.dumps({"import": t1 - t0, "check": t2 - t1, "nodes": sum(nodes),
                  "rss_peak": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024}))
"""


def chain(n: int) -> str:
    lines = ["network chain() {", "    input x: [8, 16, 16]"]
    lines += ["    conv(8, 3, pad=1) -> bn -> relu"] * max(1, (n - 1) // 3)
    return "\n".join(lines + ["}", ""])


def wide(n: int) -> str:
    per = WIDTH + 2
    branches = " | ".join(["conv(4, 1)"] * WIDTH)
    lines = ["network wide() {", "    input x: [16, 16, 16]"]
    lines += [f"    concat {{ {branches} }} -> conv(16, 1)"] * max(1, (n - 1) // per)
    return "\n".join(lines + ["}", ""])


def dense(n: int) -> str:
    layer = "    concat { identity | bn -> relu -> conv(32, 1) -> bn -> relu -> conv(8, 3, pad=1) }"
    transition = "    bn -> relu -> conv(32, 1)"
    per_block = DENSE_LAYERS * 8 + 3
    lines = ["network dense() {", "    input x: [32, 16, 16]"]
    for _ in range(max(1, (n - 1) // per_block)):
        lines += [layer] * DENSE_LAYERS + [transition]
    return "\n".join(lines + ["}", ""])


def loop(n: int) -> str:
    body = "conv(8, 3, pad=1) -> bn -> relu"
    return f"network loop() {{\n    input x: [8, 16, 16]\n    for i in 1..{max(1, (n - 1) // 3)} {{ {body} }}\n}}\n"


SHAPES = {"chain": chain, "wide": wide, "dense": dense, "loop": loop}


def run_check(path: Path, default_gc: bool = False) -> dict:
    t0 = time.perf_counter()
    argv = [PYTHON, "-c", CHECK, str(path), *(["default-gc"] if default_gc else [])]
    r = subprocess.run(argv, capture_output=True, text=True, env=child_env(), cwd=ROOT)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise RuntimeError(f"check of {path.name} failed:\n{r.stderr[-3000:]}")
    return {**json.loads(r.stdout.strip().splitlines()[-1]), "process": wall}


def measure(path: Path, reps: int) -> dict:
    runs = [run_check(path) for _ in range(reps)]
    return {"nodes": runs[0]["nodes"], "check": stats([r["check"] for r in runs]),
            "process": stats([r["process"] for r in runs]), "rss_peak": max(r["rss_peak"] for r in runs),
            "source_bytes": path.stat().st_size, "runs": reps}


HEADER = ["shape", "nodes", "check", "per node", "time growth", "process", "peak RSS", "RSS per node",
          "RSS growth"]


def rows(results: dict) -> list[list[str]]:
    """One row per shape and size: time and peak RSS, per node and growth above the 10-node cost."""
    out = []
    for shape, res in results.items():
        base, prev = res["base"], None
        for x in res["sizes"]:
            t = x["check"]["median"]
            above = lambda y: y["check"]["median"] - base["check"]["median"]
            grow = (f"{above(x) / above(prev):.1f}x for {(x['nodes'] - base['nodes']) / (prev['nodes'] - base['nodes']):.1f}x"
                    if prev else "")
            mem = (f"{(x['rss_peak'] - base['rss_peak']) / (prev['rss_peak'] - base['rss_peak']):.1f}x"
                   if prev and prev['rss_peak'] - base['rss_peak'] >= 2**20 else "")
            out.append([shape, f"{x['nodes']:,}", fmt_s(t), f"{x['per_node_s'] * 1e6:.0f} µs", grow,
                        fmt_s(x["process"]["median"]), f"{x['rss_peak'] / 2**20:.0f} MiB",
                        f"{x['per_node_bytes'] / 1024:.1f} KiB", mem])
            prev = x
    return out


GC_HEADER = ["shape", "nodes", "check", "check, Python's default GC thresholds", "growth", "growth, default GC"]


def gc_table(results: dict) -> list[list[str]]:
    """archdsl's GC thresholds against Python's defaults, the two largest sizes."""
    rows = []
    for shape, res in results.items():
        default = res.get("gc_default")
        if not default:
            continue
        by_size = {str(r["size"]): r for r in res["sizes"]}
        (n1, g1), (n2, g2) = list(default.items())
        t1, t2 = by_size[n1]["check"]["median"], by_size[n2]["check"]["median"]
        b = res["base"]["check"]["median"]
        for n, t, g in ((n1, t1, g1), (n2, t2, g2)):
            rows.append([shape, f"{by_size[n]['nodes']:,}", fmt_s(t), fmt_s(g),
                         f"{(t2 - b) / (t1 - b):.1f}x" if n == n2 else "",
                         f"{(g2 - b) / (g1 - b):.1f}x" if n == n2 else ""])
    return rows


def main() -> int:
    ap = cli(__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="1000,10000,100000")
    ap.add_argument("--shapes", default=",".join(SHAPES))
    args = ap.parse_args()
    sizes = [1000, 10000] if args.quick else [int(s) for s in args.sizes.split(",")]
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for shape in args.shapes.split(","):
            rs = []
            for n in [10, *sizes]:
                path = Path(tmp) / f"{shape}_{n}.arch"
                path.write_text(SHAPES[shape](n))
                reps = 1 if args.quick else 5 if n <= 1000 else 3 if n <= 10000 else 1
                print(f"scaling: {shape} {n} nodes, {reps} runs", file=sys.stderr, flush=True)
                rs.append({"size": n, **measure(path, reps)})
            results[shape] = {"base": rs[0], "sizes": rs[1:]}
            if shape != "loop" and not args.quick and len(sizes) > 1:
                # the cyclic GC's collections during parsing, at Python's default thresholds
                big = sizes[-2:]
                print(f"scaling: {shape} {big} nodes, default GC thresholds", file=sys.stderr, flush=True)
                results[shape]["gc_default"] = {
                    str(n): run_check(Path(tmp) / f"{shape}_{n}.arch", default_gc=True)["check"] for n in big}
    for res in results.values():  # cost per node above the 10-node network of the same shape
        base = res["base"]
        for r in res["sizes"]:
            dn = r["nodes"] - base["nodes"]
            r["per_node_s"] = (r["check"]["median"] - base["check"]["median"]) / dn
            r["per_node_bytes"] = (r["rss_peak"] - base["rss_peak"]) / dn
    print(table(HEADER, rows(results)))
    gc_rows = gc_table(results)
    if gc_rows:
        print(table(GC_HEADER, gc_rows))
    ten_k = [r for res in results.values() for r in res["sizes"] if r["size"] == 10000]
    out = {"machine": machine(), "results": results, "width": WIDTH, "dense_layers": DENSE_LAYERS,
           "target_10k_under_2s": all(r["process"]["median"] < 2 for r in ten_k) if ten_k else None}
    save(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
