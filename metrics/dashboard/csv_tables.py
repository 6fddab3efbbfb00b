"""The dashboard's tables as CSV downloads (written by metrics.spreadsheet)."""

from django.http import HttpResponse

from metrics.dashboard.queries import with_rates
from metrics.spreadsheet import csv_response


def sessions_csv(sessions) -> HttpResponse:
    return csv_response(
        "sessions.csv",
        ["session", "episode", "workflow", "release", "environment", "status", "started_at",
         "duration_s", "api_calls", "api_errors", "total_tokens", "cost_usd", "cache_hit_rate"],
        ([s.external_id, s.episode.code if s.episode else "", s.workflow, s.release,
          s.environment, s.status, s.started_at.isoformat(), s.duration_s, s.api_calls_count,
          s.api_errors_count, s.total_tokens, s.cost_usd, s.cache_hit_rate] for s in sessions),
    )


def episodes_csv(table) -> HttpResponse:
    return csv_response(
        "episodes.csv",
        ["episode", "title", "runs", "failed_runs", "cold_runs", "last_run", "take",
         "take_duration_s", "take_cost_usd", "take_tokens", "avg_duration_s", "cost_usd",
         "cost_per_run_usd", "tokens", "tokens_per_run", "cache_hit_rate", "api_error_rate"],
        (
            [r["code"], r["title"], r["runs"], r["failed_runs"], r["cold_runs"],
             r["last_run"].isoformat(), r["take_id"], r["take_duration_s"],
             r["take_cost_usd"], r["take_tokens"],
             r["avg_duration_s"], r["cost_usd"], r["cost_per_run_usd"], r["tokens"],
             r["tokens_per_run"], r["cache_hit_rate"], r["api_error_rate"]]
            for r in map(with_rates, table.iterator())
        ),
    )


def deltas_csv(reference: str, others: list[str], deltas) -> HttpResponse:
    header = ["operation", f"{reference} self_time_s", f"{reference} cost_usd"]
    for code in others:
        header += [f"{code} self_time_s", f"{code} delta_s", f"{code} delta_pct",
                   f"{code} cost_usd", f"{code} delta_usd"]
    rows = []
    for d in deltas:
        row = [d.name, d.reference_s, d.reference_usd]
        for (s, delta, pct), (usd, delta_usd) in zip(d.values, d.costs, strict=True):
            row += [s, delta, pct, usd, delta_usd]
        rows.append(row)
    return csv_response("comparison.csv", header, rows)


def operations_csv(session) -> HttpResponse:
    rows = session.operations.order_by("started_at", "pk").values_list(
        "client_id", "parent_client_id", "name", "started_at", "duration_s", "success", "error",
    )
    return csv_response(
        f"{session.external_id}-operations.csv",
        ["id", "parent_id", "name", "started_at", "duration_s", "success", "error"],
        ((op_id, parent, name, started.isoformat(), duration, success, error)
         for op_id, parent, name, started, duration, success, error
         in rows.iterator(chunk_size=5000)),
    )


def operation_by_episode_csv(name: str, by_episode: dict) -> HttpResponse:
    return csv_response(
        "operation-by-episode.csv",
        ["operation", "episode", "occurrences", "p5_s", "p25_s", "median_s", "p75_s", "p95_s"],
        ([name, code, q["n"], q.get(0.05), q.get(0.25), q.get(0.5), q.get(0.75), q.get(0.95)]
         for code, q in by_episode.items()),
    )


def costs_by_model_csv(models: list[dict]) -> HttpResponse:
    columns = ["provider", "model", "calls", "errors", "prompt_tokens", "completion_tokens",
               "total_tokens", "cost_usd", "unpriced_calls", "first_day", "last_day"]
    return csv_response("costs-by-model.csv", columns,
                        ([m[column] for column in columns] for m in models))
