"""The ASGI entry point runs every request's synchronous part in one thread per process,
so the process reuses one database connection (perfmon_site/asgi.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DRIVER = """
import asyncio, sys, threading
from django.core.signals import request_started
import perfmon_site.asgi
from django.core.handlers.asgi import ASGIHandler

threads = []
def seen(**kwargs):
    threads.append(threading.current_thread().name)
request_started.connect(seen, weak=False)

async def get(app):
    scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1",
             "method": "GET", "scheme": "http", "path": "/healthz", "raw_path": b"/healthz",
             "query_string": b"", "root_path": "", "headers": [(b"host", b"localhost")],
             "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80)}
    messages = [{"type": "http.request", "body": b"", "more_body": False}]
    async def receive():
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)
    sent = []
    async def send(message):
        sent.append(message)
    await app(scope, receive, send)
    return sent[0]["status"]

app = perfmon_site.asgi.application if sys.argv[1] == "perfmon" else ASGIHandler()
for _ in range(3):
    asyncio.run(get(app))
print(len(threads), len(set(threads)))
"""


def run(app: str, tmp_path) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env.update(SQLITE_PATH=str(tmp_path / "db.sqlite3"), ALLOWED_HOSTS="localhost",
               DJANGO_SETTINGS_MODULE="perfmon_site.settings")
    result = subprocess.run([sys.executable, "-c", DRIVER, app], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    return result.stdout.split()[-2:]


def test_every_request_runs_in_the_same_thread_so_its_connection_is_reused(tmp_path):
    assert run("perfmon", tmp_path) == ["3", "1"]


def test_django_own_handler_would_use_a_thread_per_request(tmp_path):
    # What the entry point works around: a new thread, and so a new connection, each time.
    assert run("django", tmp_path) == ["3", "3"]
