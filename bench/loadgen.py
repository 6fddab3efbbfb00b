"""A bounded load of generator-like clients against the ingest API, and its bookkeeping.

Each client thread sends its own sessions over one keep-alive connection: most in one
request, every tenth in two parts (a running flush, then the finished session), every
tenth again twice (a resend). Clients retry like the SDK does: on connection errors, 429
(after Retry-After) and 5xx. What was sent is recorded so the database can be checked
against it: every session once, with every operation and API call.
"""

from __future__ import annotations

import gzip
import http.client
import json
import statistics
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import psycopg

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)
MAX_ATTEMPTS = 10


def session_parts(session_id: str, *, operations: int, api_calls: int,
                  in_parts: bool) -> list[dict]:
    def at(seconds: float) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat()

    ops = [{"id": f"o{i}", "parent_id": "root" if i else None,
            "name": "generate_full_script" if i == 0 else f"step{i % 5}",
            "started_at": at(i), "ended_at": at(i + 0.5), "duration_s": 0.5,
            "success": True, "metadata": {"i": i}} for i in range(operations)]
    calls = [{"id": f"c{i}", "operation_id": f"o{1 + i % max(1, operations - 1)}",
              "provider": "openai", "model": "gpt-4o-mini", "at": at(i),
              "latency_s": 0.4, "prompt_tokens": 500, "completion_tokens": 80}
             for i in range(api_calls)]
    final = {"schema_version": 1,
             "session": {"id": session_id, "episode": f"ep{hash(session_id) % 50:03d}",
                         "workflow": "script_generation", "status": "completed",
                         "started_at": at(0), "ended_at": at(operations)},
             "operations": ops, "api_calls": calls}
    if not in_parts:
        return [final]
    half = operations // 2
    running = {"schema_version": 1,
               "session": {**final["session"], "status": "running", "ended_at": None},
               "operations": ops[half:], "api_calls": calls[: api_calls // 2]}
    return [running, final]


@dataclass
class LoadResult:
    sessions: dict[str, tuple[int, int]] = field(default_factory=dict)  # id -> ops, calls
    latencies_s: list[float] = field(default_factory=list)
    statuses: Counter = field(default_factory=Counter)
    requests: int = 0
    gave_up: int = 0
    elapsed_s: float = 0.0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def operations(self) -> int:
        return sum(ops for ops, _ in self.sessions.values())

    def percentile_ms(self, q: float) -> float:
        ordered = sorted(self.latencies_s)
        if not ordered:
            return 0.0
        return round(ordered[min(len(ordered) - 1, int(len(ordered) * q))] * 1000, 1)

    def summary(self) -> dict:
        return {
            "sessions": len(self.sessions),
            "operations": self.operations,
            "requests": self.requests,
            "elapsed_s": round(self.elapsed_s, 2),
            "sessions_per_s": round(len(self.sessions) / self.elapsed_s, 1),
            "operations_per_s": round(self.operations / self.elapsed_s, 1),
            "p50_ms": round(statistics.median(self.latencies_s) * 1000, 1)
            if self.latencies_s else 0.0,
            "p99_ms": self.percentile_ms(0.99),
            "statuses": {str(k): v for k, v in sorted(self.statuses.items())},
            "server_errors": sum(v for k, v in self.statuses.items() if k >= 500),
            "gave_up": self.gave_up,
        }


def run_load(base_url: str, keys: list[str], *, threads: int, sessions_per_thread: int,
             operations: int, api_calls: int, time_limit_s: float) -> LoadResult:
    """Run the clients until each sent its sessions or the time limit passed."""
    result = LoadResult()
    deadline = time.monotonic() + time_limit_s
    host_port = base_url.removeprefix("http://")
    workers = [
        threading.Thread(target=_client, args=(host_port, keys[n % len(keys)], n,
                                               sessions_per_thread, operations, api_calls,
                                               deadline, result))
        for n in range(threads)
    ]
    began = time.monotonic()
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    result.elapsed_s = time.monotonic() - began
    return result


def _client(host_port: str, key: str, number: int, count: int, operations: int,
            api_calls: int, deadline: float, result: LoadResult) -> None:
    host, port = host_port.split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=60)
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json",
               "Content-Encoding": "gzip"}
    for i in range(count):
        if time.monotonic() > deadline:
            break
        session_id = f"load-{number}-{i}"
        parts = session_parts(session_id, operations=operations, api_calls=api_calls,
                              in_parts=i % 10 == 3)
        if i % 10 == 7:
            parts = parts + parts  # a resend of the same payload
        delivered = True
        for payload in parts:
            body = gzip.compress(json.dumps(payload).encode(), 5)
            conn, ok = _send(conn, host, int(port), body, headers, result)
            delivered = delivered and ok
        with result.lock:
            if delivered:
                result.sessions[session_id] = (operations, api_calls)
            else:
                result.gave_up += 1
    conn.close()


def _send(conn, host: str, port: int, body: bytes, headers: dict,
          result: LoadResult) -> tuple[http.client.HTTPConnection, bool]:
    for attempt in range(MAX_ATTEMPTS):
        started = time.perf_counter()
        try:
            conn.request("POST", "/api/v1/sessions", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            status = response.status
        except (OSError, http.client.HTTPException):
            conn.close()
            conn = http.client.HTTPConnection(host, port, timeout=60)
            with result.lock:
                result.statuses[0] += 1  # 0: no answer (connection refused or dropped)
            time.sleep(min(0.2 * 2 ** attempt, 3.0))
            continue
        with result.lock:
            result.requests += 1
            result.statuses[status] += 1
            result.latencies_s.append(time.perf_counter() - started)
        if status in (200, 201):
            return conn, True
        if status == 429:
            time.sleep(float(response.getheader("Retry-After", "1")))
        elif status >= 500:
            time.sleep(min(0.2 * 2 ** attempt, 3.0))
        else:
            return conn, False  # a 4xx other than 429 is final
    return conn, False


def verify_stored(database_url: str, expected: dict[str, tuple[int, int]]) -> dict:
    """Compare the database with what the clients delivered; returns the differences."""
    with psycopg.connect(database_url) as conn:
        rows = conn.execute(
            "SELECT s.external_id, count(*) OVER (PARTITION BY s.external_id), "
            "(SELECT count(*) FROM metrics_operation o WHERE o.session_id = s.id), "
            "(SELECT count(*) FROM metrics_apicall c WHERE c.session_id = s.id), "
            "s.status FROM metrics_session s WHERE s.external_id LIKE 'load-%%'"
        ).fetchall()
    stored = {row[0]: row[1:] for row in rows}
    missing = sorted(set(expected) - set(stored))
    unexpected = sorted(set(stored) - set(expected))
    wrong = sorted(
        sid for sid, (copies, ops, calls, status) in stored.items()
        if sid in expected and (copies != 1 or (ops, calls) != expected[sid]
                                or status != "completed")
    )
    return {"missing": missing, "unexpected": unexpected, "wrong": wrong,
            "stored": len(stored)}
