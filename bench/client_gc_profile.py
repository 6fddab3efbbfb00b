"""Where the time of a decorated call goes when ONE session accumulates 100,000 operations.

Run from the repository root: ``python bench/client_gc_profile.py``. Runs the same 100,000
calls into one session with the garbage collector on and off (interleaved, fastest of a few
runs each), records every collection the interpreter makes through ``gc.callbacks`` (count and
time per generation), and reports the share of the enabled decorator's cost that is
collection. The reference is a no-op wrapper over the same function in the same run. Prints
one JSON object on its last line.
"""

from __future__ import annotations

import functools
import gc
import json
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import perfmon  # noqa: E402

OPS = 100_000
RUNS = 5
now = time.perf_counter_ns
monitor = perfmon.get_performance_monitor()
monitor.max_history = 1


def target(x: int = 1) -> int:
    return x


@functools.wraps(target)
def wrapped(*args: Any, **kwargs: Any) -> Any:
    return target(*args, **kwargs)


decorated = perfmon.monitor_performance(target)


class Collections:
    """Collections by generation during one run: count and nanoseconds."""

    def __init__(self) -> None:
        self.count = [0, 0, 0]
        self.ns = [0, 0, 0]
        self._start = 0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = now()
        else:
            self.count[info["generation"]] += 1
            self.ns[info["generation"]] += now() - self._start


def run(func: Any, *, collector: bool, in_session: bool) -> tuple[float, Collections]:
    seen = Collections()
    gc.collect()
    if not collector:
        gc.disable()
    gc.callbacks.append(seen)
    try:
        if in_session:
            with monitor.session("bench-long") as session:
                start = now()
                for _ in range(OPS):
                    func()
                elapsed = now() - start
            # Counted without reading ``operations``: that builds 100,000 objects, and its
            # collections would be charged to the calls.
            assert len(session._ops) == OPS
        else:
            start = now()
            for _ in range(OPS):
                func()
            elapsed = now() - start
    finally:
        gc.callbacks.remove(seen)
        gc.enable()
        monitor.clear_history()
    return elapsed / OPS, seen


def main() -> None:
    best: dict[str, float] = {}
    profile: Collections | None = None
    for _ in range(RUNS):
        for name, func, collector, session in (
            ("wraps", wrapped, True, False),
            ("enabled_gc_on", decorated, True, True),
            ("enabled_gc_off", decorated, False, True),
        ):
            ns, seen = run(func, collector=collector, in_session=session)
            if ns < best.get(name, float("inf")):
                best[name] = ns
                if name == "enabled_gc_on":
                    profile = seen
    assert profile is not None
    gc_ns_per_call = sum(profile.ns) / OPS
    result = {
        "ns_per_call": {k: round(v, 1) for k, v in best.items()},
        "ratios": {
            "enabled_gc_on_vs_wraps": round(best["enabled_gc_on"] / best["wraps"], 2),
            "enabled_gc_off_vs_wraps": round(best["enabled_gc_off"] / best["wraps"], 2),
        },
        "collections": {f"gen{g}": {"count": profile.count[g],
                                    "ms": round(profile.ns[g] / 1e6, 2)} for g in range(3)},
        "gc_ns_per_call": round(gc_ns_per_call, 1),
        "gc_share_of_enabled": round(gc_ns_per_call / best["enabled_gc_on"], 3),
    }
    for name, value in best.items():
        print(f"{name:>16}: {value:8.1f} ns/call")
    print(f"{'collections':>16}: {result['collections']}")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
