"""A fake LLM client with per-model latency, token and error behaviour, and a prompt cache.

Every random draw comes from a generator seeded by the call's identity (run, scene, step,
attempt), so the same seed gives the same calls whatever order concurrent tasks run in.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field

import perfmon

PROVIDER = "openai"


@dataclass(frozen=True)
class ModelProfile:
    name: str
    seconds_per_1k_output: float  # generation speed
    seconds_per_1k_input: float  # reading the prompt
    base_latency_s: float  # time to first token
    error_rate: float


MODELS = {
    "gpt-4o": ModelProfile("gpt-4o", 9.0, 1.0, 0.45, 0.03),
    "gpt-4o-mini": ModelProfile("gpt-4o-mini", 5.0, 0.5, 0.30, 0.02),
}


class ModelError(RuntimeError):
    """The fake provider failed the call (rate limit, overload)."""


@dataclass
class PromptCache:
    """The generator's response cache: keyed by a hash of the prompt, kept across runs."""

    entries: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def key(prompt: str) -> str:
        return hashlib.sha256(prompt.encode()).hexdigest()


@dataclass
class FakeModelClient:
    seed: int
    speed: float
    cache: PromptCache
    # call key -> how many attempts fail before one succeeds (a rate-limit burst or, with
    # a large number, an outage)
    failing_attempts: dict[str, int] = field(default_factory=dict)

    def rng(self, *identity: object) -> random.Random:
        return random.Random(":".join(str(part) for part in (self.seed, *identity)))

    async def complete(
        self,
        prompt: str,
        *,
        model: str,
        call_key: str,
        output_tokens: tuple[int, int],
        cache_name: str = "llm",
        use_cache: bool = True,
        max_attempts: int = 4,
    ) -> str:
        """Answer ``prompt``, from the cache when it was answered before, retrying failures."""
        monitor = perfmon.get_performance_monitor()
        cache_key = PromptCache.key(f"{model}\n{prompt}")
        if use_cache:
            if cache_key in self.cache.entries:
                monitor.record_cache_hit(cache_name)
                await self._sleep(0.01)
                return self.cache.entries[cache_key]
            monitor.record_cache_miss(cache_name)
        for attempt in range(1, max_attempts + 1):
            try:
                answer = await self._call(prompt, model=model, call_key=call_key,
                                          attempt=attempt, output_tokens=output_tokens)
            except ModelError:
                if attempt == max_attempts:
                    raise
                await self._sleep(0.4 * 2 ** (attempt - 1))  # backoff before the retry
                continue
            self.cache.entries[cache_key] = answer
            return answer
        raise AssertionError("unreachable")

    async def _call(self, prompt: str, *, model: str, call_key: str, attempt: int,
                    output_tokens: tuple[int, int]) -> str:
        profile = MODELS[model]
        rng = self.rng(call_key, attempt)
        prompt_tokens = max(1, len(prompt) // 4)
        completion_tokens = rng.randint(*output_tokens)
        forced = attempt <= self.failing_attempts.get(call_key, 0)
        failed = forced or rng.random() < profile.error_rate
        latency = profile.base_latency_s * rng.uniform(0.7, 1.6)
        latency += prompt_tokens / 1000 * profile.seconds_per_1k_input
        if not failed:
            latency += completion_tokens / 1000 * profile.seconds_per_1k_output
        await self._sleep(latency)
        perfmon.get_performance_monitor().record_api_call(
            model=model,
            provider=PROVIDER,
            prompt_tokens=prompt_tokens,
            completion_tokens=0 if failed else completion_tokens,
            latency_s=round(latency, 4),
            prompt=prompt,
            error="429 Too Many Requests" if failed else False,
        )
        if failed:
            raise ModelError(f"{model} failed ({call_key}, attempt {attempt})")
        return f"<{completion_tokens} tokens from {model}>"

    async def _sleep(self, simulated_s: float) -> None:
        await asyncio.sleep(simulated_s / self.speed)
