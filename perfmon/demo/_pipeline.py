"""The script-generation pipeline of the demo, instrumented with the perfmon SDK.

Shaped like the real generator: an outline, scenes generated in parallel with bounded
concurrency (each with its dialogue and stage directions), then comedy analysis and an
optimization pass over the whole script.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import perfmon
from perfmon import monitor_performance
from perfmon.demo._model import FakeModelClient

WORKFLOW = "script_generation"


@dataclass(frozen=True)
class Run:
    """One generation of one episode, and what makes it special in the demo."""

    session_id: str
    episode: str
    number: int  # 1 for the first run of the episode, 2 for its re-run, ...
    model: str = "gpt-4o"  # the writing model; analysis always uses the small one
    dialogue_prompt_scale: int = 1  # > 1: the dialogue prompts grew (the regression)
    fail_at_analysis: bool = False  # the comedy pass fails after every retry
    rate_limited: bool = False  # a burst of 429s on the first dialogue call
    note: str = ""


SCENE_CONCURRENCY = 3
MINI = "gpt-4o-mini"


def _scene_count(client: FakeModelClient, run: Run) -> int:
    return client.rng(run.episode, "scenes").randint(6, 9)


async def generate_episode(client: FakeModelClient, run: Run) -> None:
    monitor = perfmon.get_performance_monitor()
    scenes = _scene_count(client, run)
    async with monitor.operation("generate_full_script", episode=run.episode, scenes=scenes):
        outline = await generate_outline(client, run, scenes)
        limit = asyncio.Semaphore(SCENE_CONCURRENCY)

        async def bounded(number: int) -> None:
            async with limit:
                await generate_scene(client, run, outline, number)

        await asyncio.gather(*(bounded(n) for n in range(1, scenes + 1)))
        await analyze_comedy(client, run, scenes)
        await optimize_script(client, run)


@monitor_performance("outline")
async def generate_outline(client: FakeModelClient, run: Run, scenes: int) -> str:
    prompt = f"Outline episode {run.episode} in {scenes} scenes. Series bible: ..." + "x" * 2400
    return await client.complete(prompt, model=run.model, call_key=f"{run.episode}:outline",
                                 output_tokens=(400, 700))


async def generate_scene(client: FakeModelClient, run: Run, outline: str, number: int) -> None:
    monitor = perfmon.get_performance_monitor()
    async with monitor.operation("scene_generation", scene=number):
        scene_key = f"{run.episode}:scene{number}"
        prompt = f"{outline}\nWrite scene {number} of {run.episode}." + "s" * 1600
        await client.complete(prompt, model=run.model, call_key=scene_key,
                              output_tokens=(350, 650))
        lines = await write_dialogue(client, run, scene_key)
        directions = await write_stage_directions(client, run, scene_key)
        monitor.increment("scenes_generated")
        monitor.increment("dialogue_lines_generated", lines)
        monitor.increment("stage_directions_generated", directions)


@monitor_performance("dialogue")
async def write_dialogue(client: FakeModelClient, run: Run, scene_key: str) -> int:
    # Three beats written one after another: each continues the previous one.
    lines = 0
    for beat in range(1, 4):
        key = f"{scene_key}:dialogue{beat}"
        if run.rate_limited and beat == 1:
            # Three 429s: the client's own retry fails too, so the call fails; the
            # generator retries it, and the client's retry of that one gets through.
            client.failing_attempts[key] = 3
        prompt = (f"Dialogue for {scene_key}, beat {beat}. Character voices: ..."
                  + "d" * 1200 * run.dialogue_prompt_scale)
        # A re-run keeps the outline and scenes but rewrites the jokes: take-specific prompt.
        if beat == 3:
            prompt += f" take {run.number}"
        # Dialogue is streamed, as a writing tool shows it while it is written.
        await client.complete(prompt, model=run.model, call_key=key, output_tokens=(180, 320),
                              stream=True)
        lines += client.rng(key, "lines").randint(4, 8)
    return lines


@monitor_performance("stage_directions")
async def write_stage_directions(client: FakeModelClient, run: Run, scene_key: str) -> int:
    prompt = f"Stage directions for {scene_key}." + "g" * 800
    await client.complete(prompt, model=MINI, call_key=f"{scene_key}:directions",
                          output_tokens=(120, 240))
    return client.rng(scene_key, "directions").randint(6, 12)


@monitor_performance("comedy_analysis")
async def analyze_comedy(client: FakeModelClient, run: Run, scenes: int) -> None:
    monitor = perfmon.get_performance_monitor()
    key = f"{run.episode}:run{run.number}:comedy"
    rubric = "Score the jokes against the show's comedy rubric: ..." + "r" * 900
    for scene in range(1, scenes + 1):
        if run.fail_at_analysis:
            client.outages.add(f"{key}:{scene}")  # the provider is down
        # The rubric is re-sent to calibrate before every scene, bypassing the cache: the
        # analysis reports it as the same prompt sent again and again.
        await client.complete(rubric, model=MINI, call_key=f"{key}:calibrate{scene}",
                              output_tokens=(20, 40), use_cache=False)
        await client.complete(f"{rubric}\nScene {scene} of {run.episode} take {run.number}",
                              model=MINI, call_key=f"{key}:{scene}", output_tokens=(150, 260))
    monitor.increment("jokes_analyzed", client.rng(key, "jokes").randint(18, 30))


@monitor_performance("optimization")
async def optimize_script(client: FakeModelClient, run: Run) -> None:
    prompt = f"Tighten the script of {run.episode} take {run.number}." + "o" * 2000
    await client.complete(prompt, model=run.model, call_key=f"{run.episode}:{run.number}:opt",
                          output_tokens=(500, 900))
