"""Shared helpers for the benchmarks: child processes, timing, medians, the machine description.

Every script in ``bench/`` runs on its own (``python bench/startup.py``) and prints a table; with
``--json FILE`` it also writes its results for ``bench/run_all.py``, which renders
``docs/benchmarks.md``.  Times are medians of interleaved repetitions: on a shared machine only
medians and ratios measured side by side mean anything.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
PYTHON = sys.executable


def archdsl_cmd() -> list[str]:
    """How a user runs archdsl: the console script next to this interpreter (not a pyenv shim)."""
    script = Path(PYTHON).parent / "archdsl"
    return [PYTHON, str(script)] if script.is_file() else [PYTHON, "-m", "archdsl"]


def child_env() -> dict[str, str]:
    """The environment of timed child processes: bytecode cached, as on a user's machine.

    Some environments set PYTHONDONTWRITEBYTECODE, so an editable install recompiles every
    module of archdsl in every process while torch's site-packages come precompiled.  The
    children write their bytecode under one private cache directory instead (the warm-up runs
    fill it), which treats both sides of every comparison alike and writes nothing into the
    source tree.
    """
    env = dict(os.environ)
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    env["PYTHONPYCACHEPREFIX"] = str(Path(tempfile.gettempdir()) / f"archdsl-bench-pyc-{os.getuid()}")
    env.setdefault("OMP_NUM_THREADS", "2")
    return env


def run_timed(argv: Sequence[str], cwd: Path | str = ROOT, env: dict | None = None) -> tuple[float, float]:
    """Run a command to completion; (wall seconds, CPU seconds user+system).  Raises on failure."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    r = subprocess.run(list(argv), cwd=cwd, env=env or child_env(), stdout=subprocess.DEVNULL,
                       stderr=subprocess.PIPE, text=True)
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed ({r.returncode}):\n{r.stderr[-3000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return wall, cpu


def interleaved(commands: dict[str, Sequence[str]], runs: int, warmup: int = 1,
                cwd: Path | str = ROOT, log: Callable[[str], None] | None = None) -> dict[str, dict]:
    """Time each command ``runs`` times, in a fresh random order every round (after ``warmup``
    untimed rounds), so a slow spell of a shared machine hits every command alike."""
    env = child_env()
    for _ in range(warmup):
        for argv in commands.values():
            run_timed(argv, cwd, env)
    walls: dict[str, list[float]] = {k: [] for k in commands}
    cpus: dict[str, list[float]] = {k: [] for k in commands}
    for i in range(runs):
        order = list(commands)
        random.shuffle(order)
        for k in order:
            w, c = run_timed(commands[k], cwd, env)
            walls[k].append(w)
            cpus[k].append(c)
        if log:
            log(f"  round {i + 1}/{runs}")
    return {k: {"wall": stats(walls[k]), "cpu": stats(cpus[k])} for k in commands}


def stats(xs: Sequence[float]) -> dict:
    xs = sorted(xs)
    q = statistics.quantiles(xs, n=4) if len(xs) >= 2 else [xs[0]] * 3
    return {"median": statistics.median(xs), "q1": q[0], "q3": q[2], "min": xs[0], "n": len(xs)}


def load_average() -> str:
    try:
        return " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:  # pragma: no cover - not on every platform
        return "n/a"


def _version(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "not installed"


def machine() -> dict:
    """CPU model, cores, RAM, versions; read without importing torch."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = "n/a"
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                ram = f"{int(line.split()[1]) / 2**20:.1f} GiB"
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "cpu": cpu, "cores": os.cpu_count(), "usable_cores": usable, "ram": ram,
        "os": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "versions": {d: _version(d) for d in ("archdsl", "torch", "torchvision", "torchinfo", "onnx",
                                              "onnxruntime", "numpy", "lark", "networkx")},
        "load_average": load_average(),
    }


def ratio(a: float, b: float) -> float:
    return a / b if b else float("nan")


def cli(description: str) -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--quick", action="store_true", help="fewer repetitions (a smoke run)")
    return ap


def save(results: dict, path: str | None) -> None:
    results = {**results, "date": time.strftime("%Y-%m-%d %H:%M %Z"), "load_average_end": load_average()}
    if path:
        Path(path).write_text(json.dumps(results, indent=2))


def fmt_s(x: float) -> str:
    return f"{x * 1e3:.0f} ms" if x < 10 else f"{x:.1f} s"


def table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A Markdown table (also readable as plain text)."""
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    line = lambda r: "| " + " | ".join(str(c).ljust(w) for c, w in zip(r, widths)) + " |"
    return "\n".join([line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])
