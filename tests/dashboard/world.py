"""A small, realistic world for the dashboard tests: episodes run a few times each, sent
through the ingest API and analyzed, with times relative to now so the default period
(the last 30 days) holds them.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

from django.contrib.auth.models import Permission, User

from metrics.analysis.analyze import analyze_session
from metrics.models import Project, Session
from tests.admin.helpers import default_project

EPISODES = ("ep001", "ep002", "ep003")
RUNS_PER_EPISODE = 3
MODELS = ("gpt-4o-mini", "gpt-4o")


def user_with(*codenames: str, name: str = "producer", password: str = "a-long-test-password",
              projects: list[Project] | None = None):
    """A user with these permissions, a member of ``projects`` (default: the default one)."""
    user = User.objects.create_user(name, password=password)
    user.user_permissions.add(*Permission.objects.filter(content_type__app_label="metrics",
                                                         codename__in=codenames))
    user.projects.add(*(projects if projects is not None else [default_project()]))
    return user


def _at(start: datetime, seconds: float) -> str:
    return (start + timedelta(seconds=seconds)).isoformat()


def run_payload(
    session_id: str,
    *,
    episode: str | None,
    started_at: datetime,
    scenes: int = 3,
    scene_s: float = 6.0,
    status: str = "completed",
    release: str = "generator 1.4.2",
    names: dict[str, str] | None = None,
    unpriced_model: bool = False,
    failed_scene: int | None = None,
    tags: list[str] | None = None,
    environment: str = "production",
) -> dict[str, Any]:
    """One script run: a root, scenes in sequence, each with dialogue and a model call."""
    names = {"root": "generate_full_script", "scene": "scene_generation",
             "dialogue": "dialogue_writing", **(names or {})}
    total = 1.0 + scenes * (scene_s + 1.0)
    running = status == "running"
    ops = [{"id": "root", "name": names["root"], "started_at": _at(started_at, 0),
            "ended_at": None if running else _at(started_at, total),
            "duration_s": None if running else total, "success": None if running else True,
            "metadata": {"scenes": scenes}}]
    calls = []
    for n in range(scenes):
        start = 1.0 + n * (scene_s + 1.0)
        failed = n == failed_scene
        ops.append({"id": f"s{n}", "parent_id": "root", "name": names["scene"],
                    "started_at": _at(started_at, start),
                    "ended_at": _at(started_at, start + scene_s),
                    "duration_s": scene_s, "success": not failed,
                    "error": "RateLimitError: slow down" if failed else None,
                    "metadata": {"scene": n + 1, "location": "INT. KITCHEN"},
                    "cache_hits": 2, "cache_misses": 1})
        ops.append({"id": f"d{n}", "parent_id": f"s{n}", "name": names["dialogue"],
                    "started_at": _at(started_at, start + 1),
                    "ended_at": _at(started_at, start + 1 + scene_s / 2),
                    "duration_s": scene_s / 2, "success": True, "metadata": {"lines": 14}})
        for c, model in enumerate(MODELS):
            calls.append({
                "id": f"c{n}-{c}", "operation_id": f"d{n}", "provider": "openai",
                "model": "house-model" if unpriced_model and c == 1 else model,
                "at": _at(started_at, start + 1.5 + c), "latency_s": 1.1,
                "prompt_tokens": 800, "completion_tokens": 150, "total_tokens": 950,
                "cost_usd": None, "error": failed and c == 0,
                "error_message": "rate limited" if failed and c == 0 else None,
            })
    return {
        "schema_version": 1,
        "session": {
            "id": session_id, "episode": episode, "workflow": "script_generation",
            "release": release, "environment": environment, "host": "render-01",
            "status": status, "started_at": started_at.isoformat(),
            "ended_at": None if running else _at(started_at, total),
            "cache": {"hits": 20, "misses": 10,
                      "by_name": {"llm": {"hits": 14, "misses": 6},
                                  "embeddings": {"hits": 6, "misses": 4}}},
            "counters": {"scenes_generated": scenes, "dialogue_lines_generated": scenes * 14},
            "tags": tags if tags is not None else ["pilot"],
            "metadata": {"model_family": "gpt"},
        },
        "operations": ops,
        "api_calls": calls,
    }


def send(api, payload: dict) -> Session:
    response = api.post("/sessions", payload)
    assert response.status_code in (200, 201), response.content
    session = Session.objects.get(external_id=payload["session"]["id"])
    analyze_session(session)
    session.refresh_from_db()
    return session


def build_world(api, *, now: datetime | None = None) -> dict[str, Session]:
    """Three episodes run three times each over the last days; later runs are slower."""
    now = now or datetime.now(UTC)
    sessions = {}
    for e, code in enumerate(EPISODES):
        for r in range(RUNS_PER_EPISODE):
            started = now - timedelta(days=6 - 2 * e, hours=3 - r)
            sid = f"{code}_run{r + 1}"
            sessions[sid] = send(api, run_payload(
                sid, episode=code, started_at=started, scene_s=4.0 + e * 2 + r * 0.5,
                release=f"generator 1.{4 + e}.0", unpriced_model=(code == "ep003"),
                failed_scene=1 if (e, r) == (1, 2) else None,
            ))
    return sessions
