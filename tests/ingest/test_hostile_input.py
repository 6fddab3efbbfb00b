"""Hostile input: every case gets a 4xx naming the field, or is stored as sent; never a 5xx.

This table runs on SQLite and again on PostgreSQL (the CI's second pass), because the two
databases refuse different things: PostgreSQL text cannot hold NUL and its integer
columns stop at 2**31 - 1, while SQLite stores both and then fails later, reading.
"""

import base64
import copy
import gzip
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

import pytest
from django.test import Client, override_settings

from metrics.analysis import analyze
from metrics.models import ApiCall, Operation, Session
from tests.dashboard.world import user_with
from tests.factories import api_call, operation, script_payload, session_payload

pytestmark = pytest.mark.django_db

NUL = "a\x00b"
LONE_SURROGATE = "a\ud800b"
INT32_MAX = 2**31 - 1


def put(payload: dict, path: tuple, value: Any) -> dict:
    """A copy of ``payload`` with the value at ``path`` replaced (a key is added if new)."""
    changed = copy.deepcopy(payload)
    node = changed
    for step in path[:-1]:
        node = node[step]
    node[path[-1]] = value
    return changed


def rename_key(payload: dict, path: tuple, new_key: str) -> dict:
    """A copy of ``payload`` with the mapping at ``path`` given one more key, ``new_key``."""
    changed = copy.deepcopy(payload)
    node = changed
    for step in path:
        node = node.setdefault(step, {}) if isinstance(node, dict) else node[step]
    node[new_key] = 1
    return changed


def nested_list(depth: int) -> list:
    value: list = []
    for _ in range(depth - 1):
        value = [value]
    return value


def locs(response) -> list[list]:
    return [error["loc"] for error in response.json()["detail"]]


BASE = script_payload("hostile")


@dataclass(frozen=True)
class Refused:
    name: str
    payload: Callable[[], dict]
    loc: list  # the field path the 422 must name, after "body", "payload"


REFUSED = [
    # NUL (and lone surrogates) in every text field: PostgreSQL text cannot hold them.
    *[
        Refused(f"NUL in session.{field}", lambda f=field: put(BASE, ("session", f), NUL),
                ["session", field])
        for field in ("id", "episode", "workflow", "release", "environment", "host")
    ],
    Refused("NUL in a tag", lambda: put(BASE, ("session", "tags"), ["ok", NUL]),
            ["session", "tags", 1]),
    Refused("NUL in a session metadata key",
            lambda: rename_key(BASE, ("session", "metadata"), NUL), ["session", "metadata"]),
    Refused("NUL in a nested session metadata value",
            lambda: put(BASE, ("session", "metadata"), {"a": {"b": [1, NUL]}}),
            ["session", "metadata"]),
    Refused("NUL in a counter name",
            lambda: put(BASE, ("session", "counters"), {NUL: 1}), ["session", "counters", NUL]),
    Refused("NUL in a cache name",
            lambda: put(BASE, ("session", "cache", "by_name"), {NUL: {"hits": 1, "misses": 0}}),
            ["session", "cache", "by_name", NUL]),
    *[
        Refused(f"NUL in operation.{field}", lambda f=field: put(BASE, ("operations", 1, f), NUL),
                ["operations", 1, field])
        for field in ("id", "name", "error", "parent_id")
    ],
    Refused("NUL in an operation metadata key",
            lambda: rename_key(BASE, ("operations", 1, "metadata"), NUL),
            ["operations", 1, "metadata"]),
    Refused("NUL in an operation metadata value",
            lambda: put(BASE, ("operations", 1, "metadata"), {"k": NUL}),
            ["operations", 1, "metadata"]),
    *[
        Refused(f"NUL in api_call.{field}", lambda f=field: put(BASE, ("api_calls", 0, f), NUL),
                ["api_calls", 0, field])
        for field in ("id", "operation_id", "provider", "model", "error_message", "prompt_hash")
    ],
    Refused("lone surrogate in an operation name",
            lambda: put(BASE, ("operations", 1, "name"), LONE_SURROGATE),
            ["operations", 1, "name"]),
    Refused("lone surrogate in a metadata value",
            lambda: put(BASE, ("session", "metadata"), {"k": LONE_SURROGATE}),
            ["session", "metadata"]),
    # Integers past the column they land in.
    Refused("session cache.hits = 2**31 (integer column)",
            lambda: put(BASE, ("session", "cache", "hits"), 2**31), ["session", "cache", "hits"]),
    Refused("session cache.misses = 2**31",
            lambda: put(BASE, ("session", "cache", "misses"), 2**31),
            ["session", "cache", "misses"]),
    Refused("operation cache_hits = 2**31",
            lambda: put(BASE, ("operations", 1, "cache_hits"), 2**31),
            ["operations", 1, "cache_hits"]),
    Refused("operation cache_misses = 2**31",
            lambda: put(BASE, ("operations", 1, "cache_misses"), 2**31),
            ["operations", 1, "cache_misses"]),
    Refused("prompt_tokens = 2**53 + 1",
            lambda: put(BASE, ("api_calls", 0, "prompt_tokens"), 2**53 + 1),
            ["api_calls", 0, "prompt_tokens"]),
    Refused("total_tokens = 2**63 (bigint)",
            lambda: put(BASE, ("api_calls", 0, "total_tokens"), 2**63),
            ["api_calls", 0, "total_tokens"]),
    Refused("attempts = 2**31", lambda: put(BASE, ("api_calls", 0, "attempts"), 2**31),
            ["api_calls", 0, "attempts"]),
    Refused("counter = 2**64", lambda: put(BASE, ("session", "counters"), {"x": 2**64}),
            ["session", "counters", "x"]),
    Refused("sequence = 2**63 (bigint)", lambda: put(BASE, ("session", "sequence"), 2**63),
            ["session", "sequence"]),
    Refused("cost_usd = 1e10 (one call)", lambda: put(BASE, ("api_calls", 0, "cost_usd"), 1e10),
            ["api_calls", 0, "cost_usd"]),
    # Sums past the session's columns.
    Refused("1,100 calls of 2**53 tokens (the session's bigint total)",
            lambda: session_payload("sum", api_calls=[
                api_call(f"c{i}", prompt_tokens=2**53, completion_tokens=0)
                | {"total_tokens": 2**53} for i in range(1100)]),
            ["api_calls"]),
    Refused("2 calls whose prompt + completion make total_tokens pass the cap",
            lambda: session_payload("sum2", api_calls=[
                api_call(f"c{i}", prompt_tokens=2**52 + 1, completion_tokens=2**52)
                | {"total_tokens": None} for i in range(2)]),
            ["api_calls"]),
    Refused("2 calls of 2**53 cached tokens (priced by the server, so bounded too)",
            lambda: session_payload("sum3", api_calls=[
                api_call(f"c{i}", prompt_tokens=2**53, completion_tokens=0)
                | {"cached_tokens": 2**53, "total_tokens": 2**53} for i in range(2)]),
            ["api_calls"]),
    Refused("1,001 calls at cost_usd = 1e9 (the session's cost cap)",
            lambda: session_payload("cost", api_calls=[
                api_call(f"c{i}", cost_usd=1e9) for i in range(1001)]),
            ["api_calls"]),
    # Nesting, bounded before anything recursive walks it.
    Refused("operation metadata list nested 500 deep",
            lambda: put(BASE, ("operations", 1, "metadata"), {"x": nested_list(500)}),
            ["operations", 1, "metadata"]),
    Refused("session metadata list nested 900 deep",
            lambda: put(BASE, ("session", "metadata"), {"x": nested_list(900)}),
            ["session", "metadata"]),
    # Wrong types are refused, not coerced.
    Refused('success: "yes"', lambda: put(BASE, ("operations", 1, "success"), "yes"),
            ["operations", 1, "success"]),
    Refused("schema_version: true", lambda: put(BASE, ("schema_version",), True),
            ["schema_version"]),
    Refused('error: "no"', lambda: put(BASE, ("api_calls", 0, "error"), "no"),
            ["api_calls", 0, "error"]),
    Refused("streamed: 1", lambda: put(BASE, ("api_calls", 0, "streamed"), 1),
            ["api_calls", 0, "streamed"]),
    Refused('prompt_tokens: "700"', lambda: put(BASE, ("api_calls", 0, "prompt_tokens"), "700"),
            ["api_calls", 0, "prompt_tokens"]),
    Refused("prompt_tokens: 700.0", lambda: put(BASE, ("api_calls", 0, "prompt_tokens"), 700.0),
            ["api_calls", 0, "prompt_tokens"]),
    Refused('latency_s: "1.2"', lambda: put(BASE, ("api_calls", 0, "latency_s"), "1.2"),
            ["api_calls", 0, "latency_s"]),
    Refused("started_at: 0 (a number, not a time)",
            lambda: put(BASE, ("session", "started_at"), 0), ["session", "started_at"]),
    Refused("cache.hits: true", lambda: put(BASE, ("session", "cache", "hits"), True),
            ["session", "cache", "hits"]),
    # Operation trees.
    Refused("an operation that ends before it starts",
            lambda: put(BASE, ("operations", 1, "ended_at"), "2026-11-20T09:00:00+00:00"),
            ["operations", 1]),
    Refused("an operation that is its own parent",
            lambda: put(BASE, ("operations", 1, "parent_id"), "scene0"), ["operations", 1]),
    Refused("a parent cycle within one payload",
            lambda: put(BASE, ("operations", 0, "parent_id"), "scene2"),
            ["operations", 0, "parent_id"]),
]


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_hostile_payloads_are_refused_with_the_field_path(api, case):
    response = api.post("/sessions", case.payload())

    assert response.status_code == 422, response.content[:500]
    assert ["body", "payload", *case.loc] in [loc[: 2 + len(case.loc)] for loc in locs(response)]
    assert Session.objects.count() == 0


@pytest.mark.parametrize("case", REFUSED, ids=[case.name for case in REFUSED])
def test_a_batch_refuses_only_its_hostile_item(api, case):
    good = script_payload("good-1"), script_payload("good-2")
    response = api.post("/batch", {"sessions": [good[0], case.payload(), good[1]]})

    assert response.status_code == 200
    results = response.json()["results"]
    assert [r["status"] for r in results] == ["stored", "error", "stored"]
    assert case.loc in [err["loc"][: len(case.loc)] for err in results[1]["errors"]]
    assert set(Session.objects.values_list("external_id", flat=True)) == {"good-1", "good-2"}


# --- Stored faithfully ---------------------------------------------------------------------


def test_values_at_the_column_bounds_are_stored_exactly(api):
    payload = put(BASE, ("session", "cache"), {"hits": INT32_MAX, "misses": INT32_MAX,
                                               "by_name": {"scenes": {"hits": 2**53,
                                                                      "misses": 0}}})
    payload = put(payload, ("operations", 1, "cache_hits"), INT32_MAX)
    payload["api_calls"] = [api_call("big", prompt_tokens=2**53, completion_tokens=0)
                            | {"total_tokens": 2**53, "cost_usd": 1e9}]
    payload = put(payload, ("session", "sequence"), 2**63 - 1)

    assert api.post("/sessions", payload).status_code == 201

    session = Session.objects.get()
    assert (session.cache_hits, session.cache_misses) == (INT32_MAX, INT32_MAX)
    assert session.cache_by_name == {"scenes": {"hits": 2**53, "misses": 0}}
    assert session.client_sequence == 2**63 - 1
    assert Operation.objects.get(client_id="scene0").cache_hits == INT32_MAX
    call = ApiCall.objects.get()
    assert (call.prompt_tokens, call.total_tokens) == (2**53, 2**53)
    assert (session.total_tokens, session.cost_usd) == (2**53, Decimal("1000000000"))


def test_astral_characters_and_metadata_at_the_depth_limit_are_stored_as_sent(api):
    text = "scène 🎬 𝔘𝔫𝔦𝔠𝔬𝔡𝔢"
    deep = {"x": nested_list(6)}  # metadata, this mapping and 6 lists: 8 levels, the limit
    payload = put(BASE, ("operations", 1, "name"), text)
    payload = put(payload, ("session", "metadata"), {text: deep})

    assert api.post("/sessions", payload).status_code == 201

    assert Operation.objects.get(client_id="scene0").name == text
    assert Session.objects.get().metadata == {text: deep}


def test_eleven_calls_at_a_billion_dollars_are_stored_and_every_page_still_reads(
        api, client, project):
    """The session total (1.1e10 USD) is past one call's column but within the total's;
    on SQLite a total past its column broke every page that read it."""
    calls = [api_call(f"c{i}", cost_usd=1e9) for i in range(11)]
    assert api.post("/sessions", session_payload("rich", api_calls=calls)).status_code == 201
    session = Session.objects.get()
    analyze.analyze_session(session)  # the rollups the overview reads

    assert session.cost_usd == Decimal("11000000000")
    assert api.get("/sessions").json()["items"][0]["api"]["cost_usd"] == 1.1e10
    assert api.get("/episodes").json()["items"][0]["cost_usd"] == 1.1e10
    client.force_login(user_with("view_session"))
    bodies = {}
    for url in ("/", "/?export=csv", "/episodes/", "/episodes/?export=csv", "/episodes/ep001/",
                "/sessions/rich/", "/costs/", "/operations/"):
        response = client.get(url)
        assert response.status_code == 200, url
        bodies[url] = body_of(response)  # a CSV streams: its rows are read only here
    assert "11000000000" in bodies["/?export=csv"]


def body_of(response) -> str:
    if response.streaming:
        return b"".join(response.streaming_content).decode()
    return response.content.decode()


def test_a_huge_server_priced_call_fits_its_columns_and_every_page_still_reads(
        api, client, project):
    """2**53 output tokens of the dearest model: priced by analysis, not by the client."""
    call = api_call("dear", model="claude-opus-4-1", prompt_tokens=0, completion_tokens=2**53)
    call |= {"provider": "anthropic", "total_tokens": 2**53}
    assert api.post("/sessions", session_payload("dear", api_calls=[call])).status_code == 201
    analyze.analyze_session(Session.objects.get())

    # 9,007,199,254,740,992 tokens x 75 USD per million tokens (the 0004 price row)
    expected = 9_007_199_254_740_992 * 75 / 1_000_000
    session = Session.objects.get()
    assert ApiCall.objects.get().cost_source == "price_table"
    assert float(session.cost_usd) == pytest.approx(expected, rel=1e-12)
    client.force_login(user_with("view_session"))
    for url in ("/", "/?export=csv", "/episodes/", "/sessions/dear/", "/costs/"):
        response = client.get(url)
        assert response.status_code == 200, url
        body_of(response)


def test_session_sums_are_bounded_across_merges(api):
    first = [api_call(f"a{i}", prompt_tokens=2**53 // 1000, completion_tokens=0,
                      cost_usd=1e9) | {"total_tokens": 2**53 // 1000} for i in range(600)]
    second = [api_call(f"b{i}", prompt_tokens=2**53 // 1000, completion_tokens=0,
                       cost_usd=1e9) | {"total_tokens": 2**53 // 1000} for i in range(600)]
    assert api.post("/sessions", session_payload("merged", api_calls=first)).status_code == 201

    response = api.post("/sessions", session_payload("merged", api_calls=second))

    assert response.status_code == 422
    assert ["body", "payload", "api_calls"] in locs(response)
    session = Session.objects.get()
    assert session.api_calls_count == 600  # the refused part changed nothing
    assert session.cost_usd == Decimal(600 * 10**9)


def test_a_parent_cycle_across_two_payloads_is_refused_at_the_closing_link(api):
    first = session_payload("tree", operations=[
        operation("a", "child", start_s=1, duration_s=1, parent_id="b")])
    assert api.post("/sessions", first).status_code == 201
    closing = session_payload("tree", operations=[
        operation("ok", "other", start_s=0, duration_s=1),
        operation("b", "parent", start_s=0, duration_s=5, parent_id="a")])

    response = api.post("/sessions", closing)

    assert response.status_code == 422
    assert ["body", "payload", "operations", 1, "parent_id"] in locs(response)
    assert "b -> a -> b" in response.json()["detail"][0]["msg"]
    assert list(Operation.objects.values_list("client_id", flat=True)) == ["a"]


def test_a_multi_member_gzip_body_is_read_whole(api):
    body = json.dumps(script_payload("gz")).encode()
    half = len(body) // 2
    two_members = gzip.compress(body[:half]) + gzip.compress(body[half:])

    response = api.client.post("/api/v1/sessions", two_members, content_type="application/json",
                               headers={**api.headers, "Content-Encoding": "gzip"})

    assert response.status_code == 201
    assert Operation.objects.count() == len(script_payload("gz")["operations"])


@override_settings(INGEST_MAX_BODY_BYTES=10_000)
def test_a_multi_member_gzip_body_is_capped_as_a_whole(api):
    member = gzip.compress(b" " * 6_000)
    response = api.client.post("/api/v1/sessions", member * 2 + gzip.compress(b"{}"),
                               content_type="application/json",
                               headers={**api.headers, "Content-Encoding": "gzip"})

    assert response.status_code == 413


# --- Reads -----------------------------------------------------------------------------


@pytest.mark.parametrize("query", [{"episode": NUL}, {"workflow": NUL}])
def test_hostile_list_filters_are_422(api, query):
    response = api.get("/sessions", **query)

    assert response.status_code == 422
    assert ["query", next(iter(query))] in locs(response)


@pytest.mark.parametrize("path", ["/sessions/a%00b", "/episodes/a%00b", "/sessions/%ED%A0%80"])
def test_hostile_ids_in_the_path_are_404(api, path):
    assert api.get(path).status_code == 404


def b64(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize("path", ["/sessions", "/episodes"])
@pytest.mark.parametrize("cursor", ["AA", "AAAA", "!!!", "A", b64("ep\x00"), b64("\ud7ff|1")])
def test_malformed_cursors_are_400(api, path, cursor):
    api.post("/sessions", script_payload("paged"))

    response = api.get(path, cursor=cursor)

    assert response.status_code == 400, response.content


@pytest.mark.parametrize("cursor", [
    b64("not-a-cursor"), b64("2026-11-20T10:00:00+00:00|" + "9" * 30),
    b64("2026-11-20T10:00:00|5"), b64("2026-11-20T10:00:00+00:00|-1"),
])
def test_malformed_session_cursors_are_400(api, cursor):
    api.post("/sessions", script_payload("paged"))

    assert api.get("/sessions", cursor=cursor).status_code == 400


@pytest.mark.parametrize("page", ["99999999999999999999999", "-5", "1e9", "9223372036854775807"])
def test_a_huge_page_number_shows_the_last_page(api, client, page):
    api.post("/sessions", script_payload("paged"))
    client.force_login(user_with("view_session"))

    response = client.get("/episodes/", {"page": page})

    assert response.status_code == 200
    assert b"ep001" in response.content


# --- Keys in logs ----------------------------------------------------------------------


@override_settings(DEBUG=True)
def test_a_key_sent_without_bearer_is_never_logged(api_key, caplog):
    raw_key = api_key[1]
    client = Client()
    with caplog.at_level(logging.DEBUG):
        for header in (raw_key, f"Token {raw_key}", f"bearer{raw_key}"):
            response = client.get("/api/v1/sessions", headers={"Authorization": header})
            assert response.status_code == 401
    assert raw_key not in caplog.text
    assert raw_key[:12] not in caplog.text


# --- 503 only when a retry can succeed ---------------------------------------------------


def test_a_value_the_database_cannot_hold_is_not_called_retryable():
    from django.db import DatabaseError, connection

    from ingest.errors import is_retryable

    overflow = {  # the same mistake, as each database reports it
        "sqlite": "SELECT SUM(x) FROM (SELECT 9223372036854775807 AS x UNION ALL SELECT 1)",
        "postgresql": "SELECT 9223372036854775807::bigint + 1",
    }[connection.vendor]
    with pytest.raises(DatabaseError) as raised, connection.cursor() as cursor:
        cursor.execute(overflow)

    assert not is_retryable(raised.value)
