"""The shared bottleneck cases (tests/bottleneck_cases.py) against the SDK.

Each case becomes a schema-v1 payload, read back with ``PerformanceMetrics.from_dict``; the
SDK's shares, bottlenecks and summary lines must match the table.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from perfmon import PerformanceMetrics
from tests.bottleneck_cases import CASES, THRESHOLD
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

ORIGIN = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)


def _at(offset_s: float) -> str:
    return (ORIGIN + timedelta(seconds=offset_s)).isoformat()


def _operation(name: str, op_id: str, parent: str | None, start: float,
               end: float | None) -> dict[str, Any]:
    return {
        "id": op_id, "parent_id": parent, "name": name, "started_at": _at(start),
        "ended_at": None if end is None else _at(end),
        "duration_s": None if end is None else end - start,
        "success": None if end is None else True, "error": None, "metadata": {},
        "cache_hits": 0, "cache_misses": 0,
    }


def payload_of(case: dict[str, Any]) -> dict[str, Any]:
    start, end = case["session"]
    return {
        "schema_version": 1,
        "session": {
            "id": case["id"], "status": "running" if end is None else "completed",
            "started_at": _at(start), "ended_at": None if end is None else _at(end),
        },
        "operations": [_operation(*op) for op in case["operations"]],
        "api_calls": [],
    }


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_shares_and_bottlenecks_follow_the_shared_rule(case):
    session = PerformanceMetrics.from_dict(payload_of(case), bottleneck_threshold=THRESHOLD)

    shares = {item.name: item.share for item in session.self_time_by_name()}
    assert shares == pytest.approx(case["shares"], abs=1e-6)
    assert sorted(item.name for item in session.bottlenecks()) == case["bottlenecks"]


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
def test_the_summary_warns_about_exactly_the_bottlenecks(case):
    session = PerformanceMetrics.from_dict(payload_of(case), bottleneck_threshold=THRESHOLD)
    lines = session.get_summary().splitlines()
    start = lines.index("Bottleneck Warnings (self time above 20% of the session):") + 1
    warnings = [line for line in lines[start:] if line.startswith("  ")]

    if not case["bottlenecks"]:
        assert warnings == ["  none"]
        return
    named = sorted(line.split(":")[0].strip() for line in warnings)
    assert named == case["bottlenecks"]
    for line in warnings:
        name = line.split(":")[0].strip()
        assert f"({case['shares'][name] * 100:.1f}% of session)" in line


def test_the_ten_second_session_is_worked_out_by_hand():
    (case,) = [c for c in CASES if c["id"] == "ten_second_session_one_second_operation"]
    session = PerformanceMetrics.from_dict(payload_of(case))
    # 1 s of self time over a 10 s session: 10%, below the 20% threshold
    (item,) = session.self_time_by_name()
    assert (item.self_s, item.share) == (pytest.approx(1.0, abs=1e-6), pytest.approx(0.1))
    assert "  render_scene: 1.00s self time (10.0% of session)" not in session.get_summary()
