"""Migration 0028 fills each episode's latest run start and latest completed run."""

from datetime import UTC, datetime, timedelta

import pytest

from tests.retention.migrating import migrate

pytestmark = pytest.mark.django_db(transaction=True)

BEFORE = ("metrics", "0027_session_unpriced_and_budget_failure_counts")
AFTER = ("metrics", "0028_episode_latest_runs")
T0 = datetime(2026, 11, 2, 10, tzinfo=UTC)


def test_latest_runs_come_from_each_episodes_runs(back_to_latest):
    apps = migrate(BEFORE)
    project = apps.get_model("metrics", "Project").objects.create(name="P", slug="p")
    Episode = apps.get_model("metrics", "Episode")
    Session = apps.get_model("metrics", "Session")
    episodes = {code: Episode.objects.create(project=project, code=code)
                for code in ("two_runs", "running_only", "no_runs")}

    def run(name, episode, hours, status):
        return Session.objects.create(project=project, external_id=name, status=status,
                                      episode=episodes[episode], merged_at=T0,
                                      started_at=T0 + timedelta(hours=hours))
    done = run("done", "two_runs", 0, "completed")
    run("later_failed", "two_runs", 2, "failed")
    run("live", "running_only", 1, "running")

    Episode = migrate(AFTER).get_model("metrics", "Episode")

    kept = {e.code: (e.latest_run_at, e.latest_completed_session_id)
            for e in Episode.objects.filter(project_id=project.pk)}
    assert kept == {"two_runs": (T0 + timedelta(hours=2), done.pk),
                    "running_only": (T0 + timedelta(hours=1), None),
                    "no_runs": (None, None)}
