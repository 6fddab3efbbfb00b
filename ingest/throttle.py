"""A per-API-key rate limit: fixed one-minute windows counted atomically in the cache.

With Redis as the cache (``CACHE_URL``) every web process shares the count; with the
embedded default each process counts on its own. If the cache itself is unreachable the
request is let through: a broken limiter must not stop measurements from arriving.
"""

import logging
import threading
import time

from django.conf import settings
from django.core.cache import cache
from django.http import HttpRequest
from ninja.throttling import BaseThrottle

logger = logging.getLogger(__name__)

WINDOW_S = 60


class ApiKeyRateThrottle(BaseThrottle):
    def __init__(self) -> None:
        # One instance serves every request; the wait belongs to the request's thread.
        self._local = threading.local()

    def allow_request(self, request: HttpRequest) -> bool:
        limit = settings.INGEST_RATE_LIMIT_PER_MINUTE
        key = getattr(request, "auth", None)
        if not limit or key is None:
            return True
        now = time.time()
        window = int(now // WINDOW_S)
        self._local.wait = (window + 1) * WINDOW_S - now
        try:
            return _count(f"perfmon:rate:{key.pk}:{window}") <= limit
        except Exception:
            logger.exception("rate limiter unavailable; letting the request through")
            return True

    def wait(self) -> float | None:
        return getattr(self._local, "wait", None)


def _count(cache_key: str) -> int:
    # add() is a no-op when the key exists, so incr() always has something to count on;
    # the key outlives its window a little so a late incr() never resurrects it.
    cache.add(cache_key, 0, timeout=2 * WINDOW_S)
    try:
        return cache.incr(cache_key)
    except ValueError:  # expired between add() and incr()
        cache.set(cache_key, 1, timeout=2 * WINDOW_S)
        return 1
