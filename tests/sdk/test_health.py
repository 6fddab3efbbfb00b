"""The SDK against the real ingest API: the new ledger fields, server-side pricing, the SDK's
health report in each session, and a bad API key that is spooled and explained."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from decimal import Decimal

import pytest

import perfmon
from perfmon import get_performance_monitor
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


def _record_claude_session(session_id: str) -> perfmon.PerformanceMetrics:
    with monitor.session(session_id, episode="ep001") as metrics:
        with monitor.operation("scene_generation"):
            monitor.record_api_call(
                model="claude-sonnet-4", provider="anthropic",
                prompt_tokens=10_000, cached_tokens=6_000, cache_write_tokens=3_000,
                cache_write_1h_tokens=1_000, completion_tokens=500, reasoning_tokens=200,
                latency_s=2.5, time_to_first_token_s=0.4, streamed=True, attempts=2,
            )
        with monitor.operation("joke_analysis"):
            pass
    return metrics


@pytest.fixture
def sonnet_price(db):
    """claude-sonnet-4's list price, stated here: the seeded rows do not survive the other
    live-server tests' flushes."""
    from metrics.models import ModelPrice

    ModelPrice.objects.update_or_create(
        provider="anthropic", model="claude-sonnet-4", valid_from=datetime(2026, 1, 1, tzinfo=UTC),
        defaults={"input_per_mtok": Decimal("3"), "output_per_mtok": Decimal("15"),
                  "cached_input_per_mtok": Decimal("0.30"),
                  "cache_write_per_mtok": Decimal("3.75"),
                  "cache_write_1h_per_mtok": Decimal("6"),
                  "source": "Anthropic list price (test)"},
    )


@pytest.mark.django_db(transaction=True)
def test_the_ledger_reaches_the_server_which_prices_the_call(
    live_server, api_key, tmp_path, sonnet_price
):
    from metrics.models import ApiCall

    assert perfmon.configure(url=live_server.url, api_key=api_key[1], spool_dir=tmp_path,
                             max_retries=0)
    metrics = _record_claude_session("ep001_ledger")
    assert perfmon.flush(10)

    (sent,) = metrics.to_dict()["api_calls"]
    assert sent["cost_usd"] is None  # the SDK leaves pricing to the server
    call = ApiCall.objects.get(session__external_id="ep001_ledger")
    assert (call.prompt_tokens, call.cached_tokens, call.cache_write_tokens,
            call.cache_write_1h_tokens, call.completion_tokens, call.reasoning_tokens) == (
        10_000, 6_000, 3_000, 1_000, 500, 200)
    assert (call.streamed, call.time_to_first_token_s, call.attempts) == (True, 0.4, 2)
    assert call.cost_source == "price_table"
    # claude-sonnet-4 per million: input $3, cached $0.30, 5-min write $3.75, 1-hour write $6,
    # output $15. 1,000 fresh input, 6,000 cached, 2,000 5-min writes, 1,000 1-hour writes.
    expected = (1_000 * 3 + 6_000 * 0.30 + 2_000 * 3.75 + 1_000 * 6 + 500 * 15) / 1e6
    assert call.cost_usd == Decimal("0.0258") == Decimal(str(round(expected, 6)))

    # The local summary's figure is an estimate from the built-in table, and says so.
    assert metrics.estimated_api_cost == pytest.approx(expected)
    assert ("  Est. Cost: $0.0258 (1 call est. from the built-in price table; "
            "the server prices them)") in metrics.get_summary().splitlines()


def test_a_cost_the_caller_passes_is_sent_as_given():
    with monitor.session("ep001_given") as metrics:
        monitor.record_api_call(cost=0.0123, model="claude-sonnet-4", prompt_tokens=10,
                                completion_tokens=5)
    (sent,) = metrics.to_dict()["api_calls"]
    assert sent["cost_usd"] == 0.0123
    assert "  Est. Cost: $0.0123" in metrics.get_summary().splitlines()


def test_default_ledger_fields_are_left_out_of_the_payload():
    with monitor.session("ep001_plain") as metrics:
        monitor.record_api_call(model="gpt-4o-mini", prompt_tokens=10, completion_tokens=5)
    (sent,) = metrics.to_dict()["api_calls"]
    assert not {"cache_write_1h_tokens", "reasoning_tokens", "streamed",
                "time_to_first_token_s", "attempts"} & set(sent)


@pytest.mark.django_db(transaction=True)
def test_each_session_carries_the_sdks_health_to_the_session_api(
    live_server, api_key, api, tmp_path
):
    from metrics.models import Session

    assert perfmon.configure(url=live_server.url, api_key=api_key[1], spool_dir=tmp_path,
                             max_retries=0)
    _record_claude_session("ep001_first")
    assert perfmon.flush(10)
    _record_claude_session("ep001_second")
    assert perfmon.flush(10)

    first = Session.objects.get(external_id="ep001_first").sdk_report
    report = api.get("/sessions/ep001_second").json()["sdk"]
    assert first["sent"] == 0 and report["sent"] == 1  # counts when each was sent
    assert report["version"] == perfmon.__version__
    assert {report[k] for k in ("retried", "spooled", "dropped", "rejected", "quarantined")} == {0}
    assert report["operations"] == 2
    # measured: a few microseconds per operation plus the time inside record_api_call
    assert 0 < report["recording_overhead_s"] < 0.05


@pytest.mark.django_db(transaction=True)
def test_a_resend_replaces_the_report_with_the_newest(live_server, api_key, tmp_path):
    from metrics.models import Session
    from perfmon import _config

    assert perfmon.configure(url=live_server.url, api_key=api_key[1], spool_dir=tmp_path,
                             max_retries=0)
    metrics = _record_claude_session("ep001_resent")
    assert perfmon.flush(10)
    assert _config.get_exporter().submit(metrics)
    assert perfmon.flush(10)
    assert Session.objects.get(external_id="ep001_resent").sdk_report["sent"] == 1


@pytest.mark.django_db(transaction=True)
def test_a_bad_key_is_spooled_flush_fails_and_the_log_says_what_to_fix(
    live_server, api_key, tmp_path, caplog
):
    from metrics.models import Session

    spool = tmp_path / "spool"
    assert perfmon.configure(url=live_server.url, api_key="pm_not_a_real_key",
                             spool_dir=spool, max_retries=3, backoff_base=0.01)
    with caplog.at_level(logging.WARNING, logger="perfmon"):
        _record_claude_session("ep001_bad_key")
        assert perfmon.flush(10) is False

    stats = perfmon.stats()
    assert (stats["spooled"], stats["dropped"], stats["retried"]) == (1, 0, 0)
    assert stats["spool_files"] == 1
    assert not Session.objects.filter(external_id="ep001_bad_key").exists()
    (line,) = [r.getMessage() for r in caplog.records if "refused the API key" in r.getMessage()]
    assert "HTTP 401" in line and "PERFMON_API_KEY" in line and str(spool) in line
    assert "pm_not_a_real_key" not in caplog.text  # never log secrets

    # The same spool, resent with a key the server accepts, arrives.
    perfmon.shutdown(2)
    from perfmon._exporter import Exporter
    from perfmon._spool import Spool

    exporter = Exporter(live_server.url, api_key[1], spool_dir=next(spool.iterdir()),
                        max_retries=0)
    try:
        assert isinstance(exporter._spool, Spool) and exporter.flush(10)
        assert exporter.stats()["resent"] == 1
    finally:
        exporter.shutdown(2)
    assert Session.objects.filter(external_id="ep001_bad_key").exists()
