"""Export of one 1,000,000-operation session by the SDK: the export thread's time to encode
and send it, and the memory that takes beside what the session itself holds.

The session is recorded through the public API (nested ``monitor.operation`` blocks with
small metadata, decorated calls, an API call every 100 operations) and sent to a stub HTTP
server on loopback that reads each request and answers 200 at once. Each mode runs in its own
child process, so that one's memory high-water mark does not hide the other's:

* ``legacy``: the encoding the SDK used before streaming (``to_dict()`` with metadata
  measured value by value and whole, one JSON document, halved and re-serialised until each
  part fits, then gzip), kept here for comparison;
* ``current``: the exporter as it is.

Figures per mode: ``export_thread_s`` (``time.thread_time`` of the exporter's thread over
the export), ``export_wall_s``, ``recorded_mib`` (resident memory the recorded session
added), ``export_extra_mib`` (the resident high-water mark during the export above that), and
``memory_ratio`` = (recorded + extra) / recorded, against the targets of 10 s and 2x. The last
line is one JSON object with both modes.

    python bench/sdk_export.py [--operations 1000000] [--modes legacy,current]
"""

from __future__ import annotations

import argparse
import gzip
import http.server
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TARGET_S = 10.0
TARGET_RATIO = 2.0
MiB = 1024 * 1024


# -- the stub server ---------------------------------------------------------------------------

class _Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
        left = int(self.headers.get("Content-Length") or 0)
        while left:
            chunk = self.rfile.read(min(left, 1 << 16))
            if not chunk:
                break
            left -= len(chunk)
            self.server.bytes_in += len(chunk)  # type: ignore[attr-defined]
        self.server.requests += 1  # type: ignore[attr-defined]
        body = b"{}"
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


def start_sink() -> http.server.ThreadingHTTPServer:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    server.bytes_in = 0  # type: ignore[attr-defined]
    server.requests = 0  # type: ignore[attr-defined]
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


# -- memory ------------------------------------------------------------------------------------

_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def rss_bytes() -> int:
    try:
        with open("/proc/self/statm") as statm:
            return int(statm.read().split()[1]) * _PAGE
    except OSError:
        import resource

        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


class PeakSampler:
    """The highest resident size seen while running (sampled every few milliseconds)."""

    def __init__(self) -> None:
        self.peak = rss_bytes()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, rss_bytes())

    def __enter__(self) -> PeakSampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, rss_bytes())


# -- the encoding before streaming, for comparison ----------------------------------------------

def legacy_fit_metadata(meta: dict[Any, Any] | None, max_bytes: int) -> dict[str, Any]:
    """perfmon._wire.fit_metadata as it was: every value measured, and the whole."""
    from perfmon import _wire

    if not meta:
        return {}
    fitted = {
        str(key)[:_wire.NAME_MAX]: _wire._json_value(value, depth=2)
        for key, value in list(meta.items())[:_wire.MAX_KEYS]
    }
    sizes = {key: _wire._size(value) for key, value in fitted.items()}
    total = _wire._size(fitted)
    for key in sorted(sizes, key=sizes.get, reverse=True):
        if total <= max_bytes:
            break
        note = f"<dropped: {sizes[key]} bytes>"
        _wire.note_fitted()
        total -= sizes[key] - _wire._size(note)
        fitted[key] = note
    return fitted


def use_legacy_metadata() -> None:
    from perfmon import _core, _session

    _core.fit_metadata = legacy_fit_metadata  # type: ignore[assignment]
    _session.fit_metadata = legacy_fit_metadata  # type: ignore[assignment]


def legacy_export(exporter: Any, session: Any, kind: str) -> None:
    from perfmon import _health
    from perfmon._http import dumps
    from perfmon._wire import MAX_API_CALLS, MAX_OPERATIONS

    limit = exporter._max_payload_bytes

    def pieces(payload: dict[str, Any]) -> list[tuple[dict[str, Any], bytes]]:
        ops, calls = payload["operations"], payload["api_calls"]
        items = len(ops) + len(calls)
        if items > 1 and (len(ops) > MAX_OPERATIONS or len(calls) > MAX_API_CALLS):
            return halves(payload)
        raw = dumps(payload)
        if len(raw) > limit and items > 1:
            return halves(payload)
        return [(payload, raw)]

    def halves(payload: dict[str, Any]) -> list[tuple[dict[str, Any], bytes]]:
        ops, calls = payload["operations"], payload["api_calls"]
        half = (len(ops) + len(calls)) // 2
        cut = max(0, half - len(ops))
        first = {**payload, "operations": ops[:half], "api_calls": calls[:cut]}
        second = {**payload, "operations": ops[half:], "api_calls": calls[cut:]}
        return pieces(first) + pieces(second)

    payload = session.to_dict()
    payload["session"]["sdk"] = _health.report(session, exporter.stats())
    parts = pieces(payload)
    if len(parts) == 1:
        bodies = [gzip.compress(parts[0][1], compresslevel=6, mtime=0)]
    else:
        count = len(parts)
        bodies = [gzip.compress(dumps({**piece, "session": {
            **piece["session"], "part": {"index": index, "count": count}}}),
            compresslevel=6, mtime=0) for index, (piece, _) in enumerate(parts, 1)]
    for body in bodies:
        exporter._deliver(body, retry=True)


# -- one mode, in a child process -----------------------------------------------------------------

def record(operations: int) -> Any:
    import perfmon

    monitor = perfmon.get_performance_monitor()

    @perfmon.monitor_performance("line.render")
    def render() -> None:
        return None

    per_scene = 500  # 1 scene + 349 lines with metadata + 150 decorated calls
    scenes = max(1, operations // per_scene)
    with monitor.session("bench-sdk-export", episode="ep-bench", workflow="bench",
                         metadata={"kind": "long-episode", "scenes": scenes}) as session:
        done = 0
        for scene in range(scenes):
            with monitor.operation("scene", scene=scene, act=scene // 100):
                done += 1
                for line in range(per_scene - 1):
                    if done >= operations:
                        break
                    done += 1
                    if line % 7 < 5:
                        with monitor.operation("line", n=line, speaker="ALICE"):
                            if line % 100 == 0:
                                monitor.record_api_call(
                                    model="gpt-4o-mini", prompt_tokens=120,
                                    completion_tokens=40, latency_s=0.25)
                    else:
                        render()
    return session


def run_mode(mode: str, operations: int) -> dict[str, Any]:
    import gc

    import perfmon
    from perfmon import _config

    if mode == "legacy":
        use_legacy_metadata()
    sink = start_sink()
    # Sessions are submitted as they end; hold the worker until the session is recorded.
    assert perfmon.configure(url=f"http://127.0.0.1:{sink.server_port}", api_key="bench",
                             spool_dir=False, max_retries=0, timeout=60.0, exit_timeout=60.0)
    exporter = _config.get_exporter()
    assert exporter is not None
    gate = threading.Event()
    timing: dict[str, float] = {}
    inner = exporter._export if mode == "current" else (
        lambda session, kind: legacy_export(exporter, session, kind))

    def timed_export(session: Any, kind: str) -> None:
        gate.wait()
        gc.collect()
        timing["rss_before"] = rss_bytes()
        with PeakSampler() as sampler:
            cpu, wall = time.thread_time(), time.perf_counter()
            inner(session, kind)
            timing["thread_s"] = time.thread_time() - cpu
            timing["wall_s"] = time.perf_counter() - wall
        timing["peak"] = sampler.peak

    exporter._export = timed_export  # type: ignore[method-assign]
    gc.collect()
    baseline = rss_bytes()
    started = time.perf_counter()
    session = record(operations)
    record_s = time.perf_counter() - started
    gate.set()
    assert perfmon.flush(600), "export did not finish"
    recorded = timing["rss_before"] - baseline
    extra = max(0, int(timing["peak"] - timing["rss_before"]))
    ratio = (recorded + extra) / recorded if recorded > 0 else float("inf")
    stats = perfmon.stats()
    result = {
        "mode": mode,
        "operations": len(session._ops),
        "api_calls": session.api_calls,
        "record_s": round(record_s, 2),
        "export_thread_s": round(timing["thread_s"], 2),
        "export_wall_s": round(timing["wall_s"], 2),
        "requests": sink.requests,  # type: ignore[attr-defined]
        "sent_mib": round(sink.bytes_in / MiB, 2),  # type: ignore[attr-defined]
        "recorded_mib": round(recorded / MiB, 1),
        "export_extra_mib": round(extra / MiB, 1),
        "peak_rss_mib": round(timing["peak"] / MiB, 1),
        "memory_ratio": round(ratio, 2),
        "time_vs_target": round(timing["thread_s"] / TARGET_S, 2),
        "memory_vs_target": round(ratio / TARGET_RATIO, 2),
        "sent": stats["sent"], "dropped": stats["dropped"],
    }
    perfmon.shutdown() if hasattr(perfmon, "shutdown") else None
    sink.shutdown()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--operations", type=int, default=1_000_000)
    parser.add_argument("--modes", default="legacy,current")
    parser.add_argument("--child", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        print(json.dumps(run_mode(args.child, args.operations)), flush=True)
        return
    results = {}
    for mode in args.modes.split(","):
        out = subprocess.run(
            [sys.executable, __file__, "--child", mode, "--operations", str(args.operations)],
            check=True, capture_output=True, text=True, cwd=ROOT,
            env={k: v for k, v in os.environ.items() if not k.startswith("PERFMON_")},
        ).stdout
        line = out.strip().splitlines()[-1]
        print(line, flush=True)
        results[mode] = json.loads(line)
    print(json.dumps({"bench": "sdk_export", "targets": {"export_thread_s": TARGET_S,
                                                         "memory_ratio": TARGET_RATIO},
                      **results}))


if __name__ == "__main__":
    main()
