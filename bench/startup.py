"""Checking is instant: whole-process time of ``archdsl summary`` on ResNet-50 against the usual
alternative, a fresh process that builds torchvision's resnet50 and calls ``torchinfo.summary``.

    python bench/startup.py [--runs N] [--json FILE]

Also timed, for scale: an empty interpreter (the floor every Python tool pays), ``archdsl check``
and ``import torch`` alone.  Target (issue 16): archdsl summary under 0.25 s and at least 8x faster than
torchinfo.  With ``--profile`` it prints where archdsl's time goes (``-X importtime`` and
cProfile of one in-process run).
"""
from __future__ import annotations

import subprocess
import sys

from common import EXAMPLES, PYTHON, ROOT, archdsl_cmd, child_env, cli, fmt_s, interleaved, machine, ratio, save, table

RESNET = str(EXAMPLES / "resnet.arch")
TORCHINFO = (
    "import torch, torchvision\n"
    "from torchinfo import summary\n"
    "model = torchvision.models.resnet50()\n"
    "summary(model, input_size=(1, 3, 224, 224))\n"
)


def commands() -> dict[str, list[str]]:
    return {
        "python -c pass": [PYTHON, "-c", "pass"],
        "archdsl check": [*archdsl_cmd(), "check", RESNET, "--network", "resnet50"],
        "archdsl summary": [*archdsl_cmd(), "summary", RESNET, "--network", "resnet50"],
        "import torch": [PYTHON, "-c", "import torch"],
        "torchvision + torchinfo.summary": [PYTHON, "-c", TORCHINFO],
    }


TARGET_S, TARGET_RATIO = 0.25, 8  # summary's whole-process wall time; torchinfo / archdsl


PHASES = r"""
import json, sys, time
sys.stderr.write("--- phases start\n")
t0 = time.perf_counter()
import archdsl, archdsl.passes.analysis, archdsl.tools.cli, archdsl.front.elaborate, archdsl.front.loader, archdsl.lang.parser
t1 = time.perf_counter()
archdsl.lang.parser.parser()
t2 = time.perf_counter()
from archdsl.errors import Diagnostics
d = Diagnostics()
module = archdsl.front.loader.load_module(sys.argv[1], diags=d)
t3 = time.perf_counter()
net = archdsl.ArchFile(module, d).elaborate("resnet50", d)
t4 = time.perf_counter()
text = archdsl.passes.analysis.summarize(net).to_text()
t5 = time.perf_counter()
print(json.dumps({"imports": t1 - t0, "grammar tables (lark cache)": t2 - t1, "parse resnet.arch": t3 - t2,
                  "elaborate + shape-check": t4 - t3, "summary table": t5 - t4}))
"""


PACKAGES = ("archdsl", "networkx", "lark", "regex", "rich", "numpy", "onnx", "torch")


def import_times(stderr: str) -> dict[str, float]:
    """Seconds of ``-X importtime`` self time after the marker, each module charged to the
    innermost package of PACKAGES that (transitively) imported it, else to the standard library."""
    lines = stderr.split("--- phases start", 1)[-1].splitlines()
    rows = []
    for line in lines:
        parts = line.replace("import time:", "").split("|")
        if len(parts) == 3 and parts[0].strip().isdigit():
            name = parts[2].rstrip()
            rows.append((len(name) - len(name.lstrip()), name.strip(), int(parts[0]) / 1e6))
    out: dict[str, float] = {}
    stack: list[tuple[int, str]] = []  # the importers of the current line (output is post-order)
    for depth, name, self_s in reversed(rows):
        while stack and stack[-1][0] >= depth:
            stack.pop()
        chain = [n for _, n in stack] + [name]
        owner = next((n.split(".")[0] for n in reversed(chain) if n.split(".")[0] in PACKAGES), "stdlib")
        out[owner] = out.get(owner, 0.0) + self_s
        stack.append((depth, name))
    return out


def phases(runs: int = 7) -> dict[str, float]:
    """Median seconds of each phase of ``archdsl summary`` inside one process (after the
    interpreter's own start), the imports split by the package that caused them."""
    import json
    import statistics

    env = child_env()
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        r = subprocess.run([PYTHON, "-X", "importtime", "-c", PHASES, RESNET], capture_output=True, text=True,
                           env=env, cwd=ROOT)
        if r.returncode != 0:
            raise RuntimeError(r.stderr[-3000:])
        sample = json.loads(r.stdout.strip().splitlines()[-1])
        del sample["imports"]
        for pkg, t in sorted(import_times(r.stderr).items(), key=lambda kv: -kv[1]):
            label = "standard library" if pkg == "stdlib" else pkg
            sample[f"import {label} (and what it imports)"] = t
        samples.append(sample)
    keys = list(dict.fromkeys(k for s in samples for k in s))
    return {k: statistics.median(s.get(k, 0.0) for s in samples) for k in keys}


def profile() -> str:
    """Where the time of ``archdsl summary`` goes: phases, and a cProfile top list."""
    lines = [f"{k:55s} {v * 1e3:7.1f} ms" for k, v in phases(3).items()]
    code = ("import cProfile, pstats, io, contextlib, sys\n"
            "pr = cProfile.Profile(); pr.enable()\n"
            "from archdsl.tools.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            f"    main(['summary', {RESNET!r}, '--network', 'resnet50'])\n"
            "pr.disable(); pstats.Stats(pr, stream=sys.stderr).sort_stats('cumulative').print_stats(30)\n")
    r = subprocess.run([PYTHON, "-c", code], capture_output=True, text=True, env=child_env(), cwd=ROOT)
    return "\n".join(lines) + "\n\n" + r.stderr


def main() -> int:
    ap = cli(__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=10)
    ap.add_argument("--profile", action="store_true", help="print where archdsl's time goes")
    args = ap.parse_args()
    runs = 3 if args.quick else args.runs
    if args.profile:
        print(profile())
        return 0
    log = lambda m: print(m, file=sys.stderr, flush=True)
    log(f"startup: {runs} interleaved runs of {len(commands())} commands")
    res = interleaved(commands(), runs, warmup=1, log=log)
    log("startup: phases of archdsl summary")
    ph = phases(3 if args.quick else 7)
    a, t = res["archdsl summary"], res["torchvision + torchinfo.summary"]
    out_ratio = ratio(t["wall"]["median"], a["wall"]["median"])
    out = {
        "machine": machine(), "runs": runs, "results": res,
        "ratio_wall": out_ratio,
        "ratio_cpu": ratio(t["cpu"]["median"], a["cpu"]["median"]),
        "archdsl_wall": a["wall"]["median"], "phases": ph,
        "target_met": a["wall"]["median"] < TARGET_S and out_ratio >= TARGET_RATIO,
    }
    rows = [[k, fmt_s(v["wall"]["median"]), f"{fmt_s(v['wall']['q1'])}–{fmt_s(v['wall']['q3'])}",
             fmt_s(v["cpu"]["median"])] for k, v in res.items()]
    print(table(["command", "wall median", "wall IQR", "CPU median"], rows))
    print(f"torchinfo / archdsl summary: {out['ratio_wall']:.1f}x wall, {out['ratio_cpu']:.1f}x CPU; target "
          f"(under {TARGET_S * 1000:.0f} ms, at least {TARGET_RATIO}x): {'met' if out['target_met'] else 'NOT met'}")
    print(table(["phase of archdsl summary (in process, -X importtime)", "median"],
                [[k, fmt_s(v)] for k, v in ph.items()]))
    save(out, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
