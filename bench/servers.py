"""Processes that benchmarks and fault tests start on loopback: gunicorn, and private
PostgreSQL and Redis instances they may stop and restart without disturbing anyone else.

Standard library and psycopg only, so both `python bench/x.py` and the test suite can use it.
"""

from __future__ import annotations

import glob
import os
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_port(port: int, *, timeout_s: float = 30.0, process=None) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"process exited with {process.returncode} during start-up")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise RuntimeError(f"nothing listens on port {port} after {timeout_s}s")


def recreate_database(server_url: str, name: str) -> str:
    """Drop and create database ``name`` on the PostgreSQL at ``server_url``; its URL."""
    import psycopg

    with psycopg.connect(f"{server_url}/postgres", autocommit=True) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return f"{server_url}/{name}"


def server_env(database_url: str, **extra: str) -> dict[str, str]:
    """Environment of a production-like perfmon process on loopback."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PERFMON_")}
    env.pop("CELERY_BROKER_URL", None)
    env.update(
        DATABASE_URL=database_url,
        DEBUG="0",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="0",
        LOG_LEVEL="WARNING",
    )
    env.update(extra)
    return env


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run([sys.executable, "manage.py", *args], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True, timeout=300)
    return result.stdout


def create_api_key(env: dict[str, str], name: str) -> str:
    return manage(env, "create_api_key", name).strip().splitlines()[-1]


class Gunicorn:
    """gunicorn on a loopback port: `perfmon_site.wsgi` with sync workers unless told
    otherwise (the production command is ``app="perfmon_site.asgi:application",
    worker_class="asgi"``)."""

    def __init__(self, env: dict[str, str], *, workers: int = 2, port: int | None = None,
                 app: str = "perfmon_site.wsgi", worker_class: str = "sync"):
        self.env = env
        self.workers = workers
        self.app = app
        self.worker_class = worker_class
        self.port = port or free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Gunicorn:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "gunicorn", self.app, "--workers",
             str(self.workers), "--worker-class", self.worker_class,
             "--bind", f"127.0.0.1:{self.port}",
             "--timeout", "120", "--graceful-timeout", "5", "--log-level", "warning"],
            cwd=ROOT, env=self.env,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None


def _pg_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"PostgreSQL's {name} is not installed")
    return found[-1]


class PrivatePostgres:
    """A throwaway PostgreSQL cluster on its own port, owned by the postgres user."""

    def __init__(self) -> None:
        self.port = free_port()
        self.dir = Path(tempfile.mkdtemp(prefix="perfmon-pg-"))
        self.data = self.dir / "data"

    def _as_postgres(self, *command: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *command], check=True,
                       capture_output=True, timeout=120)

    def create(self) -> PrivatePostgres:
        shutil.chown(self.dir, "postgres")
        self._as_postgres(_pg_bin("initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", "postgres", "--no-sync")
        return self.start()

    def start(self) -> PrivatePostgres:
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-l",
                          str(self.dir / "log"), "-o",
                          f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1",
                          "start")
        return self

    def stop(self, mode: str = "fast") -> None:
        self._as_postgres(_pg_bin("pg_ctl"), "-D", str(self.data), "-w", "-m", mode, "stop")

    def url(self, database: str = "postgres") -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/{database}"

    def destroy(self) -> None:
        try:
            self.stop("immediate")
        except subprocess.CalledProcessError:
            pass  # already stopped
        shutil.rmtree(self.dir, ignore_errors=True)


class PrivateRedis:
    """A throwaway Redis on its own port, keeping nothing on disk."""

    def __init__(self) -> None:
        self.port = free_port()
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> PrivateRedis:
        self.process = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "no"],
            stdout=subprocess.DEVNULL,
        )
        wait_for_port(self.port, process=self.process)
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.process = None
