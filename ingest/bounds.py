"""What the database can hold: the limits the schema checks before anything is stored.

One rule for text on both databases: PostgreSQL text and jsonb cannot hold NUL (U+0000),
and no UTF-8 column can hold a lone surrogate (U+D800..U+DFFF, which JSON's ``\\ud800``
escapes can produce). Such a string is refused (422, with the field's path), never
silently rewritten, so what is stored is what was sent.
"""

import re
from typing import Any

INT32_MAX = 2**31 - 1  # integer / PositiveIntegerField columns
MAX_METADATA_DEPTH = 8
# A JSON tree is walked at most this many nodes; the byte cap stops larger ones anyway.
MAX_JSON_NODES = 100_000

_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def unstorable_reason(text: str) -> str | None:
    match = _UNSTORABLE.search(text)
    if match is None:
        return None
    what = "a NUL character" if match.group() == "\x00" else "a lone surrogate"
    return f"contains {what} at offset {match.start()}; text cannot hold it"


def storable_text(text: str) -> str:
    reason = unstorable_reason(text)
    if reason is not None:
        raise ValueError(reason)
    return text


def check_json_tree(value: Any) -> None:
    """Refuse trees nested deeper than MAX_METADATA_DEPTH or holding unstorable text.

    Iterative on purpose: a list nested 900 deep must be refused, not crash the walk.
    """
    stack: list[tuple[Any, int, str]] = [(value, 0, "")]
    seen = 0
    while stack:
        node, depth, path = stack.pop()
        seen += 1
        if seen > MAX_JSON_NODES:
            raise ValueError(f"at most {MAX_JSON_NODES} values")
        if isinstance(node, dict | list) and depth >= MAX_METADATA_DEPTH:
            raise ValueError(f"nested at most {MAX_METADATA_DEPTH} levels deep (at {path})")
        if isinstance(node, dict):
            for key, child in node.items():
                _check_text(str(key), f"{path}.{key}" if path else str(key), "key")
                stack.append((child, depth + 1, f"{path}.{key}" if path else str(key)))
        elif isinstance(node, list):
            stack.extend((child, depth + 1, f"{path}[{i}]") for i, child in enumerate(node))
        elif isinstance(node, str):
            _check_text(node, path, "value")


# An upper bound, in UTF-8 bytes, of a scalar as json.dumps(..., ensure_ascii=False) writes
# it: a character takes at most 6 (a \u00XX escape; else at most 4), an int at most one
# digit per 3 bits plus a sign, a float's repr at most 24 characters, true/false/null 5.
_MAX_BYTES_PER_CHAR = 6
_FLOAT_BYTES = 24
_SEPARATORS_BYTES = 4  # ": " after a key, ", " after an item


def flat_json_size_bound(mapping: dict[str, Any]) -> int | None:
    """An upper bound of ``len(json.dumps(mapping, ensure_ascii=False).encode())`` when
    ``mapping`` holds only storable text, numbers, booleans and nulls, so that
    ``check_json_tree`` has nothing to refuse in it; None for anything else (a nested or
    unstorable value), which the full walk then judges.

    Most metadata is a few flat keys: this spares it the walk and the serialisation.
    """
    size = 2  # the braces
    search = _UNSTORABLE.search
    for key, item in mapping.items():
        if type(key) is not str or search(key):
            return None
        size += _MAX_BYTES_PER_CHAR * len(key) + 2 + _SEPARATORS_BYTES
        kind = type(item)
        if kind is str:
            if search(item):
                return None
            size += _MAX_BYTES_PER_CHAR * len(item) + 2
        elif kind is int:
            size += item.bit_length() // 3 + 3
        elif kind is float:
            size += _FLOAT_BYTES
        elif kind is bool or item is None:
            size += 5
        else:
            return None
    return size


def _check_text(text: str, path: str, what: str) -> None:
    reason = unstorable_reason(text)
    if reason is not None:
        shown = _UNSTORABLE.sub("?", path)
        raise ValueError(f"the {what} at {shown or 'top'} {reason}")


# --- Per-session sums ----------------------------------------------------------------------
# A session's totals are sums over all its calls, across every payload that merged into it.
# They are capped well inside their columns (bigint, numeric(28, 8)) so that the rollups,
# which add sessions up, have room for about a thousand sessions at the cap per key.
MAX_SESSION_TOKENS = 2**53
MAX_SESSION_COST_USD = 10**12
SESSION_SUMS = {
    "prompt_tokens": MAX_SESSION_TOKENS,
    "completion_tokens": MAX_SESSION_TOKENS,
    "total_tokens": MAX_SESSION_TOKENS,
    "cost_usd": MAX_SESSION_COST_USD,
    # Priced by the server too: bounded so a server-priced total always fits its column.
    "cached_tokens": MAX_SESSION_TOKENS,
    "cache_write_tokens": MAX_SESSION_TOKENS,
}
# Each is also a Session field, kept by ingest and analysis (metrics.analysis.totals).


def sums_over_bound(stored: dict[str, Any], added: dict[str, Any]) -> list[str]:
    """The session totals that ``stored + added`` could push past their cap.

    A merge replaces resent calls, so the new total is at most stored + added: checking
    that bound keeps every total inside its column whatever the payload replaces.
    """
    return [
        f"{name}: the session's total would reach {stored[name] + added[name]}, "
        f"over the cap of {cap}"
        for name, cap in SESSION_SUMS.items()
        if stored[name] + added[name] > cap
    ]
