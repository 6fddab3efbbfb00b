"""The periodic sweep analyzes sessions stored while the broker was away."""

from datetime import timedelta

import pytest
from django.utils import timezone

from metrics.models import Session
from metrics.tasks import sweep_unanalyzed_sessions
from tests.factories import script_payload

pytestmark = pytest.mark.django_db


def test_sweep_analyzes_stale_unanalyzed_sessions_once(api):
    api.post("/sessions", script_payload("missed"))  # on_commit never ran: no analysis
    api.post("/sessions", script_payload("fresh"))
    Session.objects.filter(external_id="missed").update(
        merged_at=timezone.now() - timedelta(minutes=10)
    )

    assert sweep_unanalyzed_sessions() == 1  # the fresh one is left to its own enqueue

    missed = Session.objects.get(external_id="missed")
    assert missed.analyzed_at is not None
    assert missed.operation_stats.filter(is_bottleneck=True).exists()
    assert Session.objects.get(external_id="fresh").analyzed_at is None
    assert sweep_unanalyzed_sessions() == 0


def test_sweep_reanalyzes_a_session_merged_after_its_analysis(api):
    api.post("/sessions", script_payload("s1"))
    long_ago = timezone.now() - timedelta(minutes=10)
    Session.objects.update(analyzed_at=long_ago - timedelta(minutes=1), merged_at=long_ago)

    assert sweep_unanalyzed_sessions() == 1
    assert Session.objects.get().analyzed_at > long_ago
