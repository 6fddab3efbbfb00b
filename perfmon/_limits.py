"""Fitting free-form metadata into what the server accepts, so one oversized field never
costs the whole session (the server rejects a payload that breaks its limits)."""

from __future__ import annotations

import json
import math
from typing import Any

MAX_KEYS = 100
MAX_KEY_CHARS = 200
MAX_DEPTH = 8  # the metadata object itself is level 1
OPERATION_METADATA_BYTES = 16 * 1024
SESSION_METADATA_BYTES = 64 * 1024


def fit_metadata(meta: dict[Any, Any] | None, max_bytes: int) -> dict[str, Any]:
    """``meta`` with string keys, JSON values, bounded depth and size.

    Values too deep become their ``repr`` (cut short); non-finite floats become strings;
    when the whole is over ``max_bytes``, the largest values are replaced by a note
    saying how big they were, until it fits.
    """
    if not meta:
        return {}
    fitted = {
        str(key)[:MAX_KEY_CHARS]: _json_value(value, depth=2)
        for key, value in list(meta.items())[:MAX_KEYS]
    }
    sizes = {key: _size(value) for key, value in fitted.items()}
    total = _size(fitted)
    for key in sorted(sizes, key=sizes.get, reverse=True):
        if total <= max_bytes:
            break
        note = f"<dropped: {sizes[key]} bytes>"
        total -= sizes[key] - _size(note)
        fitted[key] = note
    return fitted


def _json_value(value: Any, *, depth: int) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else str(value)
    if depth > MAX_DEPTH:
        return repr(value)[:200]
    if isinstance(value, dict):
        return {str(k)[:MAX_KEY_CHARS]: _json_value(v, depth=depth + 1)
                for k, v in list(value.items())[:MAX_KEYS]}
    if isinstance(value, list | tuple | set | frozenset):
        return [_json_value(v, depth=depth + 1) for v in value]
    return str(value)[:1000]


def _size(value: Any) -> int:
    return len(json.dumps(value, ensure_ascii=False).encode())
