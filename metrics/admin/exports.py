"""Selected sessions as CSV (one row each) or as schema-v1 JSON the ingest API takes back.

Both stream, one session at a time, so exporting sessions with tens of thousands of
operations does not hold them all in memory.
"""

import json
from collections.abc import Iterable, Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db.models import QuerySet
from django.http import StreamingHttpResponse
from django.utils import timezone

from metrics import spreadsheet
from metrics.models import Session
from metrics.payloads import session_payload

# (header, attribute or callable): the figures an editor compares in a spreadsheet.
CSV_COLUMNS = [
    ("session id", "external_id"),
    ("project", lambda s: s.project.slug),
    ("episode", lambda s: s.episode.code if s.episode_id else ""),
    ("workflow", "workflow"),
    ("release", "release"),
    ("environment", "environment"),
    ("host", "host"),
    ("status", "status"),
    ("started at", lambda s: s.started_at.isoformat()),
    ("ended at", lambda s: s.ended_at.isoformat() if s.ended_at else ""),
    ("duration s", "duration_s"),
    ("operations", "operations_count"),
    ("api calls", "api_calls_count"),
    ("api errors", "api_errors_count"),
    ("prompt tokens", "prompt_tokens"),
    ("completion tokens", "completion_tokens"),
    ("total tokens", "total_tokens"),
    ("cost usd", "cost_usd"),
    ("cache hits", "cache_hits"),
    ("cache misses", "cache_misses"),
    ("cache hit rate", "cache_hit_rate"),
    ("tags", lambda s: ", ".join(s.tags)),
    ("baseline", "is_baseline"),
    ("notes", "notes"),
]
def csv_rows(sessions: Iterable[Session]) -> Iterator[list]:
    for session in sessions:
        yield [column(session) if callable(column) else getattr(session, column)
               for _, column in CSV_COLUMNS]


def json_chunks(sessions: Iterable[Session]) -> Iterator[str]:
    """``{"sessions": [payload, ...]}``: the body ``POST /api/v1/batch`` takes.

    The batch route takes up to 100 sessions per request; a larger export is split by the
    sender, one payload per session as it stands.
    """
    yield '{"sessions": ['
    for index, session in enumerate(sessions):
        yield ("," if index else "") + json.dumps(session_payload(session), cls=DjangoJSONEncoder)
    yield "]}"


def _filename(extension: str) -> str:
    return f"perfmon-sessions-{timezone.now():%Y%m%d-%H%M%S}.{extension}"


def _stream(queryset: QuerySet[Session]) -> Iterator[Session]:
    return queryset.select_related("project", "episode").order_by("started_at", "pk").iterator(
        chunk_size=500
    )


def csv_response(queryset: QuerySet[Session]) -> StreamingHttpResponse:
    return spreadsheet.csv_response(
        _filename("csv"), [header for header, _ in CSV_COLUMNS], csv_rows(_stream(queryset))
    )


def json_response(queryset: QuerySet[Session]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(
        json_chunks(_stream(queryset)), content_type="application/json"
    )
    response["Content-Disposition"] = f'attachment; filename="{_filename("json")}"'
    return response
