"""A small built-in model price table, extendable by the user.

Prices are USD per million tokens (list prices, early 2025). They are only an estimate for the
summary printed by the generator (marked "est." there): the SDK sends ``cost_usd: null``
unless the caller passes a cost, and the server prices every call from its own, dated table.

Token convention: ``prompt_tokens`` counts every input token, including ``cached_tokens``
(read from the provider's prompt cache) and ``cache_write_tokens`` (written to it), as the
OpenAI usage object does. For Anthropic, pass
``prompt_tokens = input_tokens + cache_read_input_tokens + cache_creation_input_tokens``.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass

__all__ = ["ModelPrice", "estimate_cost", "get_model_price", "register_model_price"]


@dataclass(frozen=True, slots=True)
class ModelPrice:
    """USD per million tokens. Cached input and (5-minute) cache writes default to the input
    price, 1-hour cache writes to the 5-minute write price, as on the server."""

    input_per_mtok: float
    output_per_mtok: float
    cached_input_per_mtok: float | None = None
    cache_write_per_mtok: float | None = None
    cache_write_1h_per_mtok: float | None = None


_PRICES: dict[str, ModelPrice] = {
    "gpt-4o": ModelPrice(2.50, 10.00, 1.25),
    "gpt-4o-mini": ModelPrice(0.15, 0.60, 0.075),
    "gpt-4.1": ModelPrice(2.00, 8.00, 0.50),
    "gpt-4.1-mini": ModelPrice(0.40, 1.60, 0.10),
    "gpt-4.1-nano": ModelPrice(0.10, 0.40, 0.025),
    "claude-3-5-haiku": ModelPrice(0.80, 4.00, 0.08, 1.00, 1.60),
    "claude-3-5-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75, 6.00),
    "claude-3-7-sonnet": ModelPrice(3.00, 15.00, 0.30, 3.75, 6.00),
    "claude-sonnet-4": ModelPrice(3.00, 15.00, 0.30, 3.75, 6.00),
}
_lock = threading.Lock()

# "gpt-4o-mini-2024-07-18", "claude-3-5-sonnet-20241022", "claude-3-5-haiku-latest"
_VERSION_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8}|latest)$")


def register_model_price(
    model: str,
    input_per_mtok: float,
    output_per_mtok: float,
    cached_input_per_mtok: float | None = None,
    cache_write_per_mtok: float | None = None,
    cache_write_1h_per_mtok: float | None = None,
) -> None:
    """Add or replace a model's price (USD per million tokens) in the built-in table, used
    for the summary's local estimate only."""
    price = ModelPrice(
        float(input_per_mtok),
        float(output_per_mtok),
        _optional(cached_input_per_mtok),
        _optional(cache_write_per_mtok),
        _optional(cache_write_1h_per_mtok),
    )
    with _lock:
        _PRICES[model.lower()] = price


def _optional(value: float | None) -> float | None:
    return None if value is None else float(value)


def get_model_price(model: str) -> ModelPrice | None:
    """The price for ``model``; dated or ``-latest`` variants fall back to the base name."""
    key = model.lower()
    # Read without the lock (one dict lookup is atomic; register_model_price replaces a whole
    # entry under it): this runs for every recorded call.
    price = _PRICES.get(key)
    if price is None:
        price = _PRICES.get(_VERSION_SUFFIX.sub("", key))
    return price


def estimate_cost(
    model: str | None,
    prompt_tokens: int | None,
    completion_tokens: int | None,
    cached_tokens: int | None = None,
    cache_write_tokens: int | None = None,
    cache_write_1h_tokens: int | None = None,
) -> float | None:
    """Estimated USD for one call, or None when the model is unknown or the token split is
    missing. ``cache_write_1h_tokens`` is the part of ``cache_write_tokens`` written to a
    1-hour cache."""
    if not model or prompt_tokens is None or completion_tokens is None:
        return None
    price = get_model_price(model)
    if price is None:
        return None
    cached = cached_tokens or 0
    written = cache_write_tokens or 0
    written_1h = min(cache_write_1h_tokens or 0, written)
    fresh = max(prompt_tokens - cached - written, 0)
    cached_price = _or(price.cached_input_per_mtok, price.input_per_mtok)
    write_price = _or(price.cache_write_per_mtok, price.input_per_mtok)
    write_1h_price = _or(price.cache_write_1h_per_mtok, write_price)
    usd = (
        fresh * price.input_per_mtok
        + cached * cached_price
        + (written - written_1h) * write_price
        + written_1h * write_1h_price
        + completion_tokens * price.output_per_mtok
    ) / 1_000_000
    return round(usd, 10)


def _or(value: float | None, fallback: float) -> float:
    return fallback if value is None else value
