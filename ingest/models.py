"""API keys: a project's credentials for the ingest API, stored as hashes only."""

import hashlib
import hmac
import secrets

from django.db import models
from django.utils import timezone

from metrics.models import Project

KEY_PREFIX = "pm"
_PREFIX_BYTES = 6
_SECRET_BYTES = 32


def hash_secret(raw_key: str) -> str:
    # Keys carry 256 random bits, so a fast digest is enough: there is nothing to brute-force.
    return hashlib.sha256(raw_key.encode()).hexdigest()


class ApiKeyQuerySet(models.QuerySet):
    def active(self) -> "ApiKeyQuerySet":
        return self.filter(revoked_at__isnull=True)


class ApiKey(models.Model):
    project = models.ForeignKey(Project, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=200)
    prefix = models.CharField(max_length=32, unique=True, editable=False)
    secret_hash = models.CharField(max_length=64, editable=False)
    created_at = models.DateTimeField(auto_now_add=True)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_at = models.DateTimeField(null=True, blank=True)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["project", "name"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name} ({self.prefix}…)"

    @classmethod
    def generate(cls, *, project: Project, name: str) -> tuple["ApiKey", str]:
        """Create a key and return it with its secret, which is not stored anywhere."""
        prefix = f"{KEY_PREFIX}_{secrets.token_hex(_PREFIX_BYTES)}"
        raw_key = f"{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
        key = cls.objects.create(
            project=project, name=name, prefix=prefix, secret_hash=hash_secret(raw_key)
        )
        return key, raw_key

    @property
    def is_active(self) -> bool:
        return self.revoked_at is None

    def matches(self, raw_key: str) -> bool:
        return hmac.compare_digest(self.secret_hash, hash_secret(raw_key))

    def revoke(self) -> None:
        self.revoked_at = timezone.now()
        self.save(update_fields=["revoked_at"])


def prefix_of(raw_key: str) -> str | None:
    """The lookup prefix of a presented key (``pm_<hex>``), or None if it is not one of ours."""
    parts = raw_key.split("_", 2)
    if len(parts) != 3 or parts[0] != KEY_PREFIX or not parts[1]:
        return None
    return f"{parts[0]}_{parts[1]}"
