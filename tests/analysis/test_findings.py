"""Findings: repeated prompts, sequential calls, retry bursts, poorly cached operations."""

from datetime import timedelta
from decimal import Decimal

import pytest

from metrics.analysis import findings
from metrics.analysis.analyze import analyze_session
from metrics.analysis.findings import CallRecord
from metrics.analysis.operation_stats import NameStat
from metrics.models import Finding, Session
from tests.factories import T0, api_call, operation, session_payload


def call(call_id, *, at_s, latency_s=1.0, op="op1", model="m", error=False, prompt_hash=None,
         cost="0.01", tokens=100):
    return CallRecord(call_id, op, "acme", model, T0 + timedelta(seconds=at_s), latency_s,
                      prompt_hash, error, tokens, Decimal(cost), "price_table")


def stat(name, hits, misses):
    return NameStat(name, 1, 0, 1.0, 1.0, 0.1, False, hits, misses)


def test_same_prompt_three_times_is_a_finding_with_the_waste():
    calls = [call(f"c{i}", at_s=i * 10, prompt_hash="abc", latency_s=2.0) for i in range(3)]
    calls.append(call("other", at_s=50, prompt_hash="def"))

    [draft] = findings.repeated_prompts(calls, min_repeats=3)

    assert draft.subject == "abc"
    assert draft.evidence["times_sent"] == 3
    assert draft.evidence["call_ids"] == ["c0", "c1", "c2"]
    assert draft.impact_s == pytest.approx(4.0)  # the two repeats
    assert draft.impact_usd == Decimal("0.02")


def test_a_prompt_sent_twice_is_not_yet_a_pattern():
    calls = [call(f"c{i}", at_s=i * 10, prompt_hash="abc") for i in range(2)]
    assert findings.repeated_prompts(calls, min_repeats=3) == []


def test_calls_one_after_another_in_one_operation_could_run_in_parallel():
    calls = [call(f"c{i}", at_s=i * 2.0, latency_s=1.5) for i in range(4)]

    [draft] = findings.sequential_calls(calls, {"op1": "dialogue"}, min_calls=3)

    assert draft.subject == "dialogue"
    assert draft.evidence["calls"] == 4
    assert draft.impact_s == pytest.approx(4.5)  # 6s in sequence, 1.5s side by side


def test_overlapping_calls_are_already_parallel():
    calls = [call(f"c{i}", at_s=i * 0.5, latency_s=1.5) for i in range(4)]
    assert findings.sequential_calls(calls, {"op1": "dialogue"}, min_calls=3) == []


def test_failures_in_a_burst_then_a_success_is_a_retry_burst():
    calls = [call(f"f{i}", at_s=i * 5, error=True) for i in range(4)]
    calls.append(call("ok", at_s=25))

    [draft] = findings.retry_bursts(calls, min_failures=3, window_s=60)

    assert draft.evidence["failures"] == 4
    assert draft.evidence["recovered_call_id"] == "ok"
    assert draft.impact_s == pytest.approx(25)


def test_parallel_successes_in_the_middle_of_a_burst_do_not_split_it():
    # Three scenes' calls hit a rate limit side by side while another scene's call gets
    # through; their retries then succeed. However the parallel calls interleave, it is one
    # burst of three failures.
    calls = [call("f0", at_s=0.00, error=True), call("other", at_s=0.01),
             call("f1", at_s=0.02, error=True), call("f2", at_s=0.03, error=True),
             call("retry0", at_s=0.5), call("retry1", at_s=0.51)]

    [draft] = findings.retry_bursts(calls, min_failures=3, window_s=60)

    assert draft.evidence["failures"] == 3
    assert draft.evidence["failed_call_ids"] == ["f0", "f1", "f2"]
    assert draft.evidence["recovered_call_id"] == "retry0"


def test_failures_that_never_recover_are_not_a_retry_burst():
    calls = [call("ok", at_s=0)] + [call(f"f{i}", at_s=1 + i, error=True) for i in range(4)]
    assert findings.retry_bursts(calls, min_failures=3, window_s=60) == []


def test_failures_spread_over_hours_are_not_a_burst():
    calls = [call(f"f{i}", at_s=i * 3600, error=True) for i in range(4)]
    calls.append(call("ok", at_s=5 * 3600))
    assert findings.retry_bursts(calls, min_failures=3, window_s=60) == []


def test_an_operation_far_below_the_sessions_hit_rate_is_flagged():
    stats = [stat("dialogue", 1, 9), stat("scene_generation", 9, 1), stat("tiny", 0, 2)]

    drafts = findings.low_cache_operations(stats, session_hit_rate=0.7, ratio=0.5,
                                           min_lookups=5)

    assert [d.subject for d in drafts] == ["dialogue"]
    assert drafts[0].evidence["hit_rate"] == 0.1


@pytest.mark.django_db
def test_analysis_stores_findings_with_evidence_and_shows_them_in_the_api(api):
    ops = [operation("op1", "dialogue", start_s=0, duration_s=20)]
    calls = [api_call(f"c{i}", operation_id="op1", at_s=i * 2.0, prompt_hash="same")
             for i in range(4)]
    for c in calls:
        c["latency_s"] = 1.5
    api.post("/sessions", session_payload(operations=ops, api_calls=calls))
    analyze_session(Session.objects.get())

    kinds = set(Finding.objects.values_list("kind", flat=True))
    assert {"repeated_prompt", "sequential_calls"} <= kinds
    shown = api.get("/sessions/ep001_run1").json()["findings"]
    assert {"repeated_prompt", "sequential_calls"} <= {f["kind"] for f in shown}

    analyze_session(Session.objects.get())
    assert Finding.objects.count() == len(shown)  # re-analysis replaces, never adds
