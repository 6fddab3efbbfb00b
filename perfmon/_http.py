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
    """A JSON-safe copy: non-finite floats become null, integers too large for the server
    and runaway nesting become text."""
    if depth > 32:
        return safe_text(value)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, int) and not isinstance(value, bool) and value.bit_length() >= 63:
        return f"<integer of {value.bit_length()} bits>"
    if isinstance(value, dict):
        return {safe_text(k): _finite(v, depth + 1) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v, depth + 1) for v in value]
    return value


def safe_text(value: Any, limit: int = 1000) -> str:
    """``str(value)`` cut to ``limit``, or a marked stand-in when ``__str__`` raises."""
    try:
        return str(value)[:limit]
    except Exception:
        return f"<unprintable {type(value).__name__}>"


def dumps(payload: dict[str, Any]) -> bytes:
    """Compact UTF-8 JSON. One value that cannot be encoded as it is (NaN, a huge integer, an
    object whose ``__str__`` raises, a lone surrogate) is replaced, never the whole payload."""
    kwargs: dict[str, Any] = {
        "separators": (",", ":"),
        "ensure_ascii": False,
        "default": safe_text,
        "allow_nan": False,
    }
    try:
        text = json.dumps(payload, **kwargs)
    except ValueError:  # NaN/inf, a huge integer or a circular reference in user metadata
        text = json.dumps(_finite(payload), **kwargs)
    # A lone surrogate cannot be UTF-8: it becomes "?" rather than costing the session.
    return text.encode("utf-8", errors="replace")
