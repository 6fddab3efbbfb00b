"""The alerts' world: real HTTP receivers on 127.0.0.1, a project's channel and rule, and
sessions analyzed the way the server analyzes them (the task, with its after-commit work)."""

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from django.db.models import F

from ingest.schemas import SessionPayload
from ingest.services import store_payload
from metrics import tasks
from metrics.alerts.models import AlertChannel, AlertDelivery, AlertRule, EventKind
from metrics.models import Project, Session

HANG = "hang"  # accept the request, never answer
HANG_LIMIT_S = 10.0  # a hanging handler gives up by itself, so no thread outlives a test
BASE_URL = "https://perfmon.example.test"


class Receiver:
    """An HTTP server answering POSTs from a script of replies; the last reply repeats.

    A reply is a status code, ("redirect", location) or HANG. Every request is kept, with
    its headers and raw body, before the reply is chosen: attempts are counted even when
    the receiver never answers.
    """

    def __init__(self, replies: list[Any]) -> None:
        self.replies = list(replies)
        self.requests: list[tuple[dict[str, str], bytes]] = []
        self.released = threading.Event()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_port}/hook"

    def bodies(self) -> list[dict]:
        return [json.loads(body) for _, body in self.requests]

    def _next_reply(self, headers: dict[str, str], body: bytes) -> Any:
        with self.lock:
            self.requests.append((headers, body))
            return self.replies.pop(0) if len(self.replies) > 1 else self.replies[0]

    def _handler(self):
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                reply = receiver._next_reply(dict(self.headers), body)
                if reply == HANG:
                    receiver.released.wait(HANG_LIMIT_S)
                    return
                if isinstance(reply, tuple):
                    self.send_response(302)
                    self.send_header("Location", reply[1])
                else:
                    self.send_response(reply)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, format, *args) -> None:  # noqa: A002
                pass

        return Handler

    def stop(self) -> None:
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def make_receiver():
    made: list[Receiver] = []

    def make(*replies: Any) -> Receiver:
        made.append(Receiver(list(replies) or [200]))
        return made[-1]

    yield make
    for receiver in made:
        receiver.stop()


@pytest.fixture
def receiver(make_receiver) -> Receiver:
    return make_receiver(200)


@pytest.fixture(autouse=True)
def alert_settings(settings):
    settings.PERFMON_BASE_URL = BASE_URL
    settings.ALERT_HTTP_TIMEOUT_S = 0.5
    settings.ALERT_MAX_ATTEMPTS = 3
    settings.ALERT_RETRY_BACKOFF_S = 60
    return settings


def time_passes(seconds: float) -> None:
    """What waiting does to the deliveries: every moment they hold moves back by so much."""
    shift = timedelta(seconds=seconds)
    AlertDelivery.objects.update(next_attempt_at=F("next_attempt_at") - shift,
                                 not_before=F("not_before") - shift)


def channel_to(project: Project, url: str = "", *, kind: str = AlertChannel.Kind.WEBHOOK,
               addresses: str = "", name: str = "ops hook") -> tuple[AlertChannel, str]:
    channel = AlertChannel(project=project, name=name, kind=kind, url=url, addresses=addresses)
    secret = channel.set_new_secret()
    channel.full_clean()
    channel.save()
    return channel, secret


def rule_for(project: Project, *channels: AlertChannel, events=None, cooldown_minutes=0,
             name: str = "night watch", **fields: Any) -> AlertRule:
    rule = AlertRule.objects.create(
        project=project, name=name, cooldown_minutes=cooldown_minutes,
        events=events or [EventKind.BUDGET_FAILED, EventKind.REGRESSION,
                          EventKind.SESSION_FAILED],
        **fields)
    rule.channels.set(channels)
    return rule


@pytest.fixture
def hook(project, receiver) -> tuple[AlertChannel, str]:
    """A webhook channel to ``receiver`` and a rule sending every session event to it."""
    channel, secret = channel_to(project, receiver.url)
    rule_for(project, channel)
    return channel, secret


@pytest.fixture
def ingest(project, django_capture_on_commit_callbacks):
    """Store a payload as the API does: its analysis (eager here) and alerts run after the
    commit, as they would on the embedded default."""

    def ingest(payload: dict[str, Any]) -> Session:
        with django_capture_on_commit_callbacks(execute=True):
            session = store_payload(project, SessionPayload.model_validate(payload)).session
        return Session.objects.get(pk=session.pk)

    return ingest


@pytest.fixture
def reanalyze(django_capture_on_commit_callbacks):
    """Analyze a stored session again, as the admin's action or a new price does."""

    def reanalyze(session: Session) -> None:
        with django_capture_on_commit_callbacks(execute=True):
            tasks.analyze_session(session.pk)

    return reanalyze


@pytest.fixture
def after_commit(django_capture_on_commit_callbacks):
    """Run a callable and then what it left for after the commit."""

    def run(func, *args, **kwargs):
        with django_capture_on_commit_callbacks(execute=True):
            return func(*args, **kwargs)

    return run
