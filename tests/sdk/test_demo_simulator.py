"""The demo's simulated generator: the same seed gives the same calls."""

import asyncio

import pytest

from perfmon.demo import demo_plan, run_demo

FAST = 400.0  # simulated seconds per real second: the logic, not the waiting


def totals(seed: int) -> list[dict]:
    results = asyncio.run(run_demo(episodes=5, seed=seed, speed=FAST))
    return [r.totals() for r in results]


def test_the_same_seed_gives_the_same_sessions():
    assert totals(11) == totals(11)


def test_another_seed_gives_other_sessions():
    first, other = totals(11), totals(12)
    assert [t["id"] for t in first] == [t["id"] for t in other]
    assert [t["total_tokens"] for t in first] != [t["total_tokens"] for t in other]


def test_the_demo_has_the_variety_it_promises():
    by_id = {t["id"]: t for t in totals(7)}

    assert by_id["ep002_run3"]["status"] == "failed"
    assert all(t["status"] == "completed" for i, t in by_id.items() if i != "ep002_run3")
    first, rerun = by_id["ep001_run1"], by_id["ep001_run2"]
    assert first["cache_hits"] == 0
    assert rerun["cache_hits"] / (rerun["cache_hits"] + rerun["cache_misses"]) > 0.6
    assert by_id["ep003_run1"]["api_errors"] >= 3  # the burst of rate limits
    regressed = by_id["ep005_run1"]  # the last episode's dialogue prompts grew
    assert regressed["total_tokens"] > 2 * by_id["ep001_run1"]["total_tokens"]


def test_a_plan_needs_at_least_four_episodes():
    with pytest.raises(ValueError):
        demo_plan(3)
    assert len(demo_plan(12)) == 16
