"""perfmon's domain: what the generator measured, per project, episode and session."""

from django.conf import settings
from django.db import models
from django.db.models import Q

DEFAULT_PROJECT_SLUG = "default"

# Sized for the decimal digits of per-call prices (fractions of a cent) summed over a
# large project's history; Decimal keeps rollups exact so sums agree however they are cut.
COST_FIELD = {"max_digits": 18, "decimal_places": 8}
# Sums of many calls (a session's total, cost lines, rollups) need more integer digits
# than one call: 28 digits is what Python's default decimal context holds exactly, and a
# value past max_digits would make SQLite reads fail (decimal.InvalidOperation).
COST_TOTAL_FIELD = {"max_digits": 28, "decimal_places": 8}


class Project(models.Model):
    """One show or pipeline; everything else belongs to exactly one project."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    members = models.ManyToManyField(
        settings.AUTH_USER_MODEL, blank=True, related_name="projects",
        help_text="People who see this project on the dashboard and in the admin "
                  "(superusers see every project).",
    )
    retention_days = models.PositiveIntegerField(
        null=True, blank=True,
        help_text="Days raw operations and API calls are kept; blank: the server's "
                  "RETENTION_DAYS; 0: kept forever. Session figures are always kept.",
    )

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class Episode(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="episodes")
    code = models.CharField(max_length=128)
    title = models.CharField(max_length=300, blank=True)
    notes = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    # The run an editor accepted as the episode's take: its figures stand for the episode.
    # Null: the latest completed run (metrics.dashboard.takes).
    accepted_session = models.ForeignKey(
        "Session", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
    )
    # The start of the episode's latest run and its latest completed run, kept by
    # metrics.episode_runs whenever a run is stored, moved or deleted, so the episodes
    # table ranks a period by its takes without reading every run of the period. No
    # database constraint: its check would take a lock on a session row that the run's
    # own ingest may hold while it waits on the episode (a deadlock); deleting a session
    # clears the link (SET_NULL, done by Django) and the deletion refreshes the episode.
    latest_run_at = models.DateTimeField(null=True, blank=True, editable=False)
    latest_completed_session = models.ForeignKey(
        "Session", null=True, blank=True, on_delete=models.SET_NULL, related_name="+",
        editable=False, db_constraint=False,
    )

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["project", "code"], name="episode_unique_code"),
        ]

    def __str__(self) -> str:
        return self.code


class Session(models.Model):
    class Status(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        FAILED = "failed"

    FINISHED = (Status.COMPLETED, Status.FAILED)

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="sessions")
    episode = models.ForeignKey(
        Episode, null=True, blank=True, on_delete=models.SET_NULL, related_name="sessions"
    )
    external_id = models.CharField("session id", max_length=128)
    workflow = models.CharField(max_length=128, blank=True)
    release = models.CharField(max_length=128, blank=True)
    environment = models.CharField(max_length=64, blank=True)
    host = models.CharField(max_length=255, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RUNNING)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)

    cache_hits = models.PositiveIntegerField(default=0)
    cache_misses = models.PositiveIntegerField(default=0)
    cache_hit_rate = models.FloatField(null=True, blank=True)  # 0..1, null with no lookups
    cache_by_name = models.JSONField(default=dict, blank=True)
    counters = models.JSONField(default=dict, blank=True)
    tags = models.JSONField(default=list, blank=True)
    metadata = models.JSONField(default=dict, blank=True)
    # The SDK's health report from the latest payload (exporter counts, recording overhead);
    # null when the SDK sent none, which is not the same as a clean report.
    sdk_report = models.JSONField(null=True, blank=True, editable=False)
    # The generator process's peak resident memory during the session (up to its end), in
    # bytes; null when the SDK could not read it.
    peak_memory_bytes = models.PositiveBigIntegerField(null=True, blank=True, editable=False)
    # The parts of the newest snapshot that arrived, when it was split over several
    # requests: {"sequence": n, "count": n, "received": [indexes]} (ingest.split_parts).
    split_parts = models.JSONField(null=True, blank=True, editable=False)
    notes = models.TextField(blank=True)

    # Denormalised from the session's API calls by ingest (and later by analysis).
    api_calls_count = models.PositiveIntegerField(default=0)
    api_errors_count = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(**COST_TOTAL_FIELD, default=0)
    operations_count = models.PositiveIntegerField(default=0)
    # Kept so that ingest can check a merge against the per-session caps (ingest.bounds)
    # without summing the session's stored calls.
    cached_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    # Kept by analysis beside the lines they count (the session's cost lines, its failed
    # budget checks), so that a period's figures are summed in one pass over its sessions.
    unpriced_calls_count = models.PositiveIntegerField(default=0, editable=False)
    budget_failures_count = models.PositiveIntegerField(default=0, editable=False)
    # The highest `sequence` the client sent for this session; a snapshot with a lower one
    # arrived late and does not change session-level figures (ingest.merge_order).
    client_sequence = models.BigIntegerField(null=True, blank=True, editable=False)

    is_baseline = models.BooleanField(default=False)
    # Kept whole by retention (like baselines): its raw operations and calls never age out.
    is_pinned = models.BooleanField(
        "pinned", default=False,
        help_text="Keep this session's operations and API calls past the retention period.",
    )
    # When retention removed the raw operations and API calls; the figures analysis made
    # from them (totals, per-name figures, cost lines, findings, rollups) stay.
    detail_pruned_at = models.DateTimeField(null=True, blank=True, editable=False)
    # Wire fields an editor corrected in the admin (e.g. "episode"); a later resend from the
    # generator does not overwrite them.
    edited_fields = models.JSONField(default=list, blank=True, editable=False)
    # The key (episode code, workflow, release, day) this session's figures are counted
    # under in the rollups; null until first analyzed. Analysis moves the figures when an
    # editor changes the episode, workflow or release.
    rollup_episode = models.CharField(max_length=128, blank=True, editable=False)
    rollup_workflow = models.CharField(max_length=128, blank=True, editable=False)
    rollup_release = models.CharField(max_length=128, blank=True, editable=False)
    rollup_day = models.DateField(null=True, blank=True, editable=False)
    received_at = models.DateTimeField(auto_now_add=True)
    merged_at = models.DateTimeField()  # last time a payload changed or resent this session
    analyzed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-started_at"]
        constraints = [
            models.UniqueConstraint(
                fields=["project", "external_id"], name="session_unique_external_id"
            ),
        ]
        indexes = [
            # episode pages and comparisons: an episode's runs in time order
            models.Index(fields=["episode", "started_at"], name="session_episode_start"),
            # API list and dashboard periods: a project's sessions newest first
            # ... and the overview's figures of a period: every column they sum or filter
            # on, so the period's sessions are summed from the index alone (PostgreSQL).
            # Ascending, read backwards for newest first: each new session then goes in at
            # the right end, where PostgreSQL's page splits leave full pages; descending, it
            # went in at the left end, whose splits leave them half empty (1.8 times the
            # size for 100,000 sessions stored in time order).
            models.Index(fields=["project", "started_at", "id"],
                         include=["episode", "status", "duration_s", "cost_usd", "cache_hits",
                                  "cache_misses", "api_calls_count", "api_errors_count",
                                  "total_tokens", "unpriced_calls_count",
                                  "budget_failures_count", "workflow", "environment",
                                  "release", "tags"],
                         name="session_project_start"),
            # the episodes table's order: a period's runs per episode, newest first, with
            # every column a sort key reads, so ranking the episodes never reads a session row
            # (PostgreSQL; SQLite keeps the key columns only)
            models.Index(fields=["project", "episode", "-started_at", "-id"],
                         include=["status", "duration_s", "cost_usd", "total_tokens",
                                  "cache_hits", "cache_misses"],
                         name="session_episode_take"),
            # the sweep: sessions whose latest merge has not been analyzed
            models.Index(fields=["analyzed_at"], name="session_analyzed"),
            # the dashboard's running sessions: the few still running, without reading the rest
            models.Index(fields=["project", "-started_at"], name="session_running",
                         condition=Q(status="running")),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def missing_parts(self) -> int:
        """Parts of the newest split snapshot that have not arrived yet (0 if none)."""
        parts = self.split_parts or {}
        return max(0, int(parts.get("count", 0)) - len(parts.get("received", [])))

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED

    def save_changed(self, **values) -> list[str]:
        """Set these fields and write those whose value changed, in one UPDATE, or none.

        A write of a session row is seldom a HOT update (the figures are in the covering
        indexes), so it adds an entry to each of its indexes; VACUUM takes the old ones
        away but the pages they split stay half empty. So a session whose figures came out
        the same is not rewritten. The caller holds the session's row lock: the values
        compared with are what the row holds. Returns the fields written.
        """
        changed = [name for name, value in values.items() if getattr(self, name) != value]
        for name in changed:
            setattr(self, name, values[name])
        if changed:
            self.save(update_fields=changed)
        return changed

    def mark_edited(self, *fields: str) -> list[str]:
        """Record that an editor set ``fields``; returns the fields to save with it."""
        self.edited_fields = sorted({*self.edited_fields, *fields})
        return ["edited_fields"]


class Operation(models.Model):
    # No index of its own: the unique (session, client_id) key below starts with it and
    # serves every lookup by session, and ingest maintains one index fewer per row.
    # No database constraint either: its check fired once per row at every ingest commit
    # (some 1,000 per request). Every write names a session it holds locked, and a
    # session is deleted only under its lock with its rows (metrics.deletion).
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="operations",
                                db_index=False, db_constraint=False)
    client_id = models.CharField(max_length=64)
    # The wire names the parent by its client id; children finish (and are sent) before
    # their parents, so the link is kept by id and resolved to a row once both exist.
    # null (not "") mirrors the wire's null for these optional strings, so a stored row
    # exports back to exactly the payload it came from.
    parent_client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    # No database constraint on the links between raw rows (here and ApiCall.operation):
    # on PostgreSQL the tables are partitioned and a foreign key would have to name the
    # partition key too; both ends are always in the same session, which ingest resolves
    # and retention unlinks, and the ORM still sets them null on delete.
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children",
        db_constraint=False,
    )
    name = models.CharField(max_length=200)
    started_at = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    duration_s = models.FloatField(null=True, blank=True)
    success = models.BooleanField(null=True, blank=True)  # null while running
    error = models.TextField(null=True, blank=True)  # noqa: DJ001
    metadata = models.JSONField(default=dict, blank=True)
    cache_hits = models.PositiveIntegerField(default=0)
    cache_misses = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["started_at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "client_id"], name="operation_unique_id"),
        ]
        indexes = [
            # session waterfall: a session's operations in start order
            models.Index(fields=["session", "started_at"], name="op_session_start"),
            # slowest operations of a session, in the page's order (-duration_s, id): the
            # first page reads its 20 rows, not the session's
            models.Index(fields=["session", "-duration_s", "id"], name="op_session_duration_id"),
            # one name's durations within a few sessions (the operations page's episodes,
            # the session page's occurrences), read from the index alone
            models.Index(fields=["session", "name", "duration_s"], name="op_session_name"),
        ]

    def __str__(self) -> str:
        return self.name


class ApiCall(models.Model):
    class CostSource(models.TextChoices):
        CLIENT = "client"
        PRICE_TABLE = "price_table"
        UNPRICED = "unpriced"
        PENDING = "pending"  # sent without a cost, not priced by analysis yet

    # No index of its own, and no database constraint (as Operation.session).
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="api_calls",
                                db_index=False, db_constraint=False)
    operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_calls",
        db_constraint=False,
    )
    client_id = models.CharField(max_length=64)
    operation_client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=128, blank=True)
    at = models.DateTimeField(null=True, blank=True)
    latency_s = models.FloatField(null=True, blank=True)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_1h_tokens = models.PositiveBigIntegerField(
        default=0, help_text="The part of the cache writes that went to a 1-hour cache."
    )
    reasoning_tokens = models.PositiveBigIntegerField(
        default=0, help_text="The part of the completion tokens spent on reasoning."
    )
    total_tokens = models.PositiveBigIntegerField(default=0)
    # Wide enough for what the server prices: up to 2**53 tokens of each kind at the
    # highest price a ModelPrice row can hold.
    cost_usd = models.DecimalField(**COST_TOTAL_FIELD, null=True, blank=True)
    cost_source = models.CharField(
        max_length=16, choices=CostSource.choices, default=CostSource.PENDING
    )
    prompt_hash = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    error = models.BooleanField(default=False)
    error_message = models.TextField(null=True, blank=True)  # noqa: DJ001
    streamed = models.BooleanField(default=False)
    time_to_first_token_s = models.FloatField(null=True, blank=True)
    attempts = models.PositiveIntegerField(null=True, blank=True)

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "client_id"], name="apicall_unique_id"),
        ]
        indexes = [
            models.Index(fields=["provider", "model", "at"], name="apicall_model_at"),
            models.Index(fields=["session", "prompt_hash"], name="apicall_session_prompt"),
            # alerts: the spend of a rolling window
            models.Index(fields=["at"], name="apicall_at"),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class ModelPrice(models.Model):
    """USD per million tokens for one model, valid from a moment until the next row."""

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    input_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    output_per_mtok = models.DecimalField(max_digits=12, decimal_places=6)
    cached_input_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True
    )
    cache_write_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True,
        help_text="Writes to the 5-minute cache; blank means the input price.",
    )
    cache_write_1h_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True,
        help_text="Writes to the 1-hour cache; blank means the 5-minute write price.",
    )
    valid_from = models.DateTimeField()
    source = models.CharField(max_length=500, help_text="Where the price was read, and when.")

    class Meta:
        ordering = ["provider", "model", "-valid_from"]
        constraints = [
            models.UniqueConstraint(
                fields=["provider", "model", "valid_from"], name="price_unique_validity"
            ),
            models.CheckConstraint(
                condition=Q(input_per_mtok__gte=0) & Q(output_per_mtok__gte=0),
                name="price_not_negative",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model} from {self.valid_from:%Y-%m-%d}"


PRICE_FIELDS = ["input_per_mtok", "output_per_mtok", "cached_input_per_mtok",
                "cache_write_per_mtok", "cache_write_1h_per_mtok"]


class PriceChange(models.Model):
    """A price row added, edited or deleted: what it was, what it became, and when.

    ``before`` and ``after`` hold the row's valid-from and prices (USD per million tokens,
    as strings) on each side; a deleted row has no ``after``, a new one no ``before``.
    The sessions it repriced are its ``repricings``.
    """

    class Kind(models.TextChoices):
        ADDED = "added", "Price added"
        CHANGED = "changed", "Price changed"
        DELETED = "deleted", "Price deleted"

    provider = models.CharField(max_length=64)
    model = models.CharField(max_length=128)
    kind = models.CharField(max_length=16, choices=Kind.choices)
    price = models.ForeignKey(ModelPrice, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="changes")
    before = models.JSONField(null=True, blank=True)
    after = models.JSONField(null=True, blank=True)
    # Calls from this moment on may be priced differently: the earlier of the two
    # valid-froms when a row moved.
    affects_from = models.DateTimeField()
    changed_at = models.DateTimeField(auto_now_add=True)
    # How many sessions had calls to price again, counted when repricing started.
    sessions_affected = models.PositiveIntegerField(null=True, blank=True)
    # Of those, the ones deleted before their repricing ran.
    sessions_skipped = models.PositiveIntegerField(default=0)
    # Set when every affected session has been repriced.
    repriced_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-changed_at", "-pk"]
        indexes = [models.Index(fields=["provider", "model", "changed_at"])]

    def __str__(self) -> str:
        return f"{self.get_kind_display()}: {self.provider}/{self.model}"


class SessionRepricing(models.Model):
    """One session's cost before and after one price change."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="repricings")
    change = models.ForeignKey(PriceChange, on_delete=models.CASCADE, related_name="repricings")
    cost_before_usd = models.DecimalField(**COST_TOTAL_FIELD)
    cost_after_usd = models.DecimalField(**COST_TOTAL_FIELD)
    unpriced_before = models.PositiveIntegerField(default=0)
    unpriced_after = models.PositiveIntegerField(default=0)
    repriced_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["repriced_at", "pk"]
        constraints = [
            models.UniqueConstraint(fields=["session", "change"], name="repricing_once"),
        ]

    def __str__(self) -> str:
        return f"{self.session_id}: {self.cost_before_usd} -> {self.cost_after_usd}"


class Annotation(models.Model):
    MAX_CHARS = 5000  # the limit of the dashboard's form and the admin's alike

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="annotations")
    author = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL
    )
    text = models.TextField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]

    def __str__(self) -> str:
        return self.text[:60]


class OperationStat(models.Model):
    """One operation name's figures within one session, written by analysis.

    Self time is the wall time the name's operations spent outside their children; share
    is self time over the session's measured time. These rows are also the per-session
    lines that the operation rollups are summed from.
    """

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="operation_stats")
    name = models.CharField(max_length=200)
    occurrences = models.PositiveIntegerField()
    failures = models.PositiveIntegerField(default=0)
    total_duration_s = models.FloatField()
    self_time_s = models.FloatField()
    share = models.FloatField()  # of the session's measured wall time, 0..1
    is_bottleneck = models.BooleanField(default=False)
    cache_hits = models.PositiveIntegerField(default=0)
    cache_misses = models.PositiveIntegerField(default=0)
    # What the calls made inside this name's operations cost; kept so a comparison by
    # operation still works once retention removed the calls. Null: no call was made in
    # them (or the session was last analyzed before this field existed).
    cost_usd = models.DecimalField(**COST_TOTAL_FIELD, null=True, blank=True)

    class Meta:
        ordering = ["-self_time_s"]
        constraints = [
            models.UniqueConstraint(fields=["session", "name"], name="opstat_unique_name"),
        ]
        indexes = [
            # regressions and comparisons: one name across sessions
            models.Index(fields=["name", "session"], name="opstat_name_session"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.share:.0%})"


class Finding(models.Model):
    """Something in a session worth fixing, with the evidence that shows it."""

    class Kind(models.TextChoices):
        REPEATED_PROMPT = "repeated_prompt", "Same prompt sent repeatedly"
        SEQUENTIAL_CALLS = "sequential_calls", "Model calls that could run in parallel"
        RETRY_BURST = "retry_burst", "Burst of failed calls and retries"
        LOW_CACHE_OPERATION = "low_cache_operation", "Operation with a poor cache hit rate"
        UNPRICED_CALLS = "unpriced_calls", "Calls to models with no price"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="findings")
    kind = models.CharField(max_length=32, choices=Kind.choices)
    subject = models.CharField(max_length=200, blank=True)  # operation name, model, hash
    summary = models.CharField(max_length=500)
    evidence = models.JSONField(default=dict)
    impact_s = models.FloatField(null=True, blank=True)  # time it plausibly cost
    impact_usd = models.DecimalField(**COST_TOTAL_FIELD, null=True, blank=True)

    class Meta:
        ordering = ["kind", "subject"]
        indexes = [models.Index(fields=["kind", "session"], name="finding_kind_session")]

    def __str__(self) -> str:
        return self.summary


class Regression(models.Model):
    """A session that is worse than its baseline by more than the ratio and the floor."""

    class Metric(models.TextChoices):
        SELF_TIME = "self_time_s", "Operation self time"
        COST = "cost_usd", "Session cost"

    class BaselineKind(models.TextChoices):
        MARKED = "marked", "Sessions marked as baseline"
        PREVIOUS = "previous", "Median of previous sessions"

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="regressions")
    metric = models.CharField(max_length=16, choices=Metric.choices)
    name = models.CharField(max_length=200, blank=True)  # the operation name for self time
    value = models.FloatField()
    baseline_value = models.FloatField()
    ratio = models.FloatField()
    baseline_kind = models.CharField(max_length=16, choices=BaselineKind.choices)
    baseline_sessions = models.JSONField(default=list)  # external ids compared against

    class Meta:
        ordering = ["-ratio"]

    def __str__(self) -> str:
        return f"{self.metric} {self.name} x{self.ratio:.2f}"


class Budget(models.Model):
    """A target a producer sets, for one workflow or (workflow blank) for all of them."""

    class Metric(models.TextChoices):
        DURATION_S = "duration_s", "Session duration (s), at most"
        CACHE_HIT_RATE = "cache_hit_rate", "Cache hit rate (0-1), at least"
        COST_USD = "cost_usd", "Cost per episode run (USD), at most"
        API_ERROR_RATE = "api_error_rate", "API error rate (0-1), at most"
        TOKENS_PER_SCENE = "tokens_per_scene", "Tokens per scene, at most"
        COST_PER_SCENE_USD = "cost_per_scene_usd", "Cost per scene (USD), at most"
        SECONDS_PER_SCENE = "seconds_per_scene", "Time per scene (s), at most"
        PEAK_MEMORY_MB = "peak_memory_mb", "Peak memory of the generator (MB), at most"

    AT_LEAST = {Metric.CACHE_HIT_RATE}

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="budgets")
    name = models.CharField(max_length=200)
    workflow = models.CharField(max_length=128, blank=True, help_text="Blank: every workflow.")
    metric = models.CharField(max_length=32, choices=Metric.choices)
    threshold = models.FloatField()
    reruns_only = models.BooleanField(
        default=False, help_text="Check only sessions of an episode that already ran before."
    )
    active = models.BooleanField(default=True)

    class Meta:
        ordering = ["project", "workflow", "metric"]

    def __str__(self) -> str:
        return self.name

    def passes(self, value: float) -> bool:
        if self.metric in self.AT_LEAST:
            return value >= self.threshold
        return value <= self.threshold


class BudgetCheck(models.Model):
    """One session measured against one budget; failed checks are the violations."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="budget_checks")
    budget = models.ForeignKey(Budget, on_delete=models.CASCADE, related_name="checks")
    value = models.FloatField()
    passed = models.BooleanField()

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["session", "budget"], name="budgetcheck_unique"),
        ]
        indexes = [
            models.Index(fields=["passed", "budget"], name="budgetcheck_violations"),
        ]

    def __str__(self) -> str:
        return f"{self.budget}: {'pass' if self.passed else 'FAIL'}"


class CostLine(models.Model):
    """A session's API usage for one day and model: what the cost rollups are summed from."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="cost_lines")
    day = models.DateField()
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=128, blank=True)
    calls = models.PositiveIntegerField(default=0)
    errors = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    cached_tokens = models.PositiveBigIntegerField(default=0)
    cache_write_tokens = models.PositiveBigIntegerField(default=0)
    # The part of the cache writes that went to a 1-hour cache (priced apart).
    cache_write_1h_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(**COST_TOTAL_FIELD, default=0)
    unpriced_calls = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["session", "day", "provider", "model"], name="costline_unique"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.provider}/{self.model}"


class RollupBase(models.Model):
    """Sums of per-session lines under a key; ``sessions`` counts the sessions in a row."""

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    workflow = models.CharField(max_length=128, blank=True)
    sessions = models.IntegerField(default=0)

    class Meta:
        abstract = True


class CostSums(models.Model):
    calls = models.IntegerField(default=0)
    errors = models.IntegerField(default=0)
    prompt_tokens = models.BigIntegerField(default=0)
    completion_tokens = models.BigIntegerField(default=0)
    cached_tokens = models.BigIntegerField(default=0)
    cache_write_tokens = models.BigIntegerField(default=0)
    cache_write_1h_tokens = models.BigIntegerField(default=0)
    total_tokens = models.BigIntegerField(default=0)
    cost_usd = models.DecimalField(**COST_TOTAL_FIELD, default=0)
    unpriced_calls = models.IntegerField(default=0)

    class Meta:
        abstract = True


class OperationSums(models.Model):
    occurrences = models.IntegerField(default=0)
    failures = models.IntegerField(default=0)
    total_duration_s = models.FloatField(default=0)
    self_time_s = models.FloatField(default=0)

    class Meta:
        abstract = True


class DailyCost(RollupBase, CostSums):
    """API usage by day (of the call), workflow, release and model: cost over time."""

    day = models.DateField()
    release = models.CharField(max_length=128, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=128, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "workflow", "release", "provider", "model"],
                name="dailycost_unique_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow} {self.release} {self.provider}/{self.model}"


class EpisodeCost(RollupBase, CostSums):
    """API usage by episode (code; blank for none), workflow and model."""

    episode = models.CharField(max_length=128, blank=True)
    provider = models.CharField(max_length=64, blank=True)
    model = models.CharField(max_length=128, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "episode", "workflow", "provider", "model"],
                name="episodecost_unique_key",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.episode or '-'} {self.workflow} {self.provider}/{self.model}"


class DailyOperation(RollupBase, OperationSums):
    """Operation figures by day (of the session's start), workflow and operation name."""

    day = models.DateField()
    name = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "day", "workflow", "name"], name="dailyop_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.day} {self.workflow} {self.name}"


class EpisodeOperation(RollupBase, OperationSums):
    """Operation figures by episode, workflow and operation name."""

    episode = models.CharField(max_length=128, blank=True)
    name = models.CharField(max_length=200)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["project", "episode", "workflow", "name"], name="episodeop_unique_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.episode or '-'} {self.workflow} {self.name}"


# --- OpenTelemetry (OTLP) ingest -------------------------------------------------------


class OtlpTrace(models.Model):
    """Which session a trace's spans were stored in.

    Exporters send children before their parents, and often only the root names the
    session: until a span names one, the trace's spans wait in a session named after the
    trace id (``named`` False), which joins the named session when it appears.
    """

    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="+")
    trace_id = models.CharField(max_length=32)  # 32 lowercase hex digits
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="otlp_traces")
    named = models.BooleanField(default=False)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["project", "trace_id"], name="otlptrace_unique_id"),
        ]

    def __str__(self) -> str:
        return self.trace_id


class OtlpReport(models.Model):
    """What the OTLP receiver could not map for a session, so nothing is lost silently."""

    session = models.OneToOneField(Session, on_delete=models.CASCADE, related_name="otlp_report")
    spans_received = models.PositiveBigIntegerField(default=0)  # every delivery, resends too
    spans_rejected = models.PositiveBigIntegerField(default=0)
    # attribute name -> spans it was ignored on (indexes folded to N), the most frequent kept
    ignored_attributes = models.JSONField(default=dict, blank=True)

    def __str__(self) -> str:
        return f"OTLP report of session {self.session_id}"


class DashboardPreference(models.Model):
    """One person's dashboard settings: the time zone the pages show times in."""

    user = models.OneToOneField(settings.AUTH_USER_MODEL, on_delete=models.CASCADE,
                                related_name="dashboard_preference")
    time_zone = models.CharField(max_length=64, blank=True,
                                 help_text="An IANA zone such as Europe/Paris; blank: the "
                                 "site's TIME_ZONE.")

    def __str__(self) -> str:
        return f"{self.user}: {self.time_zone or 'site time zone'}"


# Alert models live in their room; importing them here makes them the metrics app's.
from metrics.alerts.models import (  # noqa: E402, F401
    AlertChannel,
    AlertDelivery,
    AlertEvent,
    AlertRule,
    JudgedSession,
)
