"""Rollups kept incrementally by analysis equal the ones rebuilt from scratch."""

import random
import zoneinfo
from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from metrics.analysis import rollups
from metrics.analysis.analyze import analyze_session
from metrics.models import DailyCost, Episode, EpisodeCost, EpisodeOperation, Session
from tests.factories import T0, api_call, operation, session_payload

pytestmark = pytest.mark.django_db

MODELS = ["gpt-4o-mini", "gpt-4o", "mystery-model"]


def random_payload(rng: random.Random, session_id: str, *, part: int) -> dict:
    started = T0 + timedelta(days=rng.randrange(3), hours=rng.randrange(20))
    ops, calls = [], []
    for n in range(rng.randrange(1, 6)):
        op_id = f"p{part}-o{n}"
        ops.append(operation(op_id, rng.choice(["scene_generation", "dialogue", "jokes"]),
                             start_s=n * 10, duration_s=rng.uniform(0.5, 9)))
        for c in range(rng.randrange(0, 3)):
            calls.append(api_call(
                f"{op_id}-c{c}", operation_id=op_id, model=rng.choice(MODELS),
                prompt_tokens=rng.randrange(50, 2000), completion_tokens=rng.randrange(10, 400),
                cost_usd=rng.choice([None, None, round(rng.uniform(0.001, 0.1), 6)]),
                error=rng.random() < 0.1, at_s=n * 10 + c + rng.choice([0, 0, 90_000]),
            ))
    payload = session_payload(session_id, episode=rng.choice(["ep001", "ep002", "ep003"]),
                              started_at=started, operations=ops, api_calls=calls,
                              status=rng.choice(["running", "completed"]))
    payload["session"]["release"] = rng.choice(["generator 1.4.0", "generator 1.5.0", ""])
    return payload


def snapshot() -> dict:
    def rows(rollup):
        values = ("sessions", *rollup.sums)
        return {
            tuple(row[k] for k in rollup.key_fields): tuple(
                round(Decimal(row[v]), 6) if v == "cost_usd" else round(row[v], 6)
                for v in values
            )
            for row in rollup.model.objects.values(*rollup.key_fields, *values)
        }
    return {r.model.__name__: rows(r) for r in rollups.ROLLUPS}


def ingest_and_analyze(api, payload) -> None:
    api.post("/sessions", payload)
    analyze_session(Session.objects.get(external_id=payload["session"]["id"]))


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_incremental_rollups_equal_a_rebuild_after_random_ingests_and_resends(api, seed):
    rng = random.Random(seed)
    sent = []
    for step in range(40):
        if sent and rng.random() < 0.3:
            payload = rng.choice(sent)  # a resend: same payload again
        elif sent and rng.random() < 0.3:
            payload = random_payload(rng, rng.choice(sent)["session"]["id"], part=step)
        else:
            payload = random_payload(rng, f"s{step}", part=step)
        sent.append(payload)
        ingest_and_analyze(api, payload)

    incremental = snapshot()
    rollups.rebuild_all()

    assert all(incremental.values()), "the random sessions should fill every rollup"
    assert snapshot() == incremental


def test_moving_a_session_to_another_episode_moves_its_share(api):
    payload = session_payload("s1", episode="ep001",
                              api_calls=[api_call("c1", cost_usd=0.5)],
                              operations=[operation("o", "dialogue", start_s=0, duration_s=3)])
    ingest_and_analyze(api, payload)
    assert set(EpisodeCost.objects.values_list("episode", flat=True)) == {"ep001"}

    session = Session.objects.get()
    session.episode = Episode.objects.create(project=session.project, code="ep002")
    session.save()
    analyze_session(session)

    assert list(EpisodeCost.objects.values_list("episode", "sessions", "cost_usd")) == [
        ("ep002", 1, Decimal("0.5"))]
    assert list(EpisodeOperation.objects.values_list("episode", "occurrences")) == [
        ("ep002", 1)]
    before = snapshot()
    rollups.rebuild_all()
    assert snapshot() == before


def test_changing_a_sessions_release_moves_its_daily_cost(api):
    calls = [api_call("c1", cost_usd=0.5), api_call("c2", cost_usd=0.25)]
    ingest_and_analyze(api, session_payload("s1", api_calls=calls))
    assert list(DailyCost.objects.values_list("release", "sessions", "calls", "cost_usd")) == [
        ("generator 1.4.2", 1, 2, Decimal("0.75"))]

    session = Session.objects.get()
    session.release = "generator 1.5.0"  # as an editor's correction in the admin
    session.save()
    analyze_session(session)

    assert list(DailyCost.objects.values_list("release", "sessions", "calls", "cost_usd")) == [
        ("generator 1.5.0", 1, 2, Decimal("0.75"))]
    before = snapshot()
    rollups.rebuild_all()
    assert snapshot() == before


def test_days_are_utc_days_whatever_zone_is_active_during_analysis(api):
    # 13:00 UTC on T0's day is 02:00 the next day in Auckland (UTC+13 in November).
    started = T0.replace(hour=13)
    calls = [api_call("a", model="gpt-4o", cost_usd=0.25, at_s=3 * 3600 + 10)]
    api.post("/sessions", session_payload("s1", api_calls=calls, started_at=started))
    with timezone.override(zoneinfo.ZoneInfo("Pacific/Auckland")):
        analyze_session(Session.objects.get())

    assert list(DailyCost.objects.values_list("day", flat=True)) == [T0.date()]
    assert Session.objects.get().rollup_day == T0.date()
    before = snapshot()
    with timezone.override(zoneinfo.ZoneInfo("Pacific/Auckland")):
        rollups.rebuild_all()
    assert snapshot() == before


def test_costs_roll_up_by_day_model_and_workflow(api):
    calls = [api_call("a", model="gpt-4o", cost_usd=0.25, at_s=10),
             api_call("b", model="gpt-4o", cost_usd=0.25, at_s=20),
             api_call("c", model="gpt-4o-mini", cost_usd=0.01, at_s=86_400 + 5)]
    ingest_and_analyze(api, session_payload("s1", api_calls=calls, duration_s=90_000))

    rows = DailyCost.objects.order_by("day", "model").values_list(
        "day", "workflow", "model", "calls", "cost_usd")
    assert list(rows) == [
        (T0.date(), "script_generation", "gpt-4o", 2, Decimal("0.5")),
        (T0.date() + timedelta(days=1), "script_generation", "gpt-4o-mini", 1,
         Decimal("0.01")),
    ]
    by_episode = EpisodeCost.objects.order_by("model").values_list("episode", "model",
                                                                  "sessions", "calls")
    assert list(by_episode) == [("ep001", "gpt-4o", 1, 2), ("ep001", "gpt-4o-mini", 1, 1)]
