"""Migration 0023 fills the session's cache token sums from what is stored."""

from datetime import UTC, date, datetime

import pytest

from tests.retention.migrating import migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("metrics", "0022_session_fk_no_separate_index")
AFTER = ("metrics", "0023_session_cache_token_sums")
T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_sums_come_from_the_calls_or_for_a_pruned_session_from_its_cost_lines(back_to_latest):
    apps = migrate(BEFORE)
    project = apps.get_model("metrics", "Project").objects.create(name="P", slug="p")
    Session = apps.get_model("metrics", "Session")
    ApiCall = apps.get_model("metrics", "ApiCall")
    CostLine = apps.get_model("metrics", "CostLine")
    kept = Session.objects.create(project=project, external_id="kept", started_at=T0,
                                  merged_at=T0, api_calls_count=2)
    for n, (cached, written) in enumerate([(60, 30), (5, 0)]):
        ApiCall.objects.create(session=kept, client_id=f"c{n}", at=T0, prompt_tokens=100,
                               cached_tokens=cached, cache_write_tokens=written)
    pruned = Session.objects.create(project=project, external_id="pruned", started_at=T0,
                                    merged_at=T0, api_calls_count=3, detail_pruned_at=T0)
    for model, cached, written in [("a", 7, 2), ("b", 1, 10)]:
        CostLine.objects.create(session=pruned, day=date(2026, 11, 2), model=model,
                                cached_tokens=cached, cache_write_tokens=written)
    none = Session.objects.create(project=project, external_id="none", started_at=T0,
                                  merged_at=T0)

    apps = migrate(AFTER)
    Session = apps.get_model("metrics", "Session")

    sums = {s.external_id: (s.cached_tokens, s.cache_write_tokens)
            for s in Session.objects.filter(pk__in=[kept.pk, pruned.pk, none.pk])}
    assert sums == {"kept": (65, 30), "pruned": (8, 12), "none": (0, 0)}
