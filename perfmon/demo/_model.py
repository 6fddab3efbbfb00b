"""The demo's model calls: the real ``openai`` client against a local fake provider.

``SimulatedModels`` is the provider side: per-model latency, token and error behaviour,
decided per request. ``FakeModelClient`` is the generator side, written as a user would
write it: a response cache in front of ``client.chat.completions.create`` with a retry loop
around it; perfmon records each call through ``perfmon.instrument_openai()``.

Every random draw comes from a generator seeded by the call's identity (run, scene, step,
attempt), so the same seed gives the same calls whatever order concurrent tasks run in.

Demo time is compressed by ``speed``: the provider sleeps ``simulated seconds / speed``
(and asks for retries after a compressed delay), so every latency perfmon measures, every
operation and every session runs on the same, compressed clock.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
from dataclasses import dataclass, field
from typing import Any

import perfmon
from perfmon.demo.fake_provider import Completion, Failure, ProviderRequest

PROVIDER = "openai"
CLIENT_RETRIES = 1  # the openai client's own retries: two HTTP attempts per call
RETRY_AFTER_S = 0.5  # simulated; what the provider's 429 asks the client to wait
# Headers that carry the simulation's script to the fake provider (a real provider needs none).
CALL_HEADER = "x-demo-call"
ATTEMPT_HEADER = "x-demo-attempt"
FAILING_HEADER = "x-demo-failing-attempts"  # the call's first N HTTP attempts get a 429
OUTAGE_HEADER = "x-demo-outage"  # every attempt gets a 503
OUTPUT_HEADER = "x-demo-output-tokens"


@dataclass(frozen=True)
class ModelProfile:
    name: str
    seconds_per_1k_output: float  # generation speed
    seconds_per_1k_input: float  # reading the prompt
    base_latency_s: float  # time to first token
    error_rate: float  # of each HTTP attempt


MODELS = {
    "gpt-4o": ModelProfile("gpt-4o", 9.0, 1.0, 0.45, 0.03),
    "gpt-4o-mini": ModelProfile("gpt-4o-mini", 5.0, 0.5, 0.30, 0.02),
}


def seeded(seed: int, *identity: object) -> random.Random:
    return random.Random(":".join(str(part) for part in (seed, *identity)))


@dataclass
class SimulatedModels:
    """The fake provider's answers for the demo (a ``FakeProvider`` responder)."""

    seed: int
    speed: float

    def __call__(self, request: ProviderRequest) -> Completion | Failure:
        model = str(request.body.get("model"))
        profile = MODELS[model]
        headers = request.headers
        retry = headers.get("x-stainless-retry-count", "0")
        rng = seeded(self.seed, headers[CALL_HEADER], headers[ATTEMPT_HEADER], retry)
        prompt_tokens = max(1, len(request.prompt_text) // 4)
        low, high = (int(n) for n in headers[OUTPUT_HEADER].split("-"))
        completion_tokens = rng.randint(low, high)
        http_attempt = (int(headers[ATTEMPT_HEADER]) - 1) * (CLIENT_RETRIES + 1) + int(retry)
        forced = 503 if OUTAGE_HEADER in headers else (
            429 if http_attempt < int(headers.get(FAILING_HEADER, 0)) else None)
        failed = forced is not None or rng.random() < profile.error_rate
        ttft = profile.base_latency_s * rng.uniform(0.7, 1.6)
        ttft += prompt_tokens / 1000 * profile.seconds_per_1k_input
        if failed:
            return Failure(forced or 429, retry_after_s=RETRY_AFTER_S / self.speed,
                           latency_s=ttft / self.speed)
        words = [f"w{n}" for n in range(max(1, completion_tokens // 40))]
        generation_s = completion_tokens / 1000 * profile.seconds_per_1k_output
        return Completion(
            text=" ".join(words), model=model, prompt_tokens=prompt_tokens,
            completion_tokens=completion_tokens, latency_s=ttft / self.speed,
            chunk_delay_s=generation_s / len(words) / self.speed,
        )


@dataclass
class PromptCache:
    """The generator's response cache: keyed by a hash of the prompt, kept across runs."""

    entries: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def key(prompt: str) -> str:
        return hashlib.sha256(prompt.encode()).hexdigest()


@dataclass
class FakeModelClient:
    """The generator's model access: a cache, retries, and the openai client."""

    seed: int
    speed: float
    cache: PromptCache
    client: Any  # openai.AsyncOpenAI, pointed at the fake provider
    # call key -> how many HTTP attempts (the client's retries included) get a 429 before
    # one succeeds: a rate-limit burst
    failing_attempts: dict[str, int] = field(default_factory=dict)
    outages: set[str] = field(default_factory=set)  # call keys that fail with a 503

    def rng(self, *identity: object) -> random.Random:
        return seeded(self.seed, *identity)

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
        stream: bool = False,
    ) -> str:
        """Answer ``prompt``, from the cache when it was answered before, retrying failures."""
        import openai

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
                answer = await self._call(prompt, model, call_key, attempt, output_tokens,
                                          stream)
            except openai.APIStatusError:
                if attempt == max_attempts:
                    raise
                await self._sleep(0.4 * 2 ** (attempt - 1))  # backoff before the retry
                continue
            self.cache.entries[cache_key] = answer
            return answer
        raise AssertionError("unreachable")

    async def _call(self, prompt: str, model: str, call_key: str, attempt: int,
                    output_tokens: tuple[int, int], stream: bool) -> str:
        headers = {CALL_HEADER: call_key, ATTEMPT_HEADER: str(attempt),
                   OUTPUT_HEADER: f"{output_tokens[0]}-{output_tokens[1]}"}
        if call_key in self.outages:
            headers[OUTAGE_HEADER] = "1"
        elif call_key in self.failing_attempts:
            headers[FAILING_HEADER] = str(self.failing_attempts[call_key])
        messages = [{"role": "user", "content": prompt}]
        completions = self.client.chat.completions
        if not stream:
            response = await completions.create(model=model, messages=messages,
                                                max_tokens=output_tokens[1],
                                                extra_headers=headers)
            return f"<{response.usage.completion_tokens} tokens from {model}>"
        chunks = await completions.create(model=model, messages=messages,
                                          max_tokens=output_tokens[1], stream=True,
                                          stream_options={"include_usage": True},
                                          extra_headers=headers)
        used = 0
        async for chunk in chunks:
            if chunk.usage is not None:
                used = chunk.usage.completion_tokens
        return f"<{used} tokens from {model}>"

    async def _sleep(self, simulated_s: float) -> None:
        await asyncio.sleep(simulated_s / self.speed)
