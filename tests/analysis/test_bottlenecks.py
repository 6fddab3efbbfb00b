"""Bottlenecks by self time, grouped by name, with parallel work counted as wall time."""

from datetime import timedelta

import pytest
from django.test import override_settings

from ingest.schemas import SessionPayload
from ingest.services import store_payload
from metrics.analysis.analyze import analyze_session
from metrics.analysis.operation_stats import TimedOperation, name_stats, wall_time_s
from metrics.models import OperationStat, Session
from tests.factories import T0, operation, session_payload


def op(op_id, name, start, duration, parent=None) -> TimedOperation:
    return TimedOperation(op_id, parent, name, T0 + timedelta(seconds=start), duration)


def find_bottlenecks(ops, *, threshold):
    """Bottlenecks of a session that spans from T0 to the end of its last operation."""
    wall = wall_time_s(ops, started_at=T0, ended_at=None)
    stats = name_stats(ops, wall_time_s=wall, threshold=threshold)
    return [stat for stat in stats if stat.is_bottleneck]


def shares(findings) -> dict[str, float]:
    return {f.name: round(f.share, 3) for f in findings}


def test_wrapper_is_not_a_bottleneck_for_containing_the_others():
    ops = [
        op("root", "generate_full_script", 0, 10),
        op("a", "scene_generation", 0, 6, "root"),
        op("b", "dialogue", 6, 3, "root"),
    ]
    assert shares(find_bottlenecks(ops, threshold=0.2)) == {"scene_generation": 0.6,
                                                            "dialogue": 0.3}


def test_parallel_children_count_for_the_wall_time_they_cover():
    # five scenes generated at once, each 8s, inside a 10s root
    ops = [op("root", "generate_full_script", 0, 10)]
    ops += [op(f"s{n}", "scene_generation", 1, 8, "root") for n in range(5)]

    findings = find_bottlenecks(ops, threshold=0.2)

    assert shares(findings) == {"scene_generation": 0.8}
    assert findings[0].self_time_s == pytest.approx(8)
    assert findings[0].occurrences == 5


def test_threshold_is_strictly_exceeded():
    ops = [op("a", "first", 0, 2), op("b", "second", 2, 8)]
    assert shares(find_bottlenecks(ops, threshold=0.2)) == {"second": 0.8}
    assert shares(find_bottlenecks(ops, threshold=0.8)) == {}
    assert shares(find_bottlenecks(ops, threshold=0.1)) == {"second": 0.8, "first": 0.2}


def test_self_time_of_a_nested_chain():
    ops = [op("a", "outer", 0, 10), op("b", "middle", 1, 8, "a"), op("c", "inner", 2, 2, "b")]
    assert shares(find_bottlenecks(ops, threshold=0.0)) == {"middle": 0.6, "inner": 0.2,
                                                            "outer": 0.2}


def test_no_operations_no_bottlenecks():
    assert find_bottlenecks([], threshold=0.2) == []


@pytest.mark.django_db
def test_analyze_session_twice_gives_the_same_rows(project):
    ops = [operation("root", "generate_full_script", start_s=0, duration_s=10),
           operation("a", "scene_generation", start_s=0, duration_s=7, parent_id="root")]
    payload = session_payload(operations=ops, duration_s=10)
    stored = store_payload(project, SessionPayload.model_validate(payload))

    analyze_session(stored.session)
    bottlenecks = OperationStat.objects.filter(is_bottleneck=True).order_by("-share")
    first = list(bottlenecks.values_list("name", "self_time_s", "share", "occurrences"))
    analyze_session(stored.session)

    assert list(bottlenecks.values_list("name", "self_time_s", "share", "occurrences")) == first
    assert first == [("scene_generation", pytest.approx(7), pytest.approx(0.7), 1),
                     ("generate_full_script", pytest.approx(3), pytest.approx(0.3), 1)]
    assert Session.objects.get().analyzed_at is not None


@pytest.mark.django_db
@override_settings(BOTTLENECK_THRESHOLD=0.5)
def test_threshold_comes_from_settings(project):
    ops = [operation("root", "generate_full_script", start_s=0, duration_s=10),
           operation("a", "scene_generation", start_s=0, duration_s=7, parent_id="root")]
    payload = session_payload(operations=ops, duration_s=10)
    stored = store_payload(project, SessionPayload.model_validate(payload))

    analyze_session(stored.session)

    bottlenecks = OperationStat.objects.filter(is_bottleneck=True)
    assert list(bottlenecks.values_list("name", flat=True)) == ["scene_generation"]


@pytest.mark.django_db
def test_a_short_step_of_a_long_session_is_no_bottleneck(project):
    ops = [operation("a", "scene_generation", start_s=2, duration_s=1)]
    payload = session_payload(operations=ops, duration_s=10)
    stored = store_payload(project, SessionPayload.model_validate(payload))

    analyze_session(stored.session)

    stat = OperationStat.objects.get(name="scene_generation")
    assert (stat.share, stat.is_bottleneck) == (pytest.approx(0.1), False)
