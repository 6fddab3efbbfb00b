"""perfmon's domain: what the generator measured, per project, episode and session."""

from django.conf import settings
from django.db import models
from django.db.models import Q

DEFAULT_PROJECT_SLUG = "default"

# Sized for the decimal digits of per-call prices (fractions of a cent) summed over a
# large project's history; Decimal keeps rollups exact so sums agree however they are cut.
COST_FIELD = {"max_digits": 18, "decimal_places": 8}


class Project(models.Model):
    """One show or pipeline; everything else belongs to exactly one project."""

    name = models.CharField(max_length=200)
    slug = models.SlugField(max_length=64, unique=True)
    created_at = models.DateTimeField(auto_now_add=True)

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
    notes = models.TextField(blank=True)

    # Denormalised from the session's API calls by ingest (and later by analysis).
    api_calls_count = models.PositiveIntegerField(default=0)
    api_errors_count = models.PositiveIntegerField(default=0)
    prompt_tokens = models.PositiveBigIntegerField(default=0)
    completion_tokens = models.PositiveBigIntegerField(default=0)
    total_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(**COST_FIELD, default=0)
    operations_count = models.PositiveIntegerField(default=0)

    is_baseline = models.BooleanField(default=False)
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
            models.Index(fields=["project", "-started_at", "-id"], name="session_project_start"),
            # the sweep: sessions whose latest merge has not been analyzed
            models.Index(fields=["analyzed_at"], name="session_analyzed"),
        ]

    def __str__(self) -> str:
        return self.external_id

    @property
    def is_finished(self) -> bool:
        return self.status in self.FINISHED


class Operation(models.Model):
    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="operations")
    client_id = models.CharField(max_length=64)
    # The wire names the parent by its client id; children finish (and are sent) before
    # their parents, so the link is kept by id and resolved to a row once both exist.
    # null (not "") mirrors the wire's null for these optional strings, so a stored row
    # exports back to exactly the payload it came from.
    parent_client_id = models.CharField(max_length=64, null=True, blank=True)  # noqa: DJ001
    parent = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.SET_NULL, related_name="children"
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
            # slowest operations of a session
            models.Index(fields=["session", "-duration_s"], name="op_session_duration"),
            # per-operation-name charts across sessions and episodes
            models.Index(fields=["name", "started_at"], name="op_name_start"),
        ]

    def __str__(self) -> str:
        return self.name


class ApiCall(models.Model):
    class CostSource(models.TextChoices):
        CLIENT = "client"
        PRICE_TABLE = "price_table"
        UNPRICED = "unpriced"
        PENDING = "pending"  # sent without a cost, not priced by analysis yet

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="api_calls")
    operation = models.ForeignKey(
        Operation, null=True, blank=True, on_delete=models.SET_NULL, related_name="api_calls"
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
    total_tokens = models.PositiveBigIntegerField(default=0)
    cost_usd = models.DecimalField(**COST_FIELD, null=True, blank=True)
    cost_source = models.CharField(
        max_length=16, choices=CostSource.choices, default=CostSource.PENDING
    )
    prompt_hash = models.CharField(max_length=128, null=True, blank=True)  # noqa: DJ001
    error = models.BooleanField(default=False)
    error_message = models.TextField(null=True, blank=True)  # noqa: DJ001

    class Meta:
        ordering = ["at", "id"]
        constraints = [
            models.UniqueConstraint(fields=["session", "client_id"], name="apicall_unique_id"),
        ]
        indexes = [
            models.Index(fields=["provider", "model", "at"], name="apicall_model_at"),
            models.Index(fields=["session", "prompt_hash"], name="apicall_session_prompt"),
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
        max_digits=12, decimal_places=6, null=True, blank=True
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


class Annotation(models.Model):
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


class Bottleneck(models.Model):
    """An operation name whose self time took more than the threshold share of a session."""

    session = models.ForeignKey(Session, on_delete=models.CASCADE, related_name="bottlenecks")
    name = models.CharField(max_length=200)
    self_time_s = models.FloatField()
    share = models.FloatField()  # of the session's measured wall time, 0..1
    occurrences = models.PositiveIntegerField()

    class Meta:
        ordering = ["-share"]
        constraints = [
            models.UniqueConstraint(fields=["session", "name"], name="bottleneck_unique_name"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.share:.0%})"
