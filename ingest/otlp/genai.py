"""GenAI attributes of one span into the token ledger (DESIGN.md, "One token ledger").

The ledger counts every input token in ``prompt_tokens``, cache reads and writes included.
The GenAI conventions say ``gen_ai.usage.input_tokens`` SHOULD include cached tokens, the
OpenAI usage that OpenLLMetry copies does, and OpenInference's ``llm.token_count.prompt``
does (its Anthropic instrumentation adds the cache counts in). Some instrumentations copy
Anthropic's ``input_tokens`` as is, which leaves the cache out; that is recognised when
the sender's total is input + output + cache reads + cache writes, or when the input is
smaller than the cache counts alone, and the cache counts are then added back.
"""

from dataclasses import dataclass
from typing import Any

from ingest.otlp import conventions as names

MAX_COUNT = 2**53
MAX_USD = 10**9


_USAGE_NAMES = frozenset().union(*names.TOKEN_GROUPS)


@dataclass(slots=True)
class Usage:
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0
    reasoning_tokens: int = 0
    total_tokens: int = 0
    cost_usd: float | None = None


def first(attributes: dict[str, Any], keys: tuple[str, ...]) -> Any:
    for key in keys:
        value = attributes.get(key)
        if value is not None:
            return value
    return None


def count(attributes: dict[str, Any], keys: tuple[str, ...], bad: list[str]) -> int | None:
    """The first of ``keys`` that holds a token count; wrong values are named in ``bad``."""
    for key in keys:
        value = attributes.get(key)
        if value is None:
            continue
        if isinstance(value, str) and value.isdigit():
            value = int(value)
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= MAX_COUNT:
            return value
        bad.append(key)
    return None


def usage(attributes: dict[str, Any], bad: list[str]) -> Usage:
    if not attributes.keys() & _USAGE_NAMES:
        return Usage(cost_usd=_cost(attributes, bad))
    reads = count(attributes, names.CACHE_READ_TOKENS, bad) or 0
    writes = count(attributes, names.CACHE_WRITE_TOKENS, bad) or 0
    writes_1h = min(count(attributes, names.CACHE_WRITE_1H_TOKENS, bad) or 0, writes)
    prompt = count(attributes, names.INPUT_TOKENS, bad) or 0
    completion = count(attributes, names.OUTPUT_TOKENS, bad) or 0
    reasoning = count(attributes, names.REASONING_TOKENS, bad) or 0
    sent_total = count(attributes, names.TOTAL_TOKENS, bad)
    if _input_leaves_cache_out(prompt, completion, reads, writes, sent_total):
        prompt += reads + writes
    if reasoning > completion:  # counted apart from the output by this sender
        completion += reasoning
    return Usage(
        prompt_tokens=prompt, completion_tokens=completion, cached_tokens=reads,
        cache_write_tokens=writes, cache_write_1h_tokens=writes_1h,
        reasoning_tokens=reasoning, total_tokens=prompt + completion,
        cost_usd=_cost(attributes, bad),
    )


def _input_leaves_cache_out(prompt: int, completion: int, reads: int, writes: int,
                            sent_total: int | None) -> bool:
    cache = reads + writes
    if cache == 0:
        return False
    if prompt < cache:
        return True
    return sent_total is not None and sent_total == prompt + completion + cache


def _cost(attributes: dict[str, Any], bad: list[str]) -> float | None:
    for key in names.COST_USD:
        value = attributes.get(key)
        if value is None:
            continue
        if isinstance(value, str):
            try:
                value = float(value)
            except ValueError:
                bad.append(key)
                continue
        if isinstance(value, int | float) and not isinstance(value, bool) and (
            0 <= value <= MAX_USD
        ):
            return float(value)
        bad.append(key)
    return None


def provider(attributes: dict[str, Any]) -> str | None:
    value = first(attributes, names.PROVIDER)
    return value.strip().lower()[:64] or None if isinstance(value, str) else None


def model(attributes: dict[str, Any]) -> str | None:
    value = first(attributes, names.MODEL)
    return value.strip()[:128] or None if isinstance(value, str) else None


def is_model_call(attributes: dict[str, Any]) -> bool:
    """Carries GenAI attributes and is not a span kind that only groups other work."""
    if attributes.keys().isdisjoint(names.GENAI_MARKERS):
        return False
    return not any(
        isinstance(attributes.get(key), str) and attributes[key] in kinds
        for key, kinds in names.NOT_A_CALL.items()
    )
