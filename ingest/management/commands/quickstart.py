"""From a fresh clone to a live dashboard with demo data, in one command.

Migrates the database, creates a demo login (with a generated password) and an API key,
starts the server, runs the simulated generator (`python -m perfmon.demo`) against it over
HTTP through the SDK's exporter, and leaves the server running. Running it again merges the
demo sessions again (same session ids): nothing is duplicated.

Alerts: one webhook channel points at a small receiver this command runs on loopback, with
a rule for regressions and failed runs, so the demo's regression episode and its failed run
each print one signed message. A second run alerts on nothing new, so it prints none.
"""

import os
import secrets
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from pathlib import Path

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.core.management.base import BaseCommand, CommandError, CommandParser

from ingest import alert_receiver
from ingest.models import ApiKey
from metrics.alerts.models import AlertChannel, AlertRule, EventKind
from metrics.models import DEFAULT_PROJECT_SLUG, Project

DEMO_USER = "demo"
DEMO_KEY_NAME = "demo simulator"
SERVER_START_TIMEOUT_S = 60
DEMO_CHANNEL = "demo receiver"
DEMO_RULE = "demo: regressions and failed runs"
OUTPUT_WIDTH = 100  # alert messages are wrapped to this many characters per line


class Command(BaseCommand):
    help = ("Set up perfmon with demo data (migrate, a demo login, an API key, a simulated "
            "generator's sessions) and serve it at http://127.0.0.1:8000.")

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--host", default="127.0.0.1",
                            help="address the server listens on (default: %(default)s; "
                            "0.0.0.0 to reach it from other machines)")
        parser.add_argument("--port", type=int, default=8000,
                            help="port the server listens on (default: %(default)s)")
        parser.add_argument("--no-serve", action="store_true",
                            help="stop the server once the demo data is in (tests, CI)")
        parser.add_argument("--episodes", type=int, default=12,
                            help="demo episodes to generate (default: %(default)s; at least 4)")
        parser.add_argument("--seed", type=int, default=7,
                            help="random seed of the simulator; the same seed gives the same "
                            "runs (default: %(default)s)")
        parser.add_argument("--speed", type=float, default=20.0,
                            help="simulated seconds per real second (default: %(default)s)")
        parser.add_argument("--report", type=Path, default=None,
                            help="write the simulator's JSON report (every session's totals) "
                            "to this file")

    def handle(self, *args, host: str, port: int, no_serve: bool, episodes: int, seed: int,
               speed: float, report: Path | None, **options) -> None:
        base_url = f"http://{_client_host(host)}:{port}"
        call_command("migrate", interactive=False, verbosity=0)
        self.stdout.write("Database migrated.")
        password = self._demo_login()
        raw_key = self._demo_api_key()
        receiver = self._start_alert_receiver()

        server = self._start_server(host, port, base_url, serving=not no_serve)
        try:
            self._run_simulator(base_url, raw_key, episodes=episodes, seed=seed, speed=speed,
                                report=report)
            self._print_login(base_url, password, raw_key, serving=not no_serve)
            if no_serve:
                return
            self.stdout.write(f"Serving at {base_url}/; press Ctrl-C to stop.")
            server.wait()
        except KeyboardInterrupt:
            pass
        finally:
            if server.poll() is None:
                server.terminate()
                server.wait(timeout=30)
            receiver.shutdown()
            receiver.server_close()

    def _demo_login(self) -> str:
        """Create the demo superuser, or give it a fresh password: never a fixed one."""
        password = secrets.token_urlsafe(12)
        user, _ = get_user_model().objects.get_or_create(username=DEMO_USER)
        user.is_staff = user.is_superuser = user.is_active = True
        user.set_password(password)
        user.save()
        return password

    def _demo_api_key(self) -> str:
        project, _ = Project.objects.get_or_create(
            slug=DEFAULT_PROJECT_SLUG, defaults={"name": "Default"}
        )
        for old in ApiKey.objects.active().filter(project=project, name=DEMO_KEY_NAME):
            old.revoke()  # its secret was shown once and is gone; a new one replaces it
        _, raw_key = ApiKey.generate(project=project, name=DEMO_KEY_NAME)
        return raw_key

    def _start_alert_receiver(self):
        """The demo's webhook channel and rule, pointed at a receiver started here."""
        project = Project.objects.get(slug=DEFAULT_PROJECT_SLUG)
        channel = AlertChannel.objects.filter(project=project, name=DEMO_CHANNEL).first()
        if channel is None:
            channel = AlertChannel(project=project, name=DEMO_CHANNEL,
                                   kind=AlertChannel.Kind.WEBHOOK)
            channel.set_new_secret()
        receiver = alert_receiver.start(channel.secret, self._print_alert)
        channel.url = f"http://127.0.0.1:{receiver.server_port}/alerts"
        channel.save()
        rule, _ = AlertRule.objects.update_or_create(
            project=project, name=DEMO_RULE,
            defaults={"events": [EventKind.REGRESSION, EventKind.SESSION_FAILED],
                      "cooldown_minutes": 0},  # one message per event in the demo
        )
        rule.channels.set([channel])
        self.stdout.write(f"Alerts: regressions and failed runs go to {channel.url} "
                          "(a receiver run by quickstart).")
        return receiver

    def _print_alert(self, valid: bool, payload: dict) -> None:
        verdict = "signature valid" if valid else "SIGNATURE INVALID"
        first_line = "".join(str(payload.get("text", "")).splitlines()[:1])
        self.stdout.write(textwrap.fill(f"Alert received ({verdict}): {first_line}",
                                        width=OUTPUT_WIDTH, subsequent_indent="    "))
        self.stdout.flush()

    def _start_server(self, host: str, port: int, base_url: str, *,
                      serving: bool) -> subprocess.Popen:
        if _answers(base_url):
            raise CommandError(f"Something already listens on {base_url}; stop it or use "
                               "--port.")
        server = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", _listen_address(host, port), "--noreload"],
            # Alert messages link to the pages of this server.
            cwd=settings.BASE_DIR, env={"PERFMON_BASE_URL": base_url, **os.environ},
        )
        deadline = time.monotonic() + SERVER_START_TIMEOUT_S
        while time.monotonic() < deadline:
            if server.poll() is not None:
                raise CommandError("The server exited during start-up (see above).")
            if _answers(base_url):
                self.stdout.write(f"Server running at {base_url}" if serving else
                                  f"Temporary server at {base_url} (stops once the demo "
                                  "data is in).")
                return server
            time.sleep(0.3)
        server.terminate()
        raise CommandError(f"The server did not answer within {SERVER_START_TIMEOUT_S}s.")

    def _run_simulator(self, base_url: str, raw_key: str, *, episodes: int, seed: int,
                       speed: float, report: Path | None) -> None:
        self.stdout.write("Running the simulated generator (python -m perfmon.demo)...")
        self.stdout.flush()
        env = {**os.environ, "PERFMON_SPOOL_DIR": str(Path(settings.BASE_DIR) / "var" /
                                                      "demo-spool")}
        result = subprocess.run(
            [sys.executable, "-m", "perfmon.demo", "--url", base_url, "--api-key", raw_key,
             "--episodes", str(episodes), "--seed", str(seed), "--speed", str(speed)],
            cwd=settings.BASE_DIR, env=env, capture_output=True, text=True,
        )
        lines = result.stdout.rstrip().splitlines()
        # The last line is the machine-readable report: to a file if asked, never on screen.
        if lines and lines[-1].startswith("{"):
            if report is not None:
                report.write_text(lines[-1] + "\n", encoding="utf-8")
            lines = lines[:-1]
        self.stdout.write("\n".join(lines))
        if result.returncode != 0:
            raise CommandError(f"The simulator failed:\n{result.stderr[-3000:]}")

    def _print_login(self, base_url: str, password: str, raw_key: str, *,
                     serving: bool) -> None:
        where = (f"perfmon is ready at {base_url}/" if serving else
                 "The demo data is in; the server has stopped. Serve it with:\n"
                 "  .venv/bin/python manage.py runserver")
        self.stdout.write(self.style.SUCCESS(
            f"\n{where}\n"
            f"  user:     {DEMO_USER}\n"
            f"  password: {password}\n"
            f"  admin:    {base_url}/admin/   API docs: {base_url}/api/v1/docs\n"
            f"\nThe API key \"{DEMO_KEY_NAME}\" (shown only now; a new run replaces it). "
            "To send your own generator's sessions:\n"
            f"  export PERFMON_URL={base_url}\n"
            f"  export PERFMON_API_KEY={raw_key}\n"
        ))


def _listen_address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _client_host(host: str) -> str:
    """Where this machine reaches a server listening on host (0.0.0.0 is not an address)."""
    return {"0.0.0.0": "127.0.0.1", "::": "[::1]", "": "127.0.0.1"}.get(host, host)  # noqa: S104


def _answers(base_url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base_url}/accounts/login/", timeout=2):
            return True
    except urllib.error.HTTPError:
        return True  # it answered, even if not with 200
    except OSError:
        return False
