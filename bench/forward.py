"""Generated code costs nothing: CPU forward time of archdsl's modules against torchvision's.

    python bench/forward.py [--threads 2] [--models resnet50,densenet121,lenet5] [--json FILE]

Each archdsl module is built with ``archdsl.load(...).network(...).to_torch()`` and given the
reference model's weights (torchvision's ``state_dict``; for LeNet-5, which torchvision does not
ship, a hand-written ``nn.Module`` as one would write it from the paper).  Outputs are checked
equal before timing.  Both models run in the same process, in eval mode under
``torch.inference_mode()``, at batch 1 and batch 16.  The measurement is interleaved: each round
times a block of calls of one model, then of the other (the order alternates), and the reported
ratio is the median over rounds of archdsl's time / the reference's time.  Both the wall time and
the process's CPU time are recorded; the target is judged on CPU time, which on a shared machine
leaves out the time spent waiting for a core (memory stalls and page faults still count).  Target: the
generated code costs nothing, at most 2% slower (5% for LeNet-5, where per-call Python overhead is a
visible share of a 0.1 ms forward); faster is fine.
"""
from __future__ import annotations

import os
import resource
import statistics
import sys
import time

from common import EXAMPLES, cli, machine, save, table

# OpenMP threads that spin while waiting collapse when the cores are shared with other work (a
# 0.2 ms conv took 1-30 ms with 2 spinning threads on a busy 2-core machine); passive waiting
# treats both models alike and keeps the comparison stable.  Must be set before torch loads.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

# (archdsl file, network, input shape, batch -> (rounds, calls per round))
MODELS = {
    "resnet50": ("resnet.arch", "resnet50", (3, 224, 224), {1: (30, 1), 16: (12, 1)}),
    "densenet121": ("densenet.arch", "densenet121", (3, 224, 224), {1: (30, 1), 16: (12, 1)}),
    "lenet5": ("lenet5.arch", "lenet5", (1, 32, 32), {1: (30, 300), 16: (30, 100)}),
}


def reference(name: str):
    import torch.nn.functional as F
    import torchvision
    from torch import nn

    if name != "lenet5":
        return getattr(torchvision.models, name)()

    class LeNet5(nn.Module):
        """LeNet-5 written by hand, the way a tutorial writes it."""

        def __init__(self, classes: int = 10):
            super().__init__()
            self.conv1 = nn.Conv2d(1, 6, 5)
            self.conv2 = nn.Conv2d(6, 16, 5)
            self.fc1 = nn.Linear(16 * 5 * 5, 120)
            self.fc2 = nn.Linear(120, 84)
            self.fc3 = nn.Linear(84, classes)

        def forward(self, x):
            x = F.max_pool2d(F.relu(self.conv1(x)), 2)
            x = F.max_pool2d(F.relu(self.conv2(x)), 2)
            x = x.flatten(1)
            x = F.relu(self.fc1(x))
            x = F.relu(self.fc2(x))
            return self.fc3(x)

    return LeNet5()


def build_pair(name: str):
    import torch

    import archdsl

    file, network, _, _ = MODELS[name]
    ref = reference(name).eval()
    gen = archdsl.load(str(EXAMPLES / file)).network(network).to_torch().eval()
    gen.load_state_dict(ref.state_dict())
    x = torch.randn(2, *MODELS[name][2])
    with torch.inference_mode():
        a, b = gen(x), ref(x)
    torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
    return gen, ref


def time_block(model, x, calls: int) -> tuple[float, float, float]:
    """Per call: (wall seconds, CPU seconds of this process, minor page faults)."""
    f0 = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    w0, c0 = time.perf_counter(), time.process_time()
    for _ in range(calls):
        model(x)
    w, c = (time.perf_counter() - w0) / calls, (time.process_time() - c0) / calls
    return w, c, (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - f0) / calls


def compare(gen, ref, shape, batch: int, rounds: int, calls: int) -> dict:
    import torch

    torch.manual_seed(0)
    x = torch.randn(batch, *shape)
    t: dict[str, list[tuple[float, float, float]]] = {"archdsl": [], "reference": []}
    with torch.inference_mode():
        for m in (gen, ref, gen, ref):  # warm-up: allocator, oneDNN primitive caches
            time_block(m, x, max(1, calls // 2))
        for r in range(rounds):
            order = [("archdsl", gen), ("reference", ref)]
            for name, m in order if r % 2 == 0 else order[::-1]:
                t[name].append(time_block(m, x, calls))
    out: dict = {"rounds": rounds, "calls": calls}
    for i, kind in enumerate(("wall", "cpu")):
        g = [v[i] for v in t["archdsl"]]
        f = [v[i] for v in t["reference"]]
        ratios = [a / b for a, b in zip(g, f)]
        q = statistics.quantiles(ratios, n=4)
        out[kind] = {"archdsl": statistics.median(g), "reference": statistics.median(f),
                     "ratio": statistics.median(ratios), "ratio_q1": q[0], "ratio_q3": q[2]}
    # fresh memory the kernel maps in per call: large activations are new pages each time
    out["page_faults"] = {name: statistics.median(v[2] for v in t[name]) for name in t}
    return out


def main() -> int:
    ap = cli(__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--batches", default="1,16")
    ap.add_argument("--rounds", type=int, default=None, help="rounds per measurement (default: per model)")
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    results: dict[str, dict] = {}
    rows = []
    for name in args.models.split(","):
        gen, ref = build_pair(name)
        results[name] = {}
        for batch in (int(b) for b in args.batches.split(",")):
            rounds, calls = MODELS[name][3][batch]
            if args.rounds:
                rounds = args.rounds
            if args.quick:
                rounds, calls = 3, max(1, calls // 10)
            print(f"forward: {name} batch {batch}: {rounds} rounds x {calls} calls", file=sys.stderr, flush=True)
            r = compare(gen, ref, MODELS[name][2], batch, rounds, calls)
            results[name][batch] = r
            r["target"] = 0.05 if name == "lenet5" else 0.02
            r["within_target"] = r["cpu"]["ratio"] <= 1 + r["target"]  # costs nothing: not slower; faster is fine
            ref_name = "hand-written" if name == "lenet5" else "torchvision"
            c, w = r["cpu"], r["wall"]
            rows.append([name, str(batch), ref_name, f"{c['archdsl'] * 1e3:.2f} ms", f"{c['reference'] * 1e3:.2f} ms",
                         f"{c['ratio']:.3f}", f"{c['ratio_q1']:.3f}–{c['ratio_q3']:.3f}", f"{w['ratio']:.3f}",
                         f"≤ +{r['target']:.0%}", "yes" if r["within_target"] else "no"])
    print(table(["model", "batch", "reference", "archdsl CPU", "reference CPU", "CPU ratio", "CPU ratio IQR",
                 "wall ratio", "target", "met"], rows))
    save({"machine": machine(), "threads": args.threads, "omp_wait_policy": os.environ["OMP_WAIT_POLICY"],
          "results": results}, args.json)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
