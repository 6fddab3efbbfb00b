"""What the SDK costs the generator: memory per operation, and what importing it loads."""

from __future__ import annotations

import gc
import json
import tracemalloc

from perfmon import get_performance_monitor, monitor_performance
from tests.sdk.helpers import isolated_perfmon, run_python  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


@monitor_performance
def tiny() -> None:
    return None


def test_a_recorded_operation_costs_under_200_bytes():
    calls = 20_000
    gc.collect()
    tracemalloc.start()
    try:
        with monitor.session("ep001") as session:
            before = tracemalloc.get_traced_memory()[0]
            for _ in range(calls):
                tiny()
            after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert len(session.operations) == calls
    assert (after - before) / calls < 200


def test_importing_the_sdk_loads_only_the_standard_library_and_never_django():
    result = run_python(
        "import json, sys\n"
        "before = set(sys.modules)\n"
        "import perfmon\n"
        "loaded = {m.split('.')[0] for m in set(sys.modules) - before}\n"
        "print(json.dumps(sorted(loaded - set(sys.stdlib_module_names) - {'perfmon'})))\n"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_importing_the_sdk_starts_no_threads():
    result = run_python(
        "import threading, perfmon\n"
        "print(threading.active_count())\n"
    )
    assert result.stdout.strip() == "1"


PEAK_MEMORY_SCRIPT = """
import json
import perfmon

monitor = perfmon.get_performance_monitor()
with monitor.session("ep001") as session:
    running = session.to_dict()["session"].get("peak_memory_bytes")
    block = b"x" * 200_000_000  # touched, so resident
    del block
print(json.dumps({"running": running, "finished": session.peak_memory_bytes,
                  "sent": session.to_dict()["session"].get("peak_memory_bytes")}))
"""


def test_the_peak_memory_of_the_generator_process_is_recorded_and_sent():
    result = run_python(PEAK_MEMORY_SCRIPT)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout.strip().splitlines()[-1])

    # A fresh interpreter peaks well under 100 MB before the 200 MB block, above it after.
    assert 0 < report["running"] < 100_000_000
    assert report["finished"] >= 200_000_000
    assert report["sent"] == report["finished"]  # kept from the session's end
