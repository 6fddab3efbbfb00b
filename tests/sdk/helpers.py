"""Shared pieces of the SDK tests: a clean monitor per test, and a stand-in ingest server."""

from __future__ import annotations

import gzip
import json
import sys
import threading
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

import perfmon
from perfmon import _config, _core

ROOT = Path(__file__).resolve().parents[2]


def reset_perfmon() -> None:
    """Put the process-wide monitor back to its import-time state."""
    perfmon.shutdown(timeout=1.0)
    with _config._lock:
        _config._env_checked = False
    monitor = perfmon.get_performance_monitor()
    monitor.enable()
    monitor.clear_history()
    monitor.max_history = 100
    monitor.bottleneck_threshold = 0.2
    with monitor._lock:
        monitor._started.clear()
    _core._default = None
    _core.current.set(None)  # sync tests share the thread's context


@pytest.fixture(autouse=True)
def isolated_perfmon(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Autouse in every SDK test module (imported there): no state leaks between tests."""
    for name in (perfmon.ENV_URL, perfmon.ENV_API_KEY, perfmon.ENV_DISABLED,
                 perfmon.ENV_SPOOL_DIR, perfmon.ENV_ENVIRONMENT, perfmon.ENV_RELEASE):
        monkeypatch.delenv(name, raising=False)
    reset_perfmon()
    yield
    reset_perfmon()


# -- a stand-in for the ingest API ---------------------------------------------------------


@dataclass
class Answer:
    """One scripted reply. ``status`` None with ``hang`` holds the request until released and
    then drops the connection; with ``drop`` it drops the connection at once."""

    status: int | None = 201
    headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    drop: bool = False


@dataclass
class Received:
    at: float
    path: str
    headers: dict[str, str]
    raw_size: int
    payload: dict[str, Any] | None
    status: int | None


class IngestStub:
    """A small HTTP server that answers like the ingest API: POST /api/v1/sessions with a
    gzip JSON body, merged by session id, operation id and API-call id. Replies can be
    scripted (failures, throttling, hangs) with ``answer()``; after the script, 201."""

    def __init__(self, port: int = 0) -> None:
        self._port = port
        self._cond = threading.Condition()
        self._script: deque[Answer] = deque()
        self._released = threading.Event()
        self.requests: list[Received] = []
        self.sessions: dict[str, dict[str, Any]] = {}
        self.accepted: Counter[str] = Counter()  # session id -> payloads stored
        self.arrived = 0  # requests read so far, including ones still being held
        # Optional: payload -> Answer/status for that payload (None: use the script), to
        # answer one payload differently from the others.
        self.rule: Any = None
        self._server: ThreadingHTTPServer | None = None

    # lifecycle
    def start(self) -> IngestStub:
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server naming
                stub._handle(self)

            def log_message(self, *args: Any) -> None:
                return None

        self._server = ThreadingHTTPServer(("127.0.0.1", self._port), Handler)
        self._server.daemon_threads = True
        self._port = self._server.server_address[1]
        threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        ).start()
        return self

    def stop(self) -> None:
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> IngestStub:
        return self.start()

    def __exit__(self, *exc_info: Any) -> None:
        self.stop()

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._port}"

    # scripting and waiting
    def answer(self, *answers: Answer | int) -> None:
        with self._cond:
            for item in answers:
                self._script.append(item if isinstance(item, Answer) else Answer(item))

    def release(self) -> None:
        self._released.set()

    def wait_for(self, predicate: Any, timeout: float = 5.0) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: predicate(self), timeout)

    def operation_ids(self, session_id: str) -> set[str]:
        with self._cond:
            return set(self.sessions.get(session_id, {}).get("operations", {}))

    # the server
    def _handle(self, handler: BaseHTTPRequestHandler) -> None:
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length)
        headers = {k.lower(): v for k, v in handler.headers.items()}
        try:
            body = gzip.decompress(raw) if headers.get("content-encoding") == "gzip" else raw
            payload = json.loads(body)
        except (OSError, ValueError):
            payload = None
        ruled = self.rule(payload) if self.rule is not None else None
        with self._cond:
            if ruled is not None:
                answer = ruled if isinstance(ruled, Answer) else Answer(ruled)
            else:
                answer = self._script.popleft() if self._script else Answer()
            self.arrived += 1
            self._cond.notify_all()
        if answer.hang:
            self._released.wait(30)
        status = None if (answer.hang or answer.drop) else answer.status
        with self._cond:
            received = Received(time.monotonic(), handler.path, headers, len(body), payload,
                                status)
            self.requests.append(received)
            if status is not None and 200 <= status < 300 and payload is not None:
                self._merge(payload)
            self._cond.notify_all()
        if status is None:
            handler.close_connection = True
            return  # no reply: the client sees a dropped connection
        handler.send_response(status)
        for name, value in answer.headers.items():
            handler.send_header(name, value)
        reply = json.dumps({"id": 1, "url": "/sessions/1", "created": status == 201}).encode()
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(reply)))
        handler.end_headers()
        handler.wfile.write(reply)

    def _merge(self, payload: dict[str, Any]) -> None:
        incoming = payload["session"]
        stored = self.sessions.setdefault(
            incoming["id"], {"session": {}, "operations": {}, "api_calls": {}}
        )
        finished = stored["session"].get("status") in ("completed", "failed")
        stored["session"].update(incoming)
        if finished and incoming.get("status") == "running":  # never back to running
            stored["session"]["status"] = "completed"
        for op in payload.get("operations", []):
            stored["operations"][op["id"]] = op
        for call in payload.get("api_calls", []):
            stored["api_calls"][call["id"]] = call
        self.accepted[incoming["id"]] += 1


def free_port() -> int:
    """A port nothing listens on (for connection-refused tests)."""
    stub = IngestStub().start()
    port = stub.port
    stub.stop()
    return port


def run_python(code: str, env: dict[str, str] | None = None, timeout: float = 20.0) -> Any:
    """Run ``code`` in a fresh interpreter from the repository root."""
    import os
    import subprocess

    full_env = {k: v for k, v in os.environ.items() if not k.startswith("PERFMON_")}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=full_env, capture_output=True, text=True,
        timeout=timeout,
    )
