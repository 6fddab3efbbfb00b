"""The enabled decorator of another git ref (default ``main``) against this tree's, in ONE
process: the ref's ``perfmon`` is exported into a temporary directory and imported as
``perfmon_ref``, and the two record into one long session each, alternating.

Run from the repository root: ``python bench/client_ab.py [--ref main] [--ops 100000]
[--runs 7]``. Each run is ``--ops`` calls into ONE session with the garbage collector on,
after a full collection, timed in per-thread CPU time (``time.thread_time_ns``) so that
other work on the machine disturbs it less; ``nested`` runs the calls inside one
``monitor.operation()``. Prints the fastest and the median run of each in nanoseconds per
call and the fastest as a multiple of a no-op wrapper's, then one JSON object on the last
line.
"""

from __future__ import annotations

import argparse
import functools
import gc
import importlib
import io
import json
import re
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import perfmon  # noqa: E402

now = time.thread_time_ns


def export_ref(ref: str, into: Path) -> Any:
    """``perfmon`` as of ``ref``, imported as ``perfmon_ref`` from ``into``."""
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", ref, "perfmon"],
                             check=True, capture_output=True).stdout
    with tarfile.open(fileobj=io.BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    package = into / "perfmon_ref"
    (into / "perfmon").rename(package)
    for path in package.rglob("*.py"):
        text = path.read_text()
        text = re.sub(r"\bfrom perfmon([. ])", r"from perfmon_ref\1", text)
        text = re.sub(r"\bimport perfmon\b", "import perfmon_ref", text)
        path.write_text(text)
    sys.path.insert(0, str(into))
    return importlib.import_module("perfmon_ref")


def target(x: int = 1) -> int:
    return x


@functools.wraps(target)
def wrapped(*args: Any, **kwargs: Any) -> Any:
    return target(*args, **kwargs)


def loop(func: Any, n: int) -> int:
    start = now()
    for _ in range(n):
        func()
    return now() - start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--ref", default="main")
    parser.add_argument("--ops", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        packages = {"ref": export_ref(args.ref, Path(tmp)), "tree": perfmon}
        decorated = {k: m.monitor_performance(target) for k, m in packages.items()}
        for package in packages.values():
            package.get_performance_monitor().max_history = 1

        def run(key: str, nested: bool) -> float:
            monitor = packages[key].get_performance_monitor()
            gc.collect()
            with monitor.session("bench-ab") as session:
                if nested:
                    with monitor.operation("outer"):
                        elapsed = loop(decorated[key], args.ops)
                else:
                    elapsed = loop(decorated[key], args.ops)
            assert len(session._ops) == args.ops + nested, "a call was not recorded"
            monitor.clear_history()
            return elapsed / args.ops

        runs: dict[str, list[float]] = {name: [] for name in (
            "wraps", "ref", "tree", "ref_nested", "tree_nested")}
        for _ in range(args.runs):  # alternating, so drift hits both alike
            gc.collect()
            runs["wraps"].append(loop(wrapped, args.ops) / args.ops)
            for key in ("ref", "tree"):
                runs[key].append(run(key, False))
                runs[f"{key}_nested"].append(run(key, True))
    best = {name: min(values) for name, values in runs.items()}
    median = {name: statistics.median(values) for name, values in runs.items()}
    ratios = {name: best[name] / best["wraps"] for name in runs if name != "wraps"}
    for name in runs:
        shown = f"  {ratios[name]:5.2f}x the wrapper" if name in ratios else ""
        print(f"{name:>12}: {best[name]:7.1f} ns/call fastest, {median[name]:7.1f} median{shown}")
    print(json.dumps({
        "ref": args.ref,
        "ops": args.ops,
        "ns_per_call": {name: round(value, 1) for name, value in best.items()},
        "median_ns_per_call": {name: round(value, 1) for name, value in median.items()},
        "ratios_vs_wraps": {name: round(value, 2) for name, value in ratios.items()},
    }))


if __name__ == "__main__":
    main()
