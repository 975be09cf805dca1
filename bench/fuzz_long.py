"""The long fuzzing run of issue 8: the strategies of tests/robustness/test_fuzz.py, many cases, in parallel.

    python bench/fuzz_long.py [--cases 24000] [--jobs 2] [--seed 0]

The cases are shared out as 60% mutated zoo files, 35% plausible random networks and 5%
programs from the grammar (slow to draw); each job runs its share of every strategy with its own
seed.  Prints
the case counts and outcomes (docs/robustness.md records them); exits 1 if any case failed, with
hypothesis's shrunk input and reproduce blob.  ``pytest -m fuzz`` runs the same tests in one
process (ARCHDSL_FUZZ_EXAMPLES, ARCHDSL_FUZZ_SEED).
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SHARES = {"mutated": 0.6, "plausible": 0.35, "grammar": 0.05}  # grammar cases are slow to draw

WORKER = r"""
import json, sys, time, traceback
sys.path.insert(0, sys.argv[1])
import test_fuzz as T
from hypothesis import given, seed, settings
cases, job_seed = json.loads(sys.argv[2]), int(sys.argv[3])
strategies = {"mutated": T.mutated(), "grammar": T.GRAMMAR, "plausible": T.plausible()}
report = {}
for name, n in cases.items():
    T.STATS.clear()
    networks = 3

    @seed(job_seed)
    @settings(T.SLOW, max_examples=n)
    @given(strategies[name])
    def run(text):
        T.check_text(text, networks=networks)

    t = time.perf_counter()
    try:
        run()
        failure = None
    except BaseException as err:  # noqa: BLE001 - report it and go on with the next strategy
        text = "".join(traceback.format_exception(err))
        failure = text if len(text) < 6000 else text[:3000] + "\n...\n" + text[-3000:]
    report[name] = {**T.STATS, "seconds": round(time.perf_counter() - t, 1), "failure": failure}
print(json.dumps(report))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", type=int, default=24_000, help="cases in all (default 24000)")
    ap.add_argument("--jobs", type=int, default=2, help="parallel processes (default 2)")
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    per_job = {k: max(1, round(args.cases * share / args.jobs)) for k, share in SHARES.items()}
    t0 = time.perf_counter()
    procs = [subprocess.Popen([sys.executable, "-c", WORKER, str(ROOT / "tests"), json.dumps(per_job),
                               str(args.seed * 1000 + j)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
             for j in range(args.jobs)]
    totals: dict[str, Counter] = {k: Counter() for k in SHARES}
    failures = []
    for p in procs:
        out, _ = p.communicate()
        if p.returncode != 0 or not out.strip():
            failures.append(f"a job exited with status {p.returncode}")
            continue
        for name, r in json.loads(out.strip().splitlines()[-1]).items():
            failure = r.pop("failure")
            if failure:
                failures.append(f"{name}: {failure}")
            max_ms, seconds = r.pop("max_ms", 0), r.pop("seconds")
            totals[name].update(r)
            totals[name]["max_ms"] = max(totals[name]["max_ms"], max_ms)
            totals[name]["seconds"] = max(totals[name]["seconds"], seconds)
    wall = time.perf_counter() - t0
    cases = sum(t["cases"] for t in totals.values())
    print(f"fuzz_long: {cases} cases in {wall:.0f} s ({args.jobs} jobs, seed {args.seed})")
    for name, t in totals.items():
        outcomes = ", ".join(f"{k} {v}" for k, v in sorted(t.items()) if k not in ("cases", "max_ms", "seconds"))
        print(f"  {name:10s} {t['cases']:6d} cases in {t['seconds']:.0f} s, slowest {t['max_ms']} ms: {outcomes}")
    for f in failures:
        print(f"FAILED {f}", file=sys.stderr)
    print("result: " + ("FAILED" if failures else "no crash, no hang, every error positioned"))
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
