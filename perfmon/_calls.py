"""ApiCall: one LLM API call in the token ledger, and its schema-v1 form."""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from datetime import datetime
from typing import Any

from perfmon import _pricing, _wire
from perfmon._core import Anchor, OperationMetrics, describe_error

# SHA-256 of a prompt: OpenSSL (hashlib) looks the algorithm up for every new hash, which
# measured 12 us inside a real call (cold caches) for a 1 KB prompt; the interpreter's own
# SHA-256 took 6 us there, but hashes about six times slower per byte, so it only takes the
# short prompts. Both give the same digest.
_SHORT_PROMPT_BYTES = 4096
try:
    from _sha256 import sha256 as _short_sha256  # Python 3.11
except ImportError:  # pragma: no cover - other versions and builds
    try:
        from _sha2 import sha256 as _short_sha256  # Python 3.12+
    except ImportError:
        _short_sha256 = hashlib.sha256

log = logging.getLogger("perfmon")


def hash_prompt(prompt: Any) -> str:
    """SHA-256 of a prompt (text, bytes, or a JSON-able list of messages); the prompt itself
    is never kept."""
    if isinstance(prompt, bytes):
        data = prompt
    elif isinstance(prompt, str):
        data = prompt.encode("utf-8")
    else:
        text = json.dumps(prompt, sort_keys=True, ensure_ascii=False, default=str)
        data = text.encode("utf-8")
    if len(data) < _SHORT_PROMPT_BYTES:
        return _short_sha256(data).hexdigest()
    return hashlib.sha256(data).hexdigest()


class ApiCall:
    """One LLM API call, tied to the operation that was current when it was recorded.

    One ledger whatever the provider: ``prompt_tokens`` counts every input token, cached
    reads (``cached_tokens``) and cache writes (``cache_write_tokens``, of which
    ``cache_write_1h_tokens`` went to a 1-hour cache) included; ``reasoning_tokens`` are part
    of ``completion_tokens``. ``cost_usd`` is what the caller passed, else None: the server
    prices the call. ``estimated_cost_usd`` is the local estimate from the built-in table,
    shown in the summary and never sent.
    """

    __slots__ = (
        "_op",
        "at_ns",
        "provider",
        "model",
        "latency_s",
        "prompt_tokens",
        "completion_tokens",
        "cached_tokens",
        "cache_write_tokens",
        "cache_write_1h_tokens",
        "reasoning_tokens",
        "total_tokens",
        "cost_usd",
        "estimated_cost_usd",
        "prompt_hash",
        "error",
        "error_message",
        "streamed",
        "time_to_first_token_s",
        "attempts",
    )

    @property
    def operation(self) -> OperationMetrics | None:
        """The operation that was current when the call was recorded, if any."""
        return self._op

    @property
    def local_cost_usd(self) -> float | None:
        """The caller's cost, else the built-in table's estimate, else None."""
        return self.cost_usd if self.cost_usd is not None else self.estimated_cost_usd

    @classmethod
    def from_dict(
        cls, wire: dict[str, Any], anchor: Anchor, operation: OperationMetrics | None = None
    ) -> ApiCall:
        """A call rebuilt from its schema-v1 form (as ``to_dict()`` wrote it)."""
        call = cls()
        for field in cls.__slots__[2:]:
            setattr(call, field, wire.get(field, _wire.API_CALL_DEFAULTS.get(field)))
        call._op = operation
        at = wire.get("at")
        call.at_ns = anchor.to_ns(datetime.fromisoformat(at)) if at else anchor.perf_ns
        call.total_tokens = wire.get("total_tokens") or 0
        call.error = bool(wire.get("error"))
        call.estimated_cost_usd = None  # a payload carries the caller's cost or none
        return call

    def _wire(self, number: int, ids: dict[int, str], anchor: Anchor) -> dict[str, Any]:
        wire = {
            "id": f"c{number}",
            "operation_id": ids.get(id(self._op)),
            "provider": _wire.text(self.provider, _wire.PROVIDER_MAX),
            "model": _wire.text(self.model, _wire.MODEL_MAX),
            "at": anchor.to_datetime(self.at_ns).isoformat(),
        }
        for field in _wire.API_CALL_FIELDS[5:]:
            wire[field] = getattr(self, field)
        defaults = _wire.API_CALL_DEFAULTS
        # Unknown values are left out rather than sent as null, so the server's defaults
        # apply; the newer ledger fields only when they say something.
        return {
            k: v for k, v in wire.items()
            if (v is not None or k in _wire.API_CALL_KEEP_NULL)
            and not (k in defaults and v == defaults[k])
        }

    def __repr__(self) -> str:
        return f"<ApiCall {self.model or '?'} tokens={self.total_tokens} cost={self.cost_usd}>"


def _valid_cost(cost: float | None) -> float | None:
    if cost is None:
        return None
    cost = float(cost)
    if math.isfinite(cost) and cost >= 0:
        return cost
    log.warning("perfmon: ignoring API call cost %r (not a finite amount >= 0)", cost)
    return None


def _error_fields(error: bool | str | BaseException, message: str | None) -> tuple[bool, Any]:
    if isinstance(error, BaseException):
        message = message or describe_error(error)
    elif isinstance(error, str) and error:
        message = message or error
    return bool(error) or message is not None, message


def _part(name: str, fields: dict[str, Any], whole: str) -> int:
    """A part of another count, cut to it: the server refuses a session whose part is larger.
    None (the provider said nothing: the integrations pass it) is 0, not a value fitted."""
    if fields[name] is None:
        return 0
    whole_value = fields[whole]
    part, limit = _wire.count(fields[name]), 0 if whole_value is None else _wire.count(whole_value)
    if part > limit:
        _wire.note_fitted()
        log.warning("perfmon: %s=%d is more than %s=%d, of which it is a part; sending %d",
                    name, part, whole, limit, limit)
        return limit
    return part


def _optional_count(value: Any) -> int | None:
    return None if value is None else _wire.count(value)


def new_call(op: OperationMetrics | None, tokens_used: int, cost: float | None,
             error: bool | str | BaseException, fields: dict[str, Any]) -> ApiCall:
    """An ApiCall from ``record_api_call``'s arguments (``fields``: its keyword arguments)."""
    call = ApiCall()
    call._op = op
    latency_s = fields["latency_s"]
    now = time.perf_counter_ns()
    # ``at`` is when the call started: the record is usually made once the response is in.
    call.at_ns = now - round(latency_s * 1e9) if latency_s else now
    call.provider, call.model = fields["provider"], fields["model"]
    call.latency_s = None if latency_s is None else max(0.0, float(latency_s))
    # Counts the server takes (a negative one it would refuse), written out: this runs for
    # every recorded call.
    count = _wire.count
    value = fields["prompt_tokens"]
    call.prompt_tokens = None if value is None else count(value)
    value = fields["completion_tokens"]
    call.completion_tokens = None if value is None else count(value)
    value = fields["cached_tokens"]
    call.cached_tokens = None if value is None else count(value)
    value = fields["cache_write_tokens"]
    call.cache_write_tokens = None if value is None else count(value)
    call.cache_write_1h_tokens = _part("cache_write_1h_tokens", fields, "cache_write_tokens")
    call.reasoning_tokens = _part("reasoning_tokens", fields, "completion_tokens")
    call.streamed = bool(fields["streamed"])
    ttft = fields["time_to_first_token_s"]
    call.time_to_first_token_s = None if ttft is None else max(0.0, float(ttft))
    attempts = _optional_count(fields["attempts"])
    call.attempts = None if attempts is None else max(1, attempts)
    prompt_tokens, completion_tokens = call.prompt_tokens, call.completion_tokens
    call.total_tokens = _wire.count(tokens_used) or (prompt_tokens or 0) + (completion_tokens or 0)
    call.cost_usd = _valid_cost(cost)
    call.estimated_cost_usd = None if call.cost_usd is not None else _pricing.estimate_cost(
        call.model, prompt_tokens, completion_tokens, call.cached_tokens,
        call.cache_write_tokens, call.cache_write_1h_tokens,
    )
    prompt = fields["prompt"]
    call.prompt_hash = None if prompt is None else hash_prompt(prompt)
    call.error, message = _error_fields(error, fields["error_message"])
    call.error_message = None if message is None else _wire.text(message, _wire.MAX_ERROR_CHARS)
    return call
