"""The webhook signature: what the server sends and how a receiver checks it.

Like Stripe's and Slack's, the signature covers the timestamp and the raw body, so a
receiver can refuse an old message replayed later:

    X-Perfmon-Timestamp: 1764667200
    X-Perfmon-Signature: v1=<hex HMAC-SHA256 of "1764667200." + body, keyed by the secret>

A receiver recomputes the HMAC over the bytes it received (before parsing the JSON),
compares in constant time, and rejects a timestamp older than a few minutes.
"""

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Perfmon-Timestamp"
SIGNATURE_HEADER = "X-Perfmon-Signature"
DELIVERY_HEADER = "X-Perfmon-Delivery"
SCHEME = "v1"
TOLERANCE_S = 300


def signature(secret: str, timestamp: int, body: bytes) -> str:
    signed = str(timestamp).encode() + b"." + body
    return f"{SCHEME}=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signed_headers(secret: str, body: bytes, *, now: float | None = None) -> dict[str, str]:
    timestamp = int(time.time() if now is None else now)
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: signature(secret, timestamp, body),
    }


def verify(secret: str, headers, body: bytes, *, now: float | None = None,
           tolerance_s: int = TOLERANCE_S) -> bool:
    """What a receiver does: recompute, compare in constant time, check the age."""
    raw_timestamp = headers.get(TIMESTAMP_HEADER, "")
    if not raw_timestamp.isdigit():
        return False
    timestamp = int(raw_timestamp)
    if abs((time.time() if now is None else now) - timestamp) > tolerance_s:
        return False
    expected = signature(secret, timestamp, body)
    return hmac.compare_digest(expected, headers.get(SIGNATURE_HEADER, ""))
