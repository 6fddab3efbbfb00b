"""Schema v1: the payload the SDK's ``PerformanceMetrics.to_dict()`` produces.

Validation is strict at the edges that matter for storage (ids, names, sizes, finite
numbers, timezone-aware times) and open where the client owns the content
(``metadata`` and ``counters`` keep unknown keys).
"""

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticKnownError

from ingest.bounds import INT32_MAX, check_json_tree, flat_json_size_bound, storable_text

SUPPORTED_SCHEMA_VERSIONS = (1,)
MAX_OPERATIONS = 100_000
MAX_API_CALLS = 50_000
MAX_TAGS = 50
MAX_METADATA_KEYS = 100
MAX_ERROR_CHARS = 10_000
MAX_BATCH_SESSIONS = 100

# Every wire string is text PostgreSQL can store: NUL and lone surrogates are refused
# (422, with the field's path), on SQLite too, so both databases hold the same data.
Text = Annotated[str, AfterValidator(storable_text)]
Slug = Annotated[
    Text, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:\-]*$", max_length=128)
]


def bounded_text(*, max_length: int, min_length: int | None = None) -> Any:
    """``Annotated[Text, StringConstraints(min_length=..., max_length=...)]`` in one validator.

    That spelling runs three Python validators per string (the storable check, then
    pydantic's own length checks, which cannot join the core's once a Python validator
    precedes them); a payload holds thousands of such strings. This one checks the same
    in the same order, raises the same errors and documents the same JSON schema.
    """

    def check(text: str) -> str:
        if "\x00" in text or not text.isascii():  # else it holds neither NUL nor a surrogate
            storable_text(text)
        if min_length is not None and len(text) < min_length:
            raise PydanticKnownError("too_short", {
                "field_type": "Value", "min_length": min_length, "actual_length": len(text)})
        if len(text) > max_length:
            raise PydanticKnownError("too_long", {
                "field_type": "Value", "max_length": max_length, "actual_length": len(text)})
        return text

    schema: dict[str, Any] = {"maxLength": max_length}
    if min_length is not None:
        schema["minLength"] = min_length
    schema["type"] = "string"
    return Annotated[str, AfterValidator(check), WithJsonSchema(schema)]


ClientId = bounded_text(min_length=1, max_length=64)
Name = bounded_text(min_length=1, max_length=200)
# Lengths match the Session columns they are stored in.
Label = bounded_text(max_length=128)
EnvironmentName = bounded_text(max_length=64)
HostName = bounded_text(max_length=255)
ErrorText = bounded_text(max_length=MAX_ERROR_CHARS)
ProviderName = bounded_text(max_length=64)
ModelName = bounded_text(max_length=128)
PromptHash = bounded_text(max_length=128)
# Numbers are strict: "yes" is not a boolean, true is not 1 and "5" is not a count.
# Token counts land in bigint columns and are summed per session (see ingest.bounds);
# cache counts land in integer columns.
Count = Annotated[StrictInt, Field(ge=0, le=2**53)]
CacheCount = Annotated[StrictInt, Field(ge=0, le=INT32_MAX)]
Seconds = Annotated[StrictFloat, Field(ge=0, le=10**9)]
Usd = Annotated[StrictFloat, Field(ge=0, le=10**9)]
Flag = StrictBool


MAX_OPERATION_METADATA_BYTES = 16 * 1024
MAX_SESSION_METADATA_BYTES = 64 * 1024


def _to_utc(value: datetime) -> datetime:
    # PostgreSQL takes offsets up to ±15:59 while ISO 8601 allows more; stored times are
    # UTC anyway, so convert here and keep to years a monitor can mean.
    try:
        utc = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("the time is out of range") from None
    if not 1970 <= utc.year <= 9998:
        raise ValueError("the time must fall between 1970 and 9998")
    return utc


def _text_or_datetime(value: Any) -> Any:
    # A number would otherwise be read as a Unix time: refuse it rather than guess.
    if not isinstance(value, str | datetime):
        raise ValueError("a time is an ISO 8601 string with a UTC offset")
    return value


UtcDatetime = Annotated[
    AwareDatetime, BeforeValidator(_text_or_datetime), AfterValidator(_to_utc)
]


def _bounded_mapping(max_bytes: int):
    """Free-form metadata, within limits that keep one field from swamping a row."""

    def check(value: dict[str, Any]) -> dict[str, Any]:
        if not value:
            return value
        if len(value) > MAX_METADATA_KEYS:
            raise ValueError(f"at most {MAX_METADATA_KEYS} keys")
        if max(map(len, value)) > 200:
            raise ValueError("keys are at most 200 characters")
        bound = flat_json_size_bound(value)
        if bound is None:
            # Iterative, and before anything recursive (json.dumps) sees the value.
            check_json_tree(value)
        if (bound is None or bound > max_bytes) and (
            len(json.dumps(value, ensure_ascii=False).encode()) > max_bytes
        ):
            raise ValueError(f"at most {max_bytes} bytes as JSON")
        return value

    return AfterValidator(check)


Metadata = Annotated[dict[str, Any], _bounded_mapping(MAX_OPERATION_METADATA_BYTES)]
SessionMetadata = Annotated[dict[str, Any], _bounded_mapping(MAX_SESSION_METADATA_BYTES)]


class WireModel(BaseModel):
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, str_max_length=100_000)


class CacheNameCounts(WireModel):
    hits: Count = 0
    misses: Count = 0


class CacheCounts(WireModel):
    hits: CacheCount = 0
    misses: CacheCount = 0
    by_name: dict[Name, CacheNameCounts] = Field(default_factory=dict, max_length=100)


class SdkReportIn(BaseModel):
    """The SDK's own health, as its exporter saw it when it sent this payload: what it sent,
    retried, spooled, resent, dropped, rejected and quarantined so far (counts of payloads in
    that process) and the spool problems it met, how many operations the session holds and
    the time recording them took.

    Every known field is typed and bounded. Unknown keys are dropped rather than refused, so a
    newer SDK's report never costs a session its data; nothing unknown is stored.
    """

    model_config = ConfigDict(extra="ignore", allow_inf_nan=False)

    version: Annotated[str, StringConstraints(max_length=32)] | None = None
    sent: Count = 0
    retried: Count = 0
    spooled: Count = 0
    resent: Count = 0
    dropped: Count = 0
    rejected: Count = 0
    quarantined: Count = 0
    spool_errors: Count = 0
    operations: Count = 0
    recording_overhead_s: Seconds | None = None
    # Values of this payload the SDK replaced by a marked stand-in or cut to fit.
    fitted: Count = 0


MAX_SPLIT_PARTS = 100_000


class SplitPart(WireModel):
    """Which part of one snapshot this payload is, when the snapshot was too large for one
    request: ``index`` from 1 to ``count``."""

    index: Annotated[StrictInt, Field(ge=1, le=MAX_SPLIT_PARTS)]
    count: Annotated[StrictInt, Field(ge=2, le=MAX_SPLIT_PARTS)]

    @model_validator(mode="after")
    def _index_within_count(self) -> "SplitPart":
        if self.index > self.count:
            raise ValueError("index is past count")
        return self


class SessionIn(WireModel):
    id: Slug
    started_at: UtcDatetime
    episode: Slug | None = None
    workflow: Label | None = None
    release: Label | None = None
    environment: EnvironmentName | None = None
    host: HostName | None = None
    status: Literal["running", "completed", "failed"] = "running"
    ended_at: UtcDatetime | None = None
    # Optional, monotonically increasing per session on the client: the snapshot with the
    # highest sequence supplies the session-level figures (see ingest.merge_order).
    sequence: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = None
    cache: CacheCounts | None = None
    counters: dict[Name, Count] | None = Field(default=None, max_length=MAX_METADATA_KEYS)
    tags: list[Name] | None = Field(default=None, max_length=MAX_TAGS)
    metadata: SessionMetadata | None = None
    sdk: SdkReportIn | None = None
    # The generator process's peak resident memory up to this snapshot, in bytes (the
    # SDK reads the process's high-water mark, ru_maxrss, where the platform has it).
    peak_memory_bytes: Annotated[StrictInt, Field(ge=0, le=2**63 - 1)] | None = None
    # Set on each part of a snapshot split over several requests (all parts carry the same
    # session fields and sequence); the session is finished only once every part arrived.
    part: SplitPart | None = None

    @model_validator(mode="after")
    def _ends_after_start(self) -> "SessionIn":
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        if self.part is not None and self.sequence is None:
            raise ValueError("part needs the snapshot's sequence")
        return self


class OperationIn(WireModel):
    id: ClientId
    parent_id: ClientId | None = None
    name: Name
    started_at: UtcDatetime
    ended_at: UtcDatetime | None = None
    duration_s: Seconds | None = None
    success: Flag | None = None
    error: ErrorText | None = None
    metadata: Metadata = Field(default_factory=dict)
    cache_hits: CacheCount = 0
    cache_misses: CacheCount = 0

    @model_validator(mode="after")
    def _a_tree_node(self) -> "OperationIn":
        if self.ended_at is not None and self.ended_at < self.started_at:
            raise ValueError("ended_at is before started_at")
        if self.parent_id == self.id:
            raise ValueError("parent_id names the operation itself")
        return self


class ApiCallIn(WireModel):
    id: ClientId
    operation_id: ClientId | None = None
    provider: ProviderName | None = None
    model: ModelName | None = None
    at: UtcDatetime | None = None
    latency_s: Seconds | None = None
    prompt_tokens: Count = 0
    completion_tokens: Count = 0
    cached_tokens: Count = 0
    cache_write_tokens: Count = 0
    # The part of cache_write_tokens written to a 1-hour cache (priced apart from 5-minute).
    cache_write_1h_tokens: Count = 0
    # The part of completion_tokens spent on reasoning.
    reasoning_tokens: Count = 0
    total_tokens: Count | None = None
    cost_usd: Usd | None = None
    prompt_hash: PromptHash | None = None
    error: Flag = False
    error_message: ErrorText | None = None
    streamed: Flag = False
    time_to_first_token_s: Seconds | None = None
    # HTTP attempts the client made for this call: 1, or more when it retried.
    attempts: Annotated[StrictInt, Field(ge=1, le=1000)] | None = None

    @model_validator(mode="after")
    def _parts_within_wholes(self) -> "ApiCallIn":
        if self.cache_write_1h_tokens > self.cache_write_tokens:
            raise ValueError("cache_write_1h_tokens is part of cache_write_tokens")
        if self.reasoning_tokens > self.completion_tokens:
            raise ValueError("reasoning_tokens is part of completion_tokens")
        return self


class SessionPayload(WireModel):
    """One session as the SDK sends it (schema v1)."""

    schema_version: StrictInt
    session: SessionIn
    operations: list[OperationIn] = Field(default_factory=list, max_length=MAX_OPERATIONS)
    api_calls: list[ApiCallIn] = Field(default_factory=list, max_length=MAX_API_CALLS)

    @field_validator("schema_version")
    @classmethod
    def _supported_version(cls, value: int) -> int:
        if value not in SUPPORTED_SCHEMA_VERSIONS:
            supported = ", ".join(str(v) for v in SUPPORTED_SCHEMA_VERSIONS)
            raise ValueError(f"unsupported schema_version {value}; supported: {supported}")
        return value

    @model_validator(mode="after")
    def _ids_unique(self) -> "SessionPayload":
        for field, items in (("operations", self.operations), ("api_calls", self.api_calls)):
            ids = [item.id for item in items]
            if len(set(ids)) != len(ids):
                raise ValueError(f"{field}: ids must be unique within the session")
        return self


class BatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # Items stay raw here: each is validated on its own so one bad session does not
    # reject the others.
    sessions: list[dict[str, Any]] = Field(min_length=1, max_length=MAX_BATCH_SESSIONS)


# --- Responses ---------------------------------------------------------------------------


class StoredOut(BaseModel):
    id: str
    created: bool
    url: str


class ErrorDetail(BaseModel):
    loc: list[str | int]
    msg: str
    type: str


class BatchItemOut(BaseModel):
    index: int
    status: Literal["stored", "error"]
    id: str | None = None
    created: bool | None = None
    url: str | None = None
    errors: list[ErrorDetail] | None = None


class BatchOut(BaseModel):
    results: list[BatchItemOut]
    stored: int
    rejected: int


class CacheOut(BaseModel):
    hits: int
    misses: int
    hit_rate: float | None


class ApiTotalsOut(BaseModel):
    calls: int
    errors: int
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    cost_usd: float


class BottleneckOut(BaseModel):
    name: str
    self_time_s: float
    share: float
    occurrences: int


class FindingOut(BaseModel):
    kind: str
    subject: str
    summary: str
    evidence: dict[str, Any]
    impact_s: float | None
    impact_usd: float | None


class RegressionOut(BaseModel):
    metric: str
    name: str
    value: float
    baseline_value: float
    ratio: float
    baseline_kind: str
    baseline_sessions: list[str]


class BudgetCheckOut(BaseModel):
    budget: str
    metric: str
    threshold: float
    value: float
    passed: bool


class SlowOperationOut(BaseModel):
    id: str
    name: str
    duration_s: float | None


class OperationOut(BaseModel):
    id: str
    parent_id: str | None
    name: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    success: bool | None
    error: str | None
    metadata: dict[str, Any]
    cache_hits: int
    cache_misses: int


class ApiCallOut(BaseModel):
    id: str
    operation_id: str | None
    provider: str
    model: str
    at: datetime | None
    latency_s: float | None
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    cache_write_tokens: int
    total_tokens: int
    cost_usd: float | None
    cost_source: str
    prompt_hash: str | None
    error: bool
    error_message: str | None


class IgnoredAttributeOut(BaseModel):
    name: str
    spans: int


class OtlpReportOut(BaseModel):
    spans_received: int
    spans_rejected: int
    spans_stored: int
    spans_mapped_to_calls: int
    ignored_attributes: list[IgnoredAttributeOut]
    ignored_attribute_names: int


class SessionSummaryOut(BaseModel):
    id: str
    episode: str | None
    workflow: str
    release: str
    environment: str
    host: str
    status: str
    started_at: datetime
    ended_at: datetime | None
    duration_s: float | None
    cache: CacheOut
    api: ApiTotalsOut
    url: str


class SessionDetailOut(SessionSummaryOut):
    counters: dict[str, Any]
    tags: list[str]
    metadata: dict[str, Any]
    is_baseline: bool
    is_pinned: bool = False
    analyzed_at: datetime | None
    # when retention removed the raw operations and calls (their figures stay); null: kept
    detail_pruned_at: datetime | None = None
    bottlenecks: list[BottleneckOut]
    slowest_operations: list[SlowOperationOut]
    findings: list[FindingOut]
    regressions: list[RegressionOut]
    budgets: list[BudgetCheckOut]
    budget_violations: int
    unpriced_calls: int
    # The SDK's health report from the latest payload (see SdkReportIn); null if none came.
    sdk: dict[str, Any] | None = None
    # what the OTLP receiver could not map; null for sessions sent as schema v1
    otlp: OtlpReportOut | None = None
    # Pages of at most page_size rows; a next cursor (null on the last page) fetches more.
    operations: list[OperationOut] | None = None
    operations_next_cursor: str | None = None
    api_calls: list[ApiCallOut] | None = None
    api_calls_next_cursor: str | None = None


class SessionPageOut(BaseModel):
    items: list[SessionSummaryOut]
    next_cursor: str | None


class EpisodeOut(BaseModel):
    code: str
    title: str
    sessions: int
    duration_s: float
    total_tokens: int
    cost_usd: float
    cache_hits: int
    cache_misses: int
    cache_hit_rate: float | None
    first_started_at: datetime | None
    last_started_at: datetime | None


class EpisodePageOut(BaseModel):
    items: list[EpisodeOut]
    next_cursor: str | None
