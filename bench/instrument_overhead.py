"""What ``perfmon.instrument_openai()`` adds to a model call, against the same call
uninstrumented, in one process.

Run from the repository root: ``python bench/instrument_overhead.py``. The real ``openai``
client calls the local fake provider (no latency: the bare cost of a call over loopback
HTTP is the reference, the hardest case for the target), served from a child process.

The figure ("ratio"): each round makes two fresh clients, instruments one of them with
``instrument_openai(client=...)`` (which one alternates by round) and calls them in
alternation inside a perfmon session (the other one is given the client package's own
methods, so it does not pass through the patch); a round's ratio is the instrumented
client's median call time over the other's, and the figure is the median over rounds.
Medians, because on a shared machine other processes stall single calls by milliseconds,
far more than the instrumentation costs.

A cross-check ("patch_toggled"): one client, rounds with the patch put on and taken off
between them (order flipping every round, a few untimed calls after each change, since
patching a class makes the interpreter re-learn the client's code), with the ratio of the
calling thread's CPU time too. "recording_us" is the instrumentation's own work for one
call, timed without the HTTP exchange in a tight loop (warm caches), and
"recording_in_call_us" the same work timed inside real instrumented calls, where it costs
several times more (the caches are cold after the HTTP exchange). The JSON carries the
machine's load average.
Target: at most 1.05 (5% more). Prints one line per measurement, then one JSON object on
the last line.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import statistics
import sys
import time
import types
from pathlib import Path
from typing import Any

# Run as a script from anywhere: the repository root holds the perfmon package.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import openai  # noqa: E402

import perfmon  # noqa: E402
from perfmon.demo.fake_provider import Completion, FakeProvider  # noqa: E402

ROUNDS = 20
CALLS_PER_ROUND = 30
WARMUP_CALLS = 30
RECORDING_CALLS = 2000
IN_CALL_CALLS = 600
PAIRED_ROUNDS = 20
PAIRED_SETTLE_CALLS = 5
SETTLE_CALLS = 10  # after each patch or unpatch, untimed
TIME_BUDGET_S = 120.0  # stop early (with fewer rounds) on a very busy machine
TARGET_RATIO = 1.05
MESSAGES = [{"role": "system", "content": "You write sitcom dialogue. " * 20},
            {"role": "user", "content": "Scene 3: Ada meets the landlord. " * 10}]
monitor = perfmon.get_performance_monitor()
monitor.max_history = 1


def plain_call(client: openai.OpenAI) -> None:
    client.chat.completions.create(model="gpt-4o", messages=MESSAGES)


def streamed_call(client: openai.OpenAI) -> None:
    stream = client.chat.completions.create(model="gpt-4o", messages=MESSAGES, stream=True,
                                            stream_options={"include_usage": True})
    for _ in stream:
        pass


def per_call_s(call: Any, client: openai.OpenAI,
               instrumented: bool) -> tuple[float, float, float]:
    """The median and the mean wall time of one call, and its median CPU time, over one
    round."""
    if instrumented:
        perfmon.instrument_openai()
    else:
        perfmon.uninstrument_openai()
    with monitor.session("bench") as session:
        # Patching a class makes the interpreter drop what it had specialized for the client
        # classes; a generator patches once, so the calls that re-learn it are not timed.
        for _ in range(SETTLE_CALLS):
            call(client)
        times, cpu = [], []
        for _ in range(CALLS_PER_ROUND):
            started, started_cpu = time.perf_counter(), time.thread_time()
            call(client)
            cpu.append(time.thread_time() - started_cpu)
            times.append(time.perf_counter() - started)
    recorded = len(session.api_call_records)
    assert recorded == (SETTLE_CALLS + CALLS_PER_ROUND if instrumented else 0), recorded
    return statistics.median(times), statistics.fmean(times), statistics.median(cpu)


def measure(call: Any, client: openai.OpenAI, deadline: float) -> dict[str, float]:
    for _ in range(WARMUP_CALLS):
        call(client)
    ratios, mean_ratios, cpu_ratios, plain, instrumented = [], [], [], [], []
    for round_number in range(ROUNDS):
        if round_number >= 3 and time.monotonic() > deadline:
            break
        # ABBA: the order flips every round, so a drift in the machine's speed favours neither.
        if round_number % 2:
            with_perfmon, with_perfmon_mean, with_cpu = per_call_s(call, client, True)
            bare, bare_mean, bare_cpu = per_call_s(call, client, False)
        else:
            bare, bare_mean, bare_cpu = per_call_s(call, client, False)
            with_perfmon, with_perfmon_mean, with_cpu = per_call_s(call, client, True)
        plain.append(bare)
        instrumented.append(with_perfmon)
        ratios.append(with_perfmon / bare)
        mean_ratios.append(with_perfmon_mean / bare_mean)
        cpu_ratios.append(with_cpu / bare_cpu)
    perfmon.uninstrument_openai()
    return {
        "ratio": round(statistics.median(ratios), 4),
        "ratio_of_means": round(statistics.median(mean_ratios), 4),
        "cpu_ratio": round(statistics.median(cpu_ratios), 4),
        "uninstrumented_ms": round(statistics.median(plain) * 1000, 4),
        "instrumented_ms": round(statistics.median(instrumented) * 1000, 4),
        "added_us": round((statistics.median(instrumented) - statistics.median(plain)) * 1e6, 1),
        "rounds": len(ratios),
    }


def paired_round(call: Any, url: str, instrument_first: bool) -> tuple[float, float]:
    """Two fresh clients, one instrumented (``client=``), called in alternation: the median
    call time of each. The patch stays installed; the other client is given the
    package's own methods (``unpatched``), so it does not pass through it."""
    clients = [openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
               for _ in range(2)]
    perfmon.instrument_openai(clients[0 if instrument_first else 1])
    unpatched(clients[1 if instrument_first else 0])
    times: list[list[float]] = [[], []]
    with monitor.session("bench-paired") as session:
        for client in clients:
            for _ in range(PAIRED_SETTLE_CALLS):  # connection set up, code warm
                call(client)
        for n in range(CALLS_PER_ROUND):
            for index in ((0, 1) if n % 2 else (1, 0)):
                started = time.perf_counter()
                call(clients[index])
                times[index].append(time.perf_counter() - started)
    assert len(session.api_call_records) == PAIRED_SETTLE_CALLS + CALLS_PER_ROUND
    for client in clients:
        client.close()
    first, second = (statistics.median(t) for t in times)
    return (first, second) if instrument_first else (second, first)


def unpatched(client: openai.OpenAI) -> None:
    """Give ``client`` the client package's own methods where the patch wraps them, bound on
    the object (found before the class's), so that it runs what an uninstrumented process
    runs rather than passing through the patch (which costs a little: the reference would
    be slowed and the ratio flattered)."""
    from openai import _base_client

    for owner, name in ((_base_client.SyncAPIClient, "request"),
                        (_base_client.BaseClient, "_build_request")):
        original = owner.__dict__[name].__perfmon_original__
        setattr(client, name, types.MethodType(original, client))


def measure_paired(call: Any, url: str, deadline: float) -> dict[str, float]:
    ratios, plain, instrumented = [], [], []
    for round_number in range(PAIRED_ROUNDS):
        if round_number >= 3 and time.monotonic() > deadline:
            break
        with_perfmon, bare = paired_round(call, url, instrument_first=bool(round_number % 2))
        plain.append(bare)
        instrumented.append(with_perfmon)
        ratios.append(with_perfmon / bare)
    perfmon.uninstrument_openai()
    return {
        "ratio": round(statistics.median(ratios), 4),
        "uninstrumented_ms": round(statistics.median(plain) * 1000, 4),
        "instrumented_ms": round(statistics.median(instrumented) * 1000, 4),
        "rounds": len(ratios),
    }


def recording_cost_s(client: openai.OpenAI) -> float:
    """The instrumentation's own work for one call (start, read the answer, record), timed
    without the HTTP exchange around it, on the arguments and answer of a real call."""
    from openai import _base_client

    from perfmon.integrations import openai as integration

    seen: dict[str, Any] = {}
    original = _base_client.SyncAPIClient.request

    def spy(self: Any, *args: Any, **kwargs: Any) -> Any:
        seen.update(args=args, kwargs=kwargs, result=original(self, *args, **kwargs))
        return seen["result"]

    _base_client.SyncAPIClient.request = spy
    try:
        plain_call(client)
    finally:
        _base_client.SyncAPIClient.request = original
    patch = integration._INSTRUMENTATION
    patch.instrument(integration._CLASSES, client)
    best = float("inf")
    for _ in range(5):
        with monitor.session("bench-recording"):
            started = time.perf_counter()
            for _ in range(RECORDING_CALLS):
                call = patch.begin(client, seen["args"], seen["kwargs"])
                patch.finish(call, seen["result"], integration._CLASSES)
            best = min(best, (time.perf_counter() - started) / RECORDING_CALLS)
    patch.uninstrument()
    return best


def recording_in_call_s(client: openai.OpenAI) -> tuple[float, float]:
    """The instrumentation's own work (start, read the answer, record) timed inside real
    instrumented calls: the median and the mean per call. The tight loop of
    ``recording_cost_s`` runs on warm caches; inside a call, after the HTTP exchange, the
    same work costs several times more. Timing adds two clock reads per part."""
    from perfmon.integrations import openai as integration

    patch = integration._INSTRUMENTATION
    begin, finish = patch.begin, patch.finish
    spent: list[int] = []
    clock = time.perf_counter_ns

    def timed_begin(*args: Any) -> Any:
        started = clock()
        call = begin(*args)
        spent.append(clock() - started)
        return call

    def timed_finish(*args: Any) -> Any:
        started = clock()
        result = finish(*args)
        spent[-1] += clock() - started
        return result

    perfmon.instrument_openai(client)
    patch.begin, patch.finish = timed_begin, timed_finish  # shadow the methods
    try:
        with monitor.session("bench-recording-in-call"):
            for _ in range(SETTLE_CALLS):
                plain_call(client)
            spent.clear()
            for _ in range(IN_CALL_CALLS):
                plain_call(client)
    finally:
        del patch.begin, patch.finish
        perfmon.uninstrument_openai()
    assert len(spent) == IN_CALL_CALLS, len(spent)
    return statistics.median(spent) / 1e9, statistics.fmean(spent) / 1e9


def serve(pipe: Any) -> None:
    """The fake provider in its own process: its work does not compete for our GIL."""
    with FakeProvider() as provider:
        provider.completion = Completion(prompt_tokens=420, completion_tokens=60,
                                         cached_tokens=256, text="word " * 30)
        pipe.send(provider.openai_base_url)
        pipe.recv()  # until told to stop


def main() -> int:
    started = time.monotonic()
    deadline = started + TIME_BUDGET_S / 4
    ours, theirs = multiprocessing.Pipe()
    server = multiprocessing.get_context("fork").Process(target=serve, args=(theirs,),
                                                         daemon=True)
    server.start()
    try:
        url = ours.recv()
        client = openai.OpenAI(base_url=url, api_key="sk-bench", max_retries=0)
        for _ in range(WARMUP_CALLS):
            plain_call(client)
        results = {"chat_completion": measure_paired(plain_call, url, deadline)}
        deadline = time.monotonic() + TIME_BUDGET_S / 4
        results["chat_completion_stream"] = measure_paired(streamed_call, url, deadline)
        deadline = time.monotonic() + TIME_BUDGET_S / 4
        toggled = {"chat_completion": measure(plain_call, client, deadline)}
        deadline = time.monotonic() + TIME_BUDGET_S / 4
        toggled["chat_completion_stream"] = measure(streamed_call, client, deadline)
        recording = recording_cost_s(client)
        in_call, in_call_mean = recording_in_call_s(client)
        client.close()
    finally:
        ours.send("stop")
        server.join(10)
    for name, figures in results.items():
        print(f"{name:>24}: {figures['uninstrumented_ms']:.3f} ms bare, "
              f"{figures['instrumented_ms']:.3f} ms instrumented, ratio {figures['ratio']:.4f} "
              f"({figures['rounds']} rounds of paired clients)")
    for name, figures in toggled.items():
        print(f"{name + ' (toggled)':>34}: ratio {figures['ratio']:.4f}, client CPU time "
              f"ratio {figures['cpu_ratio']:.4f} ({figures['rounds']} rounds)")
    bare = results["chat_completion"]["uninstrumented_ms"] / 1000
    print(f"{'recording work':>24}: {recording * 1e6:.1f} us a call, "
          f"{(bare + recording) / bare:.4f}x the bare call's median (tight loop)")
    print(f"{'recording in a call':>24}: {in_call * 1e6:.1f} us median, "
          f"{in_call_mean * 1e6:.1f} us mean, timed inside real instrumented calls")
    met = all(figures["ratio"] <= TARGET_RATIO for figures in results.values())
    print(f"{'target':>24}: instrumented <= {TARGET_RATIO}x uninstrumented: "
          f"{'met' if met else 'MISSED'}")
    print(json.dumps({
        "bench": "instrument_overhead",
        "reference": "the same openai client call against the local fake provider, from an "
                     "uninstrumented client, same run, call by call in alternation",
        "ratio": max(figures["ratio"] for figures in results.values()),
        "target_ratio": TARGET_RATIO,
        "met": met,
        "results": results,
        "patch_toggled": toggled,
        "recording_us": round(recording * 1e6, 1),
        "recording_ratio": round((bare + recording) / bare, 4),
        "recording_in_call_us": round(in_call * 1e6, 1),
        "recording_in_call_mean_us": round(in_call_mean * 1e6, 1),
        "elapsed_s": round(time.monotonic() - started, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),  # 2 cores: above 2, calls wait
    }))
    return 0


if __name__ == "__main__":
    sys.exit(main())
