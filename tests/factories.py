"""Schema-v1 payloads shaped like the generator's, for tests and benchmarks."""

from datetime import UTC, datetime, timedelta
from typing import Any

T0 = datetime(2026, 11, 20, 10, 0, tzinfo=UTC)


def iso(moment: datetime) -> str:
    return moment.isoformat()


def operation(
    op_id: str,
    name: str,
    *,
    start_s: float,
    duration_s: float | None,
    parent_id: str | None = None,
    success: bool | None = True,
    **extra: Any,
) -> dict[str, Any]:
    started = T0 + timedelta(seconds=start_s)
    ended = started + timedelta(seconds=duration_s) if duration_s is not None else None
    return {
        "id": op_id,
        "parent_id": parent_id,
        "name": name,
        "started_at": iso(started),
        "ended_at": iso(ended) if ended else None,
        "duration_s": duration_s,
        "success": success if duration_s is not None else None,
        "error": None,
        "metadata": {},
        **extra,
    }


def api_call(
    call_id: str,
    *,
    operation_id: str | None = None,
    model: str = "gpt-4o-mini",
    prompt_tokens: int = 700,
    completion_tokens: int = 130,
    cost_usd: float | None = None,
    error: bool = False,
    at_s: float = 1.0,
    **extra: Any,
) -> dict[str, Any]:
    return {
        "id": call_id,
        "operation_id": operation_id,
        "provider": "openai",
        "model": model,
        "at": iso(T0 + timedelta(seconds=at_s)),
        "latency_s": 1.2,
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "cached_tokens": 0,
        "cache_write_tokens": 0,
        "total_tokens": prompt_tokens + completion_tokens,
        "cost_usd": cost_usd,
        "prompt_hash": None,
        "error": error,
        "error_message": "rate limited" if error else None,
        **extra,
    }


def session_payload(
    session_id: str = "ep001_run1",
    *,
    episode: str | None = "ep001",
    status: str = "completed",
    duration_s: float | None = 42.0,
    operations: list[dict[str, Any]] | None = None,
    api_calls: list[dict[str, Any]] | None = None,
    cache: tuple[int, int] = (27, 13),
    started_at: datetime = T0,
    **session_fields: Any,
) -> dict[str, Any]:
    ended = started_at + timedelta(seconds=duration_s) if duration_s is not None else None
    return {
        "schema_version": 1,
        "session": {
            "id": session_id,
            "episode": episode,
            "workflow": "script_generation",
            "release": "generator 1.4.2",
            "environment": "test",
            "host": "render-01",
            "status": status,
            "started_at": iso(started_at),
            "ended_at": iso(ended) if ended else None,
            "cache": {"hits": cache[0], "misses": cache[1], "by_name": {}},
            "counters": {"scenes_generated": 9},
            "tags": ["pilot"],
            "metadata": {"model_family": "gpt"},
            **session_fields,
        },
        "operations": operations if operations is not None else [],
        "api_calls": api_calls if api_calls is not None else [],
    }


def script_payload(
    session_id: str = "ep001_run1", *, scenes: int = 3, calls_per_scene: int = 2, **kwargs: Any
) -> dict[str, Any]:
    """A full script run: one root operation, scenes in sequence, API calls inside each."""
    ops = [operation("root", "generate_full_script", start_s=0.0, duration_s=10.0 * scenes + 2)]
    calls = []
    for n in range(scenes):
        scene_id = f"scene{n}"
        ops.append(
            operation(scene_id, "scene_generation", start_s=1.0 + 10 * n, duration_s=9.0,
                      parent_id="root", metadata={"scene": n})
        )
        for c in range(calls_per_scene):
            calls.append(api_call(f"{scene_id}-c{c}", operation_id=scene_id, at_s=1.5 + 10 * n + c))
    return session_payload(session_id, operations=ops, api_calls=calls,
                           duration_s=10.0 * scenes + 2, **kwargs)


def big_payload(session_id: str, *, operations: int = 1000, api_calls: int = 50) -> dict[str, Any]:
    """A session of ``operations`` flat operations under one root and ``api_calls`` calls."""
    ops = [operation("r", "generate_full_script", start_s=0.0, duration_s=float(operations))]
    ops += [
        operation(f"o{i}", "dialogue_line", start_s=i * 0.5, duration_s=0.4, parent_id="r",
                  metadata={"line": i})
        for i in range(operations - 1)
    ]
    calls = [api_call(f"c{i}", operation_id=f"o{i}", at_s=i * 0.5) for i in range(api_calls)]
    return session_payload(session_id, operations=ops, api_calls=calls,
                           duration_s=float(operations))
