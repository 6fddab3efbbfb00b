"""A simulated script generator that exercises perfmon like the real one does.

``python -m perfmon.demo --url http://127.0.0.1:8000 --api-key pm_...`` generates a dozen
episodes with the real ``openai`` client talking to a local fake provider (realistic
latency, token and error behaviour), records them with the SDK's public API, the model calls
through ``perfmon.instrument_openai()``, and ships them through the SDK's exporter. The same
seed gives the same calls, tokens, cache results and failures; only wall-clock timings vary.

Demo time is compressed ``speed`` times (default 20): a call the simulation says takes 3.7 s
takes 0.185 s, and perfmon measures (and shows) 0.185 s, inside sessions that are compressed
just as much.

The data set has variety worth looking at: re-runs with a warm cache, one episode whose
dialogue prompts grew (a regression), one run on a cheaper model, a burst of rate limits,
and one failed run.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

import perfmon
from perfmon.demo._model import CLIENT_RETRIES, FakeModelClient, PromptCache, SimulatedModels
from perfmon.demo._pipeline import WORKFLOW, Run, generate_episode
from perfmon.demo.fake_provider import FakeProvider

__all__ = ["DEFAULT_EPISODES", "DEFAULT_SEED", "DEFAULT_SPEED", "Run", "demo_plan", "run_demo"]

DEFAULT_EPISODES = 12
DEFAULT_SEED = 7
DEFAULT_SPEED = 20.0  # simulated seconds per real second
EPISODE_CONCURRENCY = 4
RELEASE = "generator 1.4.2 (demo)"


def demo_plan(episodes: int = DEFAULT_EPISODES) -> list[Run]:
    """The runs of the demo, in the order they start."""
    if episodes < 4:
        raise ValueError("the demo needs at least 4 episodes")
    codes = [f"ep{n:03d}" for n in range(1, episodes + 1)]
    *regular, cheaper, regressed = codes
    runs = [
        Run(f"{code}_run1", code, 1, rate_limited=(code == "ep003"),
            note="a burst of rate limits" if code == "ep003" else "")
        for code in regular
    ]
    runs += [Run(f"{code}_run2", code, 2, note="re-run: warm cache") for code in codes[:3]]
    runs.append(Run(f"{cheaper}_run1", cheaper, 1, model="gpt-4o-mini",
                    note="written with the cheaper model"))
    runs.append(Run(f"{regressed}_run1", regressed, 1, dialogue_prompt_scale=16,
                    note="regression: its dialogue prompts grew"))
    runs.append(Run(f"{codes[1]}_run3", codes[1], 3, fail_at_analysis=True,
                    note="fails: the provider is down during comedy analysis"))
    return runs


@dataclass
class SessionResult:
    run: Run
    status: str
    payload: dict[str, Any] = field(repr=False)

    def totals(self) -> dict[str, Any]:
        calls = self.payload["api_calls"]
        cache = self.payload["session"].get("cache") or {}
        return {
            "id": self.run.session_id,
            "episode": self.run.episode,
            "status": self.status,
            "operations": len(self.payload["operations"]),
            "api_calls": len(calls),
            "api_errors": sum(1 for call in calls if call["error"]),
            "total_tokens": sum(call["total_tokens"] or 0 for call in calls),
            "cache_hits": cache.get("hits", 0),
            "cache_misses": cache.get("misses", 0),
            "note": self.run.note,
        }


async def run_demo(
    *, episodes: int = DEFAULT_EPISODES, seed: int = DEFAULT_SEED, speed: float = DEFAULT_SPEED
) -> list[SessionResult]:
    """Generate the demo's episodes, each as one perfmon session; return them in plan order."""
    import openai  # the demo needs it; the SDK itself does not

    with FakeProvider(SimulatedModels(seed=seed, speed=speed)) as provider:
        api = openai.AsyncOpenAI(base_url=provider.openai_base_url, api_key="sk-demo",
                                 max_retries=CLIENT_RETRIES)
        perfmon.instrument_openai(api)  # every call of this client becomes an API call
        try:
            client = FakeModelClient(seed=seed, speed=speed, cache=PromptCache(), client=api)
            return await _run_plan(client, demo_plan(episodes))
        finally:
            await api.close()


async def _run_plan(client: FakeModelClient, plan: list[Run]) -> list[SessionResult]:
    """Run the plan's sessions, at most EPISODE_CONCURRENCY at a time, re-runs in order."""
    finished: dict[tuple[str, int], asyncio.Event] = {
        (run.episode, run.number): asyncio.Event() for run in plan
    }
    slots = asyncio.Semaphore(EPISODE_CONCURRENCY)

    async def one(run: Run) -> SessionResult:
        previous = finished.get((run.episode, run.number - 1))
        if previous is not None:  # a re-run needs the cache its first run filled
            await previous.wait()
        async with slots:
            try:
                return await _run_session(client, run)
            finally:
                finished[(run.episode, run.number)].set()

    return list(await asyncio.gather(*(one(run) for run in plan)))


async def _run_session(client: FakeModelClient, run: Run) -> SessionResult:
    monitor = perfmon.get_performance_monitor()
    scope = monitor.session(
        run.session_id, episode=run.episode, workflow=WORKFLOW, release=RELEASE,
        environment="demo", tags=["demo", run.model],
        metadata={"writing_model": run.model, "note": run.note} if run.note
        else {"writing_model": run.model},
    )
    status = "completed"
    try:
        async with scope as metrics:
            await generate_episode(client, run)
    except Exception:
        status = "failed"  # the session records the failure; the demo goes on
    return SessionResult(run, status, metrics.to_dict())
