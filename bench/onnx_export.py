"""ONNX: whole-process time of ``archdsl compile --target onnx`` on ResNet-50 against a script that
builds torchvision's resnet50 and calls ``torch.onnx.export``; onnxruntime latency of the files.

    python bench/onnx_export.py [--runs N] [--threads 2] [--json FILE]

The export scripts are what a user types: ``torch.onnx.export(model, (x,), path)`` (since
PyTorch 2.9 the torch.export-based exporter, which needs onnxscript) and the same with
``dynamo=False`` (the TorchScript exporter, which many scripts still use), both in eval mode.
archdsl's default path initialises the weights with numpy and never imports torch.

Latency: one onnxruntime CPU session per file (default graph optimisations, ``--threads`` intra-op
threads), batch 1, interleaved rounds; the ratio is the median over rounds of archdsl's time /
the torch export's time.  Before timing, an archdsl model compiled with torchvision's weights
(``--weights``) is checked to give torchvision's outputs.
"""
from __future__ import annotations

import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from common import EXAMPLES, PYTHON, ROOT, archdsl_cmd, child_env, cli, fmt_s, interleaved, machine, save, table

RESNET = str(EXAMPLES / "resnet.arch")
EXPORT = (
    "import sys, torch, torchvision\n"
    "model = torchvision.models.resnet50().eval()\n"
    "x = torch.randn(1, 3, 224, 224)\n"
    "torch.onnx.export(model, (x,), sys.argv[1]{extra})\n"
)


def commands(out: Path) -> dict[str, list[str]]:
    return {
        "archdsl compile --target onnx": [*archdsl_cmd(), "compile", RESNET, "--network", "resnet50",
                                          "--target", "onnx", "-o", str(out / "archdsl.onnx")],
        "archdsl compile --target onnx --fold-bn": [*archdsl_cmd(), "compile", RESNET, "--network", "resnet50",
                                                    "--target", "onnx", "--fold-bn", "-o",
                                                    str(out / "archdsl_fold.onnx")],
        "torch.onnx.export (dynamo, default)": [PYTHON, "-W", "ignore", "-c", EXPORT.format(extra=""),
                                                str(out / "torch_dynamo.onnx")],
        "torch.onnx.export (dynamo=False)": [PYTHON, "-W", "ignore", "-c",
                                             EXPORT.format(extra=", dynamo=False"),
                                             str(out / "torch_ts.onnx")],
    }


FILES = {"archdsl": "archdsl.onnx", "archdsl --fold-bn": "archdsl_fold.onnx",
         "torch dynamo": "torch_dynamo.onnx", "torch dynamo=False": "torch_ts.onnx"}


def describe(path: Path) -> dict:
    import onnx

    m = onnx.load(str(path), load_external_data=False)
    size = path.stat().st_size + sum(p.stat().st_size for p in path.parent.glob(path.name + ".data"))
    return {"nodes": len(m.graph.node), "opset": max(o.version for o in m.opset_import if o.domain in ("", "ai.onnx")),
            "bytes": size, "ops": sorted({n.op_type for n in m.graph.node})}


def check_parity(out: Path) -> float:
    """Compile archdsl's resnet50 with torchvision's weights; max abs difference of the outputs."""
    code = (
        "import sys, numpy as np, torch, torchvision, onnxruntime as ort\n"
        "torch.manual_seed(0)\n"
        "m = torchvision.models.resnet50().eval()\n"
        "torch.save(m.state_dict(), sys.argv[1] + '/tv.pt')\n"
        "import subprocess\n"
        f"subprocess.run({archdsl_cmd()!r} + ['compile', {RESNET!r}, '--network', 'resnet50', '--target', 'onnx',"
        " '--weights', sys.argv[1] + '/tv.pt', '-o', sys.argv[1] + '/parity.onnx'], check=True)\n"
        "x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)\n"
        "s = ort.InferenceSession(sys.argv[1] + '/parity.onnx', providers=['CPUExecutionProvider'])\n"
        "got = s.run(None, {s.get_inputs()[0].name: x})[0]\n"
        "with torch.inference_mode():\n"
        "    ref = m(torch.from_numpy(x)).numpy()\n"
        "print(float(np.abs(got - ref).max() / np.abs(ref).max()))\n"
    )
    r = subprocess.run([PYTHON, "-c", code, str(out)], capture_output=True, text=True, env=child_env(), cwd=ROOT)
    if r.returncode != 0:
        raise RuntimeError(f"parity check failed:\n{r.stderr[-3000:]}")
    return float(r.stdout.strip().splitlines()[-1])


def latency(out: Path, threads: int, rounds: int, calls: int) -> dict:
    import numpy as np
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    sessions = {k: ort.InferenceSession(str(out / f), opts, providers=["CPUExecutionProvider"])
                for k, f in FILES.items()}
    x = np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)
    feeds = {k: {s.get_inputs()[0].name: x} for k, s in sessions.items()}
    for k, s in sessions.items():  # warm-up
        for _ in range(3):
            s.run(None, feeds[k])
    times: dict[str, list[float]] = {k: [] for k in sessions}
    for _ in range(rounds):
        order = list(sessions)
        random.shuffle(order)
        for k in order:
            t0 = time.perf_counter()
            for _ in range(calls):
                sessions[k].run(None, feeds[k])
            times[k].append((time.perf_counter() - t0) / calls)
    res = {k: {"median": statistics.median(v), "all": v} for k, v in times.items()}
    for k in res:
        for ref in ("torch dynamo", "torch dynamo=False"):
            res[k][f"ratio_vs_{ref}"] = statistics.median(a / b for a, b in zip(times[k], times[ref]))
    return res


def main() -> int:
    ap = cli(__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    runs = 2 if args.quick else args.runs
    log = lambda m: print(m, file=sys.stderr, flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp)
        cmds = commands(out)
        log(f"onnx: {runs} interleaved runs of {len(cmds)} export commands")
        export = interleaved(cmds, runs, warmup=1, log=log)
        files = {k: describe(out / f) for k, f in FILES.items()}
        log("onnx: parity of archdsl (with torchvision's weights) against torchvision")
        parity = check_parity(out)
        log("onnx: onnxruntime latency, batch 1")
        os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
        lat = latency(out, args.threads, 3 if args.quick else 20, 2 if args.quick else 5)
    a = export["archdsl compile --target onnx"]["wall"]["median"]
    rows = [[k, fmt_s(v["wall"]["median"]), fmt_s(v["cpu"]["median"]), f"{v['wall']['median'] / a:.1f}x"]
            for k, v in export.items()]
    print(table(["command", "wall median", "CPU median", "vs archdsl"], rows))
    rows = [[k, f"{v['median'] * 1e3:.1f} ms", f"{v['ratio_vs_torch dynamo']:.3f}",
             f"{v['ratio_vs_torch dynamo=False']:.3f}", str(files[k]["nodes"]), str(files[k]["opset"]),
             f"{files[k]['bytes'] / 2**20:.1f} MiB"] for k, v in lat.items()]
    print(table(["file", "onnxruntime median", "/ dynamo", "/ dynamo=False", "nodes", "opset", "size"], rows))
    print(f"archdsl with torchvision's weights vs torchvision: max relative difference {parity:.1e}")
    save({"machine": machine(), "runs": runs, "threads": args.threads, "export": export, "files": files,
          "latency": {k: {kk: vv for kk, vv in v.items() if kk != "all"} for k, v in lat.items()},
          "parity_max_rel_diff": parity}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
