"""HTTP and JSON details of sending a payload: no redirects, Retry-After, strict JSON."""

from __future__ import annotations

import email.utils
import json
import math
import urllib.request
from datetime import UTC, datetime
from typing import Any


class NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would turn the POST into a GET; treat it as a configuration error instead.
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = (when - datetime.now(UTC)).total_seconds()
    return max(seconds, 0.0) if math.isfinite(seconds) else None


def _finite(value: Any, depth: int = 0) -> Any:
    """A JSON-safe copy: non-finite floats become null, runaway nesting becomes text."""
    if depth > 32:
        return str(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {str(k): _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, depth + 1) for v in value]
    return value


def dumps(payload: dict[str, Any]) -> bytes:
    kwargs: dict[str, Any] = {
        "separators": (",", ":"),
        "ensure_ascii": False,
        "default": str,
        "allow_nan": False,
    }
    try:
        text = json.dumps(payload, **kwargs)
    except ValueError:  # NaN/inf or a circular reference in user metadata
        text = json.dumps(_finite(payload), **kwargs)
    return text.encode("utf-8")
