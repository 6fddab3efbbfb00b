"""Slow clients: the production command from the README keeps answering under slowloris.

The drill starts the README's gunicorn command as written (on a free loopback port, over a
scratch SQLite database: the attack is on the HTTP layer, not the database), opens many
connections that trickle headers or a body a byte at a time, and checks that a normal
page and a normal ingest request still answer promptly. The same drill against the old
command (2 sync workers) shows what it guards against: there, the normal request times out.
"""

import json
import re
import shlex
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

import pytest

from bench.servers import ROOT, create_api_key, free_port, manage, server_env, wait_for_port
from tests.factories import script_payload

SLOW_CONNECTIONS = 24  # more than 2 workers x any sensible thread count
ANSWER_BOUND_S = 5.0
TRICKLE_EVERY_S = 0.5
OLD_COMMAND = "gunicorn perfmon_site.wsgi --workers 2 --bind 127.0.0.1:8000"


def documented_command() -> list[str]:
    """The gunicorn line of the README's "Scaling out" section, as arguments."""
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Scaling out", 1)[1]
    line = re.search(r"^\.venv/bin/(gunicorn .*)$", section, re.M).group(1)
    return shlex.split(line.split("#")[0])


@pytest.fixture(scope="module")
def site_env(tmp_path_factory):
    """A migrated scratch SQLite database and a production-like environment for it."""
    sqlite = tmp_path_factory.mktemp("slowloris") / "perfmon.sqlite3"
    env = server_env("", SQLITE_PATH=str(sqlite))
    manage(env, "migrate", "-v0")
    return env, create_api_key(env, "slowloris")


@contextmanager
def serving(env: dict, command: list[str]):
    port = free_port()
    args = [a.replace("127.0.0.1:8000", f"127.0.0.1:{port}") for a in command[1:]]
    process = subprocess.Popen([sys.executable, "-m", "gunicorn", *args, "--log-level",
                                "error"], cwd=ROOT, env=env)
    try:
        wait_for_port(port, process=process)
        yield f"127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextmanager
def slowloris(address: str, key: str, *, duration_s: float):
    """Half the connections trickle headers, half trickle a request body."""
    host, port = address.split(":")
    conns = []
    for n in range(SLOW_CONNECTIONS):
        conn = socket.create_connection((host, int(port)), timeout=5)
        if n % 2:
            conn.sendall(b"GET /accounts/login/ HTTP/1.1\r\nHost: 127.0.0.1\r\n")
        else:
            conn.sendall(b"POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: Bearer " + key.encode() + b"\r\n"
                         b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{")
        conns.append(conn)
    stop = threading.Event()

    def trickle() -> None:
        deadline = time.monotonic() + duration_s
        while not stop.is_set() and time.monotonic() < deadline:
            for n, conn in enumerate(conns):
                try:
                    conn.sendall(b"X-Slow: 1\r\n" if n % 2 else b" ")
                except OSError:
                    pass  # the server may close a slow client: that is allowed
            stop.wait(TRICKLE_EVERY_S)

    thread = threading.Thread(target=trickle, daemon=True)
    thread.start()
    time.sleep(1.0)  # let every slow connection reach a worker
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=5)
        for conn in conns:
            conn.close()


def normal_requests(address: str, key: str, n: int | str) -> list[int]:
    """A page and an ingest request, as a user and a generator send them; their statuses."""
    page = urllib.request.urlopen(f"http://{address}/accounts/login/", timeout=ANSWER_BOUND_S)
    body = json.dumps(script_payload(f"during-attack-{n}")).encode()
    ingest = urllib.request.urlopen(urllib.request.Request(
        f"http://{address}/api/v1/sessions", data=body, method="POST",
        headers={"Authorization": f"Bearer {key}", "Content-Type": "application/json"},
    ), timeout=ANSWER_BOUND_S)
    return [page.status, ingest.status]


def test_the_documented_command_answers_under_slowloris(site_env):
    env, key = site_env
    command = documented_command()
    with serving(env, command) as address:
        normal_requests(address, key, "warm")  # start-up costs are not what is measured
        with slowloris(address, key, duration_s=30):
            answers, took = [], []
            for n in range(3):
                began = time.perf_counter()
                answers.append(normal_requests(address, key, n))
                took.append(time.perf_counter() - began)

    print(f"slowloris: {SLOW_CONNECTIONS} slow connections; page + ingest pairs took "
          f"{[round(t * 1000) for t in took]} ms")  # figures for docs/reliability.md
    assert answers == [[200, 201]] * 3


def test_the_drill_catches_sync_workers(site_env):
    """The control: two sync workers, as the README used to say, stop answering."""
    env, key = site_env
    with serving(env, shlex.split(OLD_COMMAND)) as address:
        assert normal_requests(address, key, "warm-sync") == [200, 201]
        with slowloris(address, key, duration_s=15), pytest.raises(OSError):
            normal_requests(address, key, "sync")  # TimeoutError and URLError are OSErrors


def test_an_oversized_body_is_refused_before_it_is_received(site_env):
    """Under ASGI Django reads the whole body first; the cap in front of it must not."""
    env, key = site_env
    with serving(env, documented_command()) as address:
        host, port = address.split(":")
        with socket.create_connection((host, int(port)), timeout=ANSWER_BOUND_S) as conn:
            conn.sendall(b"POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Authorization: Bearer " + key.encode() + b"\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Content-Length: 5000000000\r\n\r\n{")  # 5 GB declared, 1 sent
            answer = conn.recv(4096)
        with socket.create_connection((host, int(port)), timeout=ANSWER_BOUND_S) as conn:
            conn.sendall(b"POST /api/v1/sessions HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                         b"Content-Type: application/json\r\n"
                         b"Transfer-Encoding: chunked\r\n\r\n")
            chunk = b" " * 1_000_000
            try:  # the server may close mid-upload once past the cap: that is the point
                for _ in range(12):  # 12 MB, past the 10 MiB cap, no length declared
                    conn.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
            except OSError:
                pass
            chunked_answer = conn.recv(4096)

    assert answer.startswith(b"HTTP/1.1 413")
    assert chunked_answer.startswith(b"HTTP/1.1 413")


def test_the_readme_command_is_the_one_the_drill_runs():
    command = documented_command()

    assert command[:2] == ["gunicorn", "perfmon_site.asgi:application"]
    assert "--worker-class" in command and "asgi" in command
    assert Path(ROOT / "perfmon_site" / "asgi.py").exists()
