"""Sessions ended in child processes reach the server without anyone calling flush().

Against a local stand-in of the ingest API, for each start method (fork, forkserver,
spawn): four ``multiprocessing.Process`` children, and a ``Pool(2)`` of four tasks used as a
context manager (whose ``__exit__`` terminates the workers with SIGTERM). Each child makes
one session and never flushes; every session must arrive, once.

How the children are configured:
* fork: nothing; they inherit the parent's ``perfmon.configure()`` (no environment is set).
* spawn and forkserver ``Process`` children: ``PERFMON_URL`` / ``PERFMON_API_KEY`` /
  ``PERFMON_SPOOL_DIR`` in the environment (the first session configures the exporter).
* spawn and forkserver ``Pool`` workers: ``perfmon.configure()`` in the Pool initializer.

The forkserver process keeps the environment it was started with, so the module shares one
server (one URL) between its tests and every test sets the same environment.
"""

from __future__ import annotations

import multiprocessing
import os
import time
import uuid

import pytest

import perfmon
from perfmon import _config
from tests.sdk import child_workload
from tests.sdk.child_workload import make_session
from tests.sdk.helpers import (  # noqa: F401  (isolated_perfmon is an autouse fixture)
    Answer,
    IngestStub,
    isolated_perfmon,
)

API_KEY = "pm_child_key"
METHODS = [m for m in ("fork", "forkserver", "spawn")
           if m in multiprocessing.get_all_start_methods()]
SLOW_ANSWER_S = 0.15
JOIN_S = 60.0  # per child; a spawn child imports pytest's entry script again
needs_fork = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
monitor = perfmon.get_performance_monitor()


@pytest.fixture(scope="module")
def server():
    with IngestStub() as stub:
        yield stub


@pytest.fixture
def prefix() -> str:
    return f"child-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def spool(tmp_path):
    return tmp_path / "spool"


@pytest.fixture
def parent(server, spool, monkeypatch):
    """The parent is configured in code; spawn and forkserver children read the environment."""
    assert perfmon.configure(url=server.url, api_key=API_KEY, spool_dir=spool, timeout=5.0,
                             backoff_base=0.01, backoff_max=0.02, exit_timeout=2.0)

    def child_environment() -> None:
        monkeypatch.setenv(perfmon.ENV_URL, server.url)
        monkeypatch.setenv(perfmon.ENV_API_KEY, API_KEY)
        monkeypatch.setenv(perfmon.ENV_SPOOL_DIR, str(spool))

    return child_environment


def received(server: IngestStub, ids: list[str], timeout: float = 10.0) -> dict[str, int]:
    """How many payloads of each session the server stored (waiting up to ``timeout``)."""
    server.wait_for(lambda s: all(s.accepted[i] for i in ids), timeout)
    return {i: server.accepted[i] for i in ids}


def run_children(context, ids: list[str]) -> None:
    """One child process per session id, each making that session; all exit cleanly."""
    children = [context.Process(target=make_session, args=(i,)) for i in ids]
    for child in children:
        child.start()
    for child in children:
        child.join(JOIN_S)
    assert [child.exitcode for child in children] == [0] * len(ids)


@pytest.mark.parametrize("method", METHODS)
def test_process_children_deliver_their_sessions_without_flush(server, parent, prefix,
                                                               method):
    if method != "fork":
        parent()
    context = multiprocessing.get_context(method)
    ids = [f"{prefix}-{method}-process-{n}" for n in range(4)]
    run_children(context, ids)
    # The children flushed before they ended: nothing is left for the server to wait for.
    assert received(server, ids) == dict.fromkeys(ids, 1)
    assert server.sessions[ids[0]]["session"]["status"] == "completed"
    assert len(server.sessions[ids[0]]["operations"]) == 2


@pytest.mark.parametrize("method", METHODS)
def test_pool_workers_deliver_their_sessions_when_the_pool_terminates(server, parent, spool,
                                                                      prefix, method):
    context = multiprocessing.get_context(method)
    ids = [f"{prefix}-{method}-pool-{n}" for n in range(4)]
    options: dict = {}
    if method != "fork":
        parent()  # the same environment for the forkserver (see the module's docstring)
        options = {"initializer": child_workload.configure_worker,
                   "initargs": (server.url, API_KEY, str(spool))}
    # Each answer takes a while, so a worker's later sessions are still queued in it when
    # the pool's __exit__ terminates it: they arrive only if the worker flushes then.
    server.rule = lambda payload: time.sleep(SLOW_ANSWER_S)
    try:
        with context.Pool(2, **options) as pool:  # __exit__ terminates the workers (SIGTERM)
            done = pool.map_async(make_session, ids, chunksize=1).get(JOIN_S)
    finally:
        server.rule = None
    assert done == ids
    assert received(server, ids) == dict.fromkeys(ids, 1)


@needs_fork
def test_a_forked_child_does_not_resend_its_parents_sessions(server, prefix):
    assert perfmon.configure(url=server.url, api_key=API_KEY, spool_dir=False, timeout=30.0,
                             backoff_base=0.01, backoff_max=0.02, snapshot_interval=3600.0)
    sent, inflight = f"{prefix}-parent-sent", f"{prefix}-parent-inflight"
    queued, running = f"{prefix}-parent-queued", f"{prefix}-parent-running"
    make_session(sent)
    assert perfmon.flush(5)

    arrived = server.arrived
    server.answer(Answer(hang=True))  # the parent's next request is held until released
    make_session(inflight)
    assert server.wait_for(lambda s: s.arrived > arrived)
    make_session(queued)  # waits in the parent's queue behind the held request
    context = multiprocessing.get_context("fork")
    ids = [f"{prefix}-forked-{n}" for n in range(4)]
    with monitor.session(running):  # running and tracked for snapshots while the children run
        run_children(context, ids)
    assert received(server, ids) == dict.fromkeys(ids, 1)
    # Each child reports its own counts, not the parent's (which had sent one payload).
    assert {server.sessions[i]["session"]["sdk"]["sent"] for i in ids} == {0}

    server.release()
    assert perfmon.flush(10)
    assert received(server, [sent, inflight, queued, running]) == {
        sent: 1, inflight: 1, queued: 1, running: 1}  # the parent's, once each
    assert [r.payload["session"]["status"] for r in server.requests
            if r.payload and r.payload["session"]["id"] == running] == ["completed"]


@needs_fork
def test_a_session_open_at_os_fork_is_sent_by_the_parent_only(server, prefix):
    assert perfmon.configure(url=server.url, api_key=API_KEY, spool_dir=False, timeout=5.0)
    shared, own = f"{prefix}-open-at-fork", f"{prefix}-child-own"
    pid = -1
    try:
        with monitor.session(shared):
            pid = os.fork()
        if pid == 0:  # the child left the block too, ending its copy of the parent's session
            make_session(own)
            os._exit(0 if perfmon.flush(5) else 1)  # plain os.fork(): flush before os._exit
    finally:
        if pid == 0:
            os._exit(2)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert perfmon.flush(5)
    assert received(server, [shared, own]) == {shared: 1, own: 1}


def test_the_exporter_in_a_forked_child_keeps_the_configuration(server, spool):
    assert perfmon.configure(url=server.url, api_key=API_KEY, spool_dir=spool, timeout=7.0)
    exporter = _config.get_exporter()
    assert exporter is not None
    endpoint, headers = exporter.endpoint, dict(exporter._headers)
    exporter._count("sent", 5)
    exporter._after_fork()  # what the at-fork hook runs in a child
    assert exporter.endpoint == endpoint and exporter._headers == headers
    assert exporter._timeout == 7.0 and exporter._spool is not None
    assert exporter.stats()["sent"] == 0 and exporter._queue.empty()


@needs_fork
def test_a_pool_worker_keeps_a_sigterm_handler_of_its_own(server, parent, prefix):
    context = multiprocessing.get_context("fork")
    with context.Pool(1) as pool:
        perfmon_handled = pool.apply_async(child_workload.sigterm_handler_after_session,
                                           (f"{prefix}-default",)).get(JOIN_S)
    with context.Pool(1, initializer=child_workload.install_own_sigterm_handler) as pool:
        own = pool.apply_async(child_workload.sigterm_handler_after_session,
                               (f"{prefix}-own",)).get(JOIN_S)
    assert perfmon_handled == "perfmon._lifecycle._on_sigterm"
    assert own == "tests.sdk.child_workload._own_sigterm_handler"
