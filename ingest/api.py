"""The ingest API, schema v1: authenticated by project API keys."""

from typing import Any, Literal

from django.db import DatabaseError
from django.http import HttpRequest
from ninja import Query, Router, Schema, Status
from pydantic import Field, ValidationError

from ingest import presenters, services
from ingest.auth import ApiKeyAuth
from ingest.bounds import unstorable_reason
from ingest.errors import PayloadRefused, is_retryable
from ingest.schemas import (
    BatchIn,
    BatchItemOut,
    BatchOut,
    EpisodeOut,
    EpisodePageOut,
    SessionDetailOut,
    SessionPageOut,
    SessionPayload,
    StoredOut,
    Text,
    UtcDatetime,
)
from ingest.throttle import ApiKeyRateThrottle
from metrics import payloads, selectors
from metrics.models import Project

router = Router(auth=ApiKeyAuth(), throttle=ApiKeyRateThrottle(), tags=["sessions"])

INCLUDE_PATTERN = r"^((operations|api_calls)(,(operations|api_calls))*)?$"


class Problem(Schema):
    detail: str


class ValidationProblem(Schema):
    detail: list[dict[str, Any]]


# Answers every route may give besides its own: documented so clients (and the fuzz test)
# can rely on them.
COMMON = {
    400: Problem,  # malformed JSON, bad cursor
    401: Problem,  # missing, unknown or revoked key
    413: Problem,  # body (or what it inflates to) over the limit
    415: Problem,  # a Content-Encoding other than gzip
    422: ValidationProblem,  # the request does not match the schema
    429: Problem,  # over the key's rate limit; see Retry-After
    503: Problem,  # the database is unavailable for a moment; see Retry-After
}


class SessionListQuery(Schema):
    episode: Text | None = None
    workflow: Text | None = None
    status: Literal["running", "completed", "failed"] | None = None
    since: UtcDatetime | None = None
    until: UtcDatetime | None = None
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


class PageQuery(Schema):
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200)


def _project(request: HttpRequest) -> Project:
    return request.auth.project


@router.post(
    "/sessions",
    response={**COMMON, 200: StoredOut, 201: StoredOut},
    summary="Store or merge one session (schema v1)",
)
def post_session(request: HttpRequest, payload: SessionPayload):
    result = services.store_payload(_project(request), payload)
    body = {
        "id": result.session.external_id,
        "created": result.created,
        "url": presenters.dashboard_url(request, result.session),
    }
    return Status(201 if result.created else 200, body)


@router.post(
    "/batch",
    response={**COMMON, 200: BatchOut},
    summary="Store up to 100 sessions, each on its own",
)
def post_batch(request: HttpRequest, batch: BatchIn):
    project = _project(request)
    results = [
        _store_batch_item(request, project, index, item)
        for index, item in enumerate(batch.sessions)
    ]
    stored = sum(1 for r in results if r.status == "stored")
    return {"results": results, "stored": stored, "rejected": len(results) - stored}


def _store_batch_item(request: HttpRequest, project: Project, index: int, item: dict):
    try:
        payload = SessionPayload.model_validate(item)
    except ValidationError as exc:
        errors = [
            {"loc": list(err["loc"]), "msg": err["msg"], "type": err["type"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        return BatchItemOut(index=index, status="error", errors=errors)
    try:
        result = services.store_payload(project, payload)
    except PayloadRefused as exc:
        return BatchItemOut(index=index, status="error", errors=[exc.detail()])
    except DatabaseError as exc:
        if is_retryable(exc):  # the database is away: the whole batch gets the 503
            raise
        problem = {"loc": [], "msg": "a value does not fit the database", "type": "storage_error"}
        return BatchItemOut(index=index, status="error", errors=[problem])
    return BatchItemOut(
        index=index,
        status="stored",
        id=result.session.external_id,
        created=result.created,
        url=presenters.dashboard_url(request, result.session),
    )


@router.get("/sessions", response={**COMMON, 200: SessionPageOut})
def list_sessions(request: HttpRequest, query: Query[SessionListQuery]):
    qs = selectors.sessions(
        project=_project(request),
        filters=selectors.SessionFilters(
            episode=query.episode,
            workflow=query.workflow,
            status=query.status,
            since=query.since,
            until=query.until,
        ),
    )
    try:
        rows, next_cursor = selectors.session_page(qs, cursor=query.cursor, limit=query.limit)
    except selectors.InvalidCursor as exc:
        return Status(400, {"detail": str(exc)})
    items = [presenters.session_summary(request, session) for session in rows]
    return {"items": items, "next_cursor": next_cursor}


@router.get(
    "/sessions/{session_id}",
    response={**COMMON, 200: SessionDetailOut, 404: Problem},
    summary="One session by the client's session id",
)
def get_session(
    request: HttpRequest,
    session_id: str,
    include: str = Query(
        "",
        pattern=INCLUDE_PATTERN,
        description="Comma-separated extra lists: operations, api_calls.",
    ),
    page_size: int = Query(
        payloads.DEFAULT_PAGE_ROWS, ge=1, le=payloads.MAX_PAGE_ROWS,
        description="Operations and API calls per page of the included lists.",
    ),
    operations_cursor: str | None = Query(
        None, max_length=200, description="operations_next_cursor of the previous page."
    ),
    api_calls_cursor: str | None = Query(
        None, max_length=200, description="api_calls_next_cursor of the previous page."
    ),
):
    wanted = set(filter(None, include.split(",")))
    paging = presenters.RowPaging(page_size, operations_cursor, api_calls_cursor)
    session = None
    if unstorable_reason(session_id) is None:  # such an id cannot have been stored
        session = selectors.session_by_external_id(
            project=_project(request), external_id=session_id
        )
    if session is None:
        return Status(404, {"detail": f"no session {session_id!r} in this project"})
    try:
        return presenters.session_detail(request, session, include=wanted, paging=paging)
    except payloads.InvalidRowCursor as exc:
        return Status(400, {"detail": str(exc)})


@router.get("/episodes", response={**COMMON, 200: EpisodePageOut}, tags=["episodes"])
def list_episodes(request: HttpRequest, query: Query[PageQuery]):
    qs = selectors.episodes_with_totals(project=_project(request))
    try:
        rows, next_cursor = selectors.episode_page(qs, cursor=query.cursor, limit=query.limit)
    except selectors.InvalidCursor as exc:
        return Status(400, {"detail": str(exc)})
    return {"items": [presenters.episode_totals(e) for e in rows], "next_cursor": next_cursor}


@router.get(
    "/episodes/{code}", response={**COMMON, 200: EpisodeOut, 404: Problem}, tags=["episodes"]
)
def get_episode(request: HttpRequest, code: str):
    episode = None
    if unstorable_reason(code) is None:  # such a code cannot have been stored
        episode = selectors.episodes_with_totals(project=_project(request)).filter(code=code)
        episode = episode.first()
    if episode is None:
        return Status(404, {"detail": f"no episode {code!r} in this project"})
    return presenters.episode_totals(episode)


