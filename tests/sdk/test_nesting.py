"""Nesting and concurrency: parent ids, asyncio.gather, thread pools, parallel sessions."""

from __future__ import annotations

import asyncio
import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from perfmon import get_performance_monitor, monitor_performance
from tests.sdk.helpers import isolated_perfmon  # noqa: F401  (autouse fixture)

monitor = get_performance_monitor()


@monitor_performance("dialogue")
def write_dialogue(line: int) -> int:
    monitor.record_cache_hit("llm")
    return line


@monitor_performance("scene")
def write_scene() -> None:
    for line in range(3):
        write_dialogue(line)


@monitor_performance("scene_async")
async def write_scene_async(index: int) -> int:
    await asyncio.sleep(0.01)
    monitor.record_cache_miss()
    return index


def test_nested_operations_get_their_parent_as_parent_id():
    with monitor.session("ep001") as session:
        with monitor.operation("episode"):
            write_scene()

    episode, scene, *lines = session.operations
    assert episode.parent is None
    assert scene.parent is episode
    assert [line.parent for line in lines] == [scene, scene, scene]
    wire = {op["id"]: op for op in session.to_dict()["operations"]}
    by_name = {op["name"]: op for op in wire.values()}
    assert by_name["scene"]["parent_id"] == by_name["episode"]["id"]
    assert all(wire[op["parent_id"]]["name"] == "scene" for op in wire.values()
               if op["name"] == "dialogue")


def test_cache_lookups_are_counted_on_the_current_operation():
    with monitor.session("ep001") as session:
        write_scene()
        monitor.record_cache_miss("llm")  # at the top level: session only
    scene, *lines = session.operations
    assert [op.cache_hits for op in lines] == [1, 1, 1]
    assert scene.cache_hits == 0
    assert session.cache_by_name == {"llm": {"hits": 3, "misses": 1}}


async def test_gather_of_many_decorated_coroutines_records_each_under_the_gatherer():
    async with monitor.session("ep001") as session:
        async with monitor.operation("all_scenes") as parent:
            results = await asyncio.gather(*(write_scene_async(i) for i in range(200)))

    assert results == list(range(200))
    scenes = [op for op in session.operations if op.name == "scene_async"]
    assert len(scenes) == 200
    assert all(op.parent is parent and op.finished for op in scenes)
    assert session.cache_misses == 200
    assert sum(op.cache_misses for op in scenes) == 200


async def test_two_sessions_in_concurrent_tasks_never_mix():
    async def episode(name: str) -> object:
        async with monitor.session(name) as session:
            for _ in range(20):
                await write_scene_async(0)
                await asyncio.sleep(0)  # let the other episode run in between
        return session

    first, second = await asyncio.gather(episode("ep001"), episode("ep002"))
    assert len(first.operations) == len(second.operations) == 20
    assert all(op._owner is first for op in first.operations)
    assert all(op._owner is second for op in second.operations)
    assert first.end_time > second.start_time and second.end_time > first.start_time


def test_two_sessions_in_concurrent_threads_never_mix():
    barrier = threading.Barrier(2)
    sessions = {}

    def episode(name: str) -> None:
        with monitor.session(name) as session:
            for _ in range(200):
                barrier.wait()  # both threads are inside their sessions at every step
                write_dialogue(0)
        sessions[name] = session

    threads = [threading.Thread(target=episode, args=(n,)) for n in ("ep001", "ep002")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    for session in sessions.values():
        assert len(session.operations) == 200
        assert all(op._owner is session for op in session.operations)
        assert session.cache_hits == 200


def test_thread_pool_workers_record_into_the_start_session_default():
    session = monitor.start_session("ep001")
    with ThreadPoolExecutor(max_workers=4) as pool:
        assert list(pool.map(write_dialogue, range(2000))) == list(range(2000))
    monitor.end_session()

    assert len(session.operations) == 2000  # no append lost under contention
    assert session.cache_hits == 2000
    assert all(op.cache_hits == 1 for op in session.operations)


def test_thread_pool_with_copied_context_nests_under_the_submitting_operation():
    with monitor.session("ep001") as session:
        with monitor.operation("fan_out") as parent:
            with ThreadPoolExecutor(max_workers=4) as pool:
                futures = [
                    pool.submit(contextvars.copy_context().run, write_scene)
                    for _ in range(50)
                ]
                for future in futures:
                    future.result()

    scenes = [op for op in session.operations if op.name == "scene"]
    assert len(scenes) == 50 and all(op.parent is parent for op in scenes)
    assert len([op for op in session.operations if op.name == "dialogue"]) == 150


def test_asyncio_to_thread_keeps_the_context():
    async def main() -> object:
        async with monitor.session("ep001") as session:
            async with monitor.operation("offload") as parent:
                await asyncio.to_thread(write_dialogue, 1)
        return session, parent

    session, parent = asyncio.run(main())
    (_, dialogue) = session.operations
    assert dialogue.parent is parent


def test_concurrent_recording_from_many_threads_counts_exactly():
    session = monitor.start_session("ep001")

    def work() -> None:
        for _ in range(500):
            monitor.record_cache_hit("llm")
            monitor.record_api_call(tokens_used=10, cost=0.001)
            monitor.increment("dialogue_lines_generated")

    threads = [threading.Thread(target=work) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monitor.end_session()

    assert session.cache_hits == 4000
    assert session.cache_by_name["llm"]["hits"] == 4000
    assert session.api_calls == 4000 and session.total_tokens_used == 40000
    assert session.dialogue_lines_generated == 4000
    assert len({id(c) for c in session.api_call_records}) == 4000


def test_api_calls_are_tied_to_the_current_operation():
    with monitor.session("ep001") as session:
        with monitor.operation("scene") as scene:
            call = monitor.record_api_call(tokens_used=5)
        top = monitor.record_api_call(tokens_used=5)
    assert call.operation is scene and top.operation is None
    wire_calls = session.to_dict()["api_calls"]
    assert wire_calls[0]["operation_id"] == session.to_dict()["operations"][0]["id"]
    assert wire_calls[1]["operation_id"] is None
