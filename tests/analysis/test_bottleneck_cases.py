"""The shared bottleneck cases (tests/bottleneck_cases.py) against the server's analysis.

Each case is stored through ingest as a schema-v1 session and analysed; the per-name
figures the session page shows must match the table, as the SDK's summary does.
"""

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.test import override_settings

from ingest.schemas import SessionPayload
from ingest.services import store_payload
from metrics.analysis.analyze import analyze_session
from metrics.models import OperationStat
from tests.bottleneck_cases import CASES, THRESHOLD

ORIGIN = datetime(2026, 11, 12, 9, 0, tzinfo=UTC)

pytestmark = pytest.mark.django_db


def _at(offset_s: float | None) -> str | None:
    return None if offset_s is None else (ORIGIN + timedelta(seconds=offset_s)).isoformat()


def payload_of(case: dict[str, Any]) -> dict[str, Any]:
    start, end = case["session"]
    return {
        "schema_version": 1,
        "session": {"id": case["id"], "status": "running" if end is None else "completed",
                    "started_at": _at(start), "ended_at": _at(end)},
        "operations": [
            {"id": op_id, "parent_id": parent, "name": name, "started_at": _at(op_start),
             "ended_at": _at(op_end),
             "duration_s": None if op_end is None else op_end - op_start}
            for name, op_id, parent, op_start, op_end in case["operations"]
        ],
    }


@pytest.mark.parametrize("case", CASES, ids=[case["id"] for case in CASES])
@override_settings(BOTTLENECK_THRESHOLD=THRESHOLD)
def test_shares_and_bottlenecks_follow_the_shared_rule(case, project):
    stored = store_payload(project, SessionPayload.model_validate(payload_of(case)))

    analyze_session(stored.session)

    stats = OperationStat.objects.filter(session=stored.session)
    assert dict(stats.values_list("name", "share")) == pytest.approx(case["shares"], abs=1e-6)
    bottlenecks = stats.filter(is_bottleneck=True).order_by("name")
    assert list(bottlenecks.values_list("name", flat=True)) == case["bottlenecks"]
