"""Bearer API keys for the ingest API: each key reads and writes one project's data."""

from datetime import timedelta

from django.conf import settings
from django.http import HttpRequest
from django.utils import timezone
from ninja.security import HttpBearer

from ingest.models import ApiKey, prefix_of


class ApiKeyAuth(HttpBearer):
    def __call__(self, request: HttpRequest) -> ApiKey | None:
        # ninja's HttpBearer logs a header without the "Bearer " scheme in full when
        # DEBUG is on; that header is usually a bare key, so it is parsed here instead.
        scheme, _, token = request.headers.get(self.header, "").partition(" ")
        if scheme.lower() != self.openapi_scheme or not token:
            return None
        return self.authenticate(request, token)

    def authenticate(self, request: HttpRequest, token: str) -> ApiKey | None:
        prefix = prefix_of(token)
        if prefix is None:
            return None
        key = ApiKey.objects.active().select_related("project").filter(prefix=prefix).first()
        # The prefix only finds the row; the secret is checked against its hash in
        # constant time, so timing does not reveal how much of a guess was right.
        if key is None or not key.matches(token):
            return None
        _record_use(key)
        return key


def _record_use(key: ApiKey) -> None:
    # A write per request would serialise a busy key's requests on one row; a resolution
    # of a minute is plenty for "last used".
    now = timezone.now()
    resolution = timedelta(seconds=settings.API_KEY_LAST_USED_RESOLUTION_S)
    if key.last_used_at is None or now - key.last_used_at >= resolution:
        ApiKey.objects.filter(pk=key.pk).update(last_used_at=now)
        key.last_used_at = now
