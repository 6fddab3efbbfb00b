"""OTLP/HTTP receiver throughput against the raw PostgreSQL COPY rate of the same rows.

Starts gunicorn (BENCH_WORKERS sync workers, 2 by default) on a scratch PostgreSQL
database and posts protobuf ExportTraceServiceRequests, as the OTLP/HTTP exporter sends
them (uncompressed, its default), from concurrent clients for a bounded time. Each
request is one trace of SPANS_PER_REQUEST spans: a root naming the session and GenAI
chat spans written the way OpenLLMetry's OpenAI instrumentation writes them. It checks
that every span was stored, then COPYs the very rows the receiver stored (operations and
API calls) into scratch tables with the same indexes, one transaction per session as
ingest does, once without and once with the real tables' foreign keys. Prints one JSON
object on its last line: spans_per_s_http, spans_per_s_copy, ratio (http / copy),
p50_ms, p99_ms, and the decode-and-map time of one request beside a worker's time.

The machine is shared, so load from elsewhere can shift between the HTTP phase and the
COPY phase: the run alternates them in ROUNDS rounds (HTTP for a while, then COPY of the
rows that round stored) and reports the median of the rounds' ratios.

Needs PostgreSQL (BENCH_PG, default postgres://postgres@127.0.0.1:5432) and Redis
(BENCH_REDIS, default redis://127.0.0.1:6379/13) on loopback; BENCH_DB names the scratch
database it drops and recreates.
"""

import http.client
import json
import os
import statistics
import subprocess
import sys
import threading
import time

import psycopg
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from servers import ROOT, Gunicorn, create_api_key, manage, recreate_database, server_env

sys.path.insert(0, str(ROOT))
from ingest.otlp import decode, mapping  # noqa: E402  (no Django needed for these two)

PG = os.environ.get("BENCH_PG", "postgres://postgres@127.0.0.1:5432")
REDIS = os.environ.get("BENCH_REDIS", "redis://127.0.0.1:6379/13")
DB_NAME = os.environ.get("BENCH_DB", "perfmon_bench_otlp")
SPANS_PER_REQUEST = 1000
CLIENTS = int(os.environ.get("BENCH_CLIENTS", "4"))
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "30"))  # over all rounds
MAX_REQUESTS = 1000  # per run, whatever the duration
ROUNDS = 5
T0_NS = 1_795_000_000 * 10**9
OP_COLUMNS = (
    "session_id, client_id, parent_client_id, parent_id, name, started_at, ended_at, "
    "duration_s, success, error, metadata, cache_hits, cache_misses"
)
CALL_COLUMNS = (
    "session_id, client_id, operation_client_id, operation_id, provider, model, at, "
    "latency_s, prompt_tokens, completion_tokens, cached_tokens, cache_write_tokens, "
    "cache_write_1h_tokens, reasoning_tokens, total_tokens, cost_usd, cost_source, "
    "prompt_hash, error, error_message, streamed, time_to_first_token_s, attempts"
)


def _kv(key: str, value) -> KeyValue:
    if isinstance(value, bool):
        return KeyValue(key=key, value=AnyValue(bool_value=value))
    if isinstance(value, int):
        return KeyValue(key=key, value=AnyValue(int_value=value))
    return KeyValue(key=key, value=AnyValue(string_value=value))


def export_request(n: int, prefix: str = "bench") -> bytes:
    """One trace: a root span naming session <prefix><n> and its GenAI chat spans."""
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.extend([
        _kv("service.name", "script_generation"), _kv("service.version", "generator 1.4.2"),
        _kv("deployment.environment.name", "bench"), _kv("host.name", "render-01"),
        _kv("telemetry.sdk.name", "opentelemetry"), _kv("telemetry.sdk.language", "python"),
    ])
    spans = resource_spans.scope_spans.add()
    spans.scope.name = "opentelemetry.instrumentation.openai.v1"
    trace_id = n.to_bytes(16, "big")
    root = spans.spans.add(trace_id=trace_id, span_id=(1).to_bytes(8, "big"),
                           name="generate_full_script", start_time_unix_nano=T0_NS,
                           end_time_unix_nano=T0_NS + SPANS_PER_REQUEST * 10**9)
    root.attributes.extend([_kv("session.id", f"{prefix}{n}"), _kv("perfmon.episode", "ep001")])
    for i in range(2, SPANS_PER_REQUEST + 1):
        chat = spans.spans.add(
            trace_id=trace_id, span_id=i.to_bytes(8, "big"), parent_span_id=root.span_id,
            name="openai.chat", start_time_unix_nano=T0_NS + i * 10**9 // 2,
            end_time_unix_nano=T0_NS + i * 10**9 // 2 + 1_200_000_000, kind=3,
        )
        chat.attributes.extend([
            _kv("llm.request.type", "chat"), _kv("gen_ai.system", "openai"),
            _kv("gen_ai.request.model", "gpt-4o-mini"), _kv("gen_ai.response.model",
                                                               "gpt-4o-mini"),
            _kv("gen_ai.usage.input_tokens", 1200), _kv("gen_ai.usage.output_tokens", 130),
            _kv("gen_ai.usage.cache_read.input_tokens", 1000),
            _kv("gen_ai.usage.total_tokens", 1330), _kv("llm.is_streaming", False),
            _kv("gen_ai.openai.api_base", "http://127.0.0.1:9/v1/"), _kv("scene", i % 12),
        ])
        chat.status.code = 1
    return request.SerializeToString()


def run_clients(port: int, key: str, bodies: list[bytes],
                duration_s: float) -> tuple[float, list[float], int]:
    latencies: list[float] = []
    failures = 0
    lock = threading.Lock()
    next_body = iter(range(len(bodies)))
    deadline = time.monotonic() + duration_s

    def client() -> None:
        nonlocal failures
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/x-protobuf"}
        while time.monotonic() < deadline:
            with lock:
                index = next(next_body, None)
            if index is None:
                return
            started = time.perf_counter()
            conn.request("POST", "/api/otlp/v1/traces", body=bodies[index], headers=headers)
            response = conn.getresponse()
            body = response.read()
            elapsed = time.perf_counter() - started
            with lock:
                latencies.append(elapsed)
                # a full success is 200 with an empty ExportTraceServiceResponse
                if response.status != 200 or body:
                    failures += 1

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    began = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return time.perf_counter() - began, latencies, failures


def stored_rows(database_url: str, prefix: str) -> dict[int, tuple[list[tuple], list[tuple]]]:
    """The rows the receiver stored for the sessions named <prefix>..., by session."""
    by_session: dict[int, tuple[list[tuple], list[tuple]]] = {}
    with psycopg.connect(database_url) as conn:
        for pk, in conn.execute(
            "SELECT id FROM metrics_session WHERE external_id LIKE %s", [f"{prefix}%"]
        ).fetchall():
            # metadata as its JSON text, so COPY writes it back as it came
            ops = conn.execute(
                f"SELECT {OP_COLUMNS.replace('metadata', 'metadata::text')} "
                "FROM metrics_operation WHERE session_id = %s", [pk]
            ).fetchall()
            calls = conn.execute(
                f"SELECT {CALL_COLUMNS} FROM metrics_apicall WHERE session_id = %s", [pk]
            ).fetchall()
            by_session[pk] = (ops, calls)
    return by_session


# The real tables' foreign keys, checked at commit as Django declares them.
FOREIGN_KEYS = (
    ("bench_copy_ops", "session_id", "metrics_session"),
    ("bench_copy_ops", "parent_id", "metrics_operation"),
    ("bench_copy_calls", "session_id", "metrics_session"),
    ("bench_copy_calls", "operation_id", "metrics_operation"),
)


def copy_time(database_url: str, by_session: dict, *, foreign_keys: bool = False) -> float:
    """Seconds to COPY the same operation and call rows into scratch tables; with
    ``foreign_keys``, the scratch tables check the real tables' foreign keys too."""
    with psycopg.connect(database_url) as conn:
        for scratch, real in (("bench_copy_ops", "metrics_operation"),
                              ("bench_copy_calls", "metrics_apicall")):
            conn.execute(f"DROP TABLE IF EXISTS {scratch}")
            # Same columns, defaults and indexes as the real table (LIKE copies no FKs).
            conn.execute(f"CREATE TABLE {scratch} (LIKE {real} INCLUDING ALL)")
        for table, column, target in FOREIGN_KEYS if foreign_keys else ():
            conn.execute(f"ALTER TABLE {table} ADD FOREIGN KEY ({column}) REFERENCES "
                         f"{target} (id) DEFERRABLE INITIALLY DEFERRED")
        conn.commit()
        began = time.perf_counter()
        for ops, calls in by_session.values():  # one transaction per session, as ingest
            with conn.cursor() as cur:
                with cur.copy(f"COPY bench_copy_ops ({OP_COLUMNS}) FROM STDIN") as copy:
                    for row in ops:
                        copy.write_row(row)
                with cur.copy(f"COPY bench_copy_calls ({CALL_COLUMNS}) FROM STDIN") as copy:
                    for row in calls:
                        copy.write_row(row)
            conn.commit()
        elapsed = time.perf_counter() - began
        conn.execute("DROP TABLE bench_copy_ops")
        conn.execute("DROP TABLE bench_copy_calls")
        conn.commit()
    return elapsed


def run_round(server: Gunicorn, key: str, database_url: str, round_no: int,
              first: int, count: int) -> dict:
    prefix = f"bench{round_no}_"
    bodies = [export_request(first + n, prefix) for n in range(count)]
    elapsed, latencies, failures = run_clients(server.port, key, bodies, DURATION_S / ROUNDS)
    by_session = stored_rows(database_url, prefix)
    stored = sum(len(ops) for ops, _ in by_session.values())
    copy_s = copy_time(database_url, by_session)
    copy_fk_s = copy_time(database_url, by_session, foreign_keys=True)
    print(f"round {round_no}: {len(latencies)} requests in {elapsed:.1f}s, {failures} failed, "
          f"{stored} of {len(latencies) * SPANS_PER_REQUEST} spans stored; "
          f"HTTP {stored / elapsed:,.0f} spans/s, COPY {stored / copy_s:,.0f} spans/s",
          flush=True)
    return {"elapsed_s": elapsed, "copy_s": copy_s, "copy_fk_s": copy_fk_s, "stored": stored,
            "sent": len(latencies) * SPANS_PER_REQUEST, "latencies": latencies,
            "failures": failures, "ratio": (stored / elapsed) / (stored / copy_s)}


def decode_and_map_ms() -> float:
    """In this process: the best of ten decodes and mappings of one request, in ms."""
    body = export_request(2 * 10**9)
    best = float("inf")
    for _ in range(10):
        began = time.perf_counter()
        mapping.draft(decode.decode_protobuf(body).spans)
        best = min(best, time.perf_counter() - began)
    return best * 1000


def main() -> None:
    database_url = recreate_database(PG, DB_NAME)
    # Analysis is queued, as in production; no worker runs during the measurement.
    env = server_env(database_url, CELERY_BROKER_URL=REDIS, INGEST_RATE_LIMIT_PER_MINUTE="0")
    manage(env, "migrate", "-v0")
    key = create_api_key(env, "bench")
    per_round = min(MAX_REQUESTS, int(DURATION_S * 20)) // ROUNDS
    server = Gunicorn(env, workers=WORKERS).start()
    try:
        # Warm-up, not measured: each worker's first requests import code and connect.
        run_clients(server.port, key, [export_request(10**9 + n, "warm") for n in range(6)], 60)
        rounds = [run_round(server, key, database_url, r, 1 + r * per_round, per_round)
                  for r in range(ROUNDS)]
    finally:
        server.stop()
    subprocess.run([sys.executable, "-m", "celery", "-A", "perfmon_site", "purge", "-f"],
                   cwd=ROOT, env=env, capture_output=True, timeout=60)

    decode_map_ms = decode_and_map_ms()
    stored = sum(r["stored"] for r in rounds)
    sent = sum(r["sent"] for r in rounds)
    ordered = sorted(latency for r in rounds for latency in r["latencies"])
    print(json.dumps({
        "clients": CLIENTS,
        "workers": WORKERS,
        "requests": len(ordered),
        "spans_per_request": SPANS_PER_REQUEST,
        "failures": sum(r["failures"] for r in rounds),
        "all_spans_stored": stored == sent,
        "spans_per_s_http": round(stored / sum(r["elapsed_s"] for r in rounds), 1),
        "spans_per_s_copy": round(stored / sum(r["copy_s"] for r in rounds), 1),
        # the same COPY with the real tables' four foreign-key checks per span
        "spans_per_s_copy_with_fks": round(stored / sum(r["copy_fk_s"] for r in rounds), 1),
        "round_ratios": [round(r["ratio"], 3) for r in rounds],
        "ratio": round(statistics.median(r["ratio"] for r in rounds), 3),
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p99_ms": round(ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))] * 1000, 1),
        # CPU a worker spends decoding and mapping one request, against the time the
        # whole request takes when the workers have no queue (spans/s over two workers)
        "decode_map_ms_per_request": round(decode_map_ms, 1),
        "worker_ms_per_request": round(WORKERS * SPANS_PER_REQUEST * 1000 * sum(
            r["elapsed_s"] for r in rounds) / stored, 1),
        "target_ratio": 0.4,
    }))


if __name__ == "__main__":
    main()
