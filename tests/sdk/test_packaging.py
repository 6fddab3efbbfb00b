"""The SDK installs alone: its wheel, built from the checkout, imports in a fresh venv that has
nothing else, and brings none of the server's apps.

Marked ``packaging``: it builds a wheel and a venv (about 20 s, offline), so it runs in CI but
can be left out locally with ``-m "not packaging"``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

import perfmon
from tests.sdk.helpers import ROOT

pytestmark = pytest.mark.packaging

_SKIP = shutil.ignore_patterns(".venv", ".git", "__pycache__", "*.pyc", ".pytest_cache",
                               ".ruff_cache", "build", "*.egg-info", "node_modules", "var")

GENERATOR = """
import importlib.util, json, sys
import perfmon
from perfmon import monitor_performance

@monitor_performance("scene_generation")
def scene():
    perfmon.get_performance_monitor().record_cache_hit()

monitor = perfmon.get_performance_monitor()
with monitor.session("ep001_fresh_venv") as metrics:
    scene()
    scene()
print(json.dumps({
    "version": perfmon.__version__,
    "file": perfmon.__file__,
    "operations": len(metrics.operations),
    "hit_rate": metrics.cache_hit_rate,
    "server_apps": [name for name in ("ingest", "metrics", "perfmon_site", "django")
                    if importlib.util.find_spec(name) is not None],
    "prefix": sys.prefix,
}))
"""


OPENAI_GENERATOR = """
import json
import openai
import perfmon
from perfmon.demo.fake_provider import Completion, FakeProvider

perfmon.instrument_openai()
monitor = perfmon.get_performance_monitor()
with FakeProvider() as fake:
    fake.completion = Completion(prompt_tokens=2000, cached_tokens=1500, completion_tokens=500)
    client = openai.OpenAI(base_url=fake.openai_base_url, api_key="sk-test")
    with monitor.session("ep001_fresh_openai", episode="ep001"):
        with monitor.operation("outline"):
            client.chat.completions.create(
                model="gpt-5-mini", messages=[{"role": "user", "content": "Outline"}])
print(json.dumps({"flushed": perfmon.flush(10), "stats": perfmon.stats()}))
"""


def _run(args: list[str], cwd: Path, timeout: float,
         env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PERFMON_")
           } | (env or {})
    result = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"{args}\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    # Built from a copy, so the test leaves nothing behind in the checkout; the copy holds the
    # server's apps too, which discovery must leave out.
    source = tmp_path_factory.mktemp("checkout") / "perfmon-checkout"
    shutil.copytree(ROOT, source, ignore=_SKIP)
    out = source.parent / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation",
          "--no-index", "-q", "-w", str(out), str(source)], cwd=source.parent, timeout=120)
    (built,) = out.glob("perfmon-*.whl")
    return built


def test_the_wheel_holds_the_sdk_only_and_requires_nothing(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = archive.namelist()
        metadata = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = archive.read(metadata).decode()
    packages = {name.split("/")[0] for name in names if not name.startswith("perfmon-")}
    assert packages == {"perfmon"}
    assert {"perfmon/__init__.py", "perfmon/py.typed", "perfmon/demo/__init__.py"} <= set(names)
    assert f"Version: {perfmon.__version__}" in meta.splitlines()
    assert not [line for line in meta.splitlines() if line.startswith("Requires-Dist:")]


def _fresh_venv(wheel: Path, tmp_path: Path) -> tuple[Path, Path]:
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, timeout=120)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
         cwd=tmp_path, timeout=120)
    return venv, python


def _pinned(package: str) -> str:
    """The requirement line the project pins for ``package`` (e.g. "openai==3.57.0")."""
    lines = (ROOT / "requirements.txt").read_text(encoding="utf-8").splitlines()
    return next(line.strip() for line in lines if line.startswith(f"{package}=="))


def test_a_fresh_venv_installs_the_wheel_and_runs_a_generator(wheel, tmp_path):
    venv, python = _fresh_venv(wheel, tmp_path)

    result = _run([str(python), "-I", "-c", GENERATOR], cwd=tmp_path, timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["version"] == perfmon.__version__
    assert Path(report["file"]).is_relative_to(venv)
    assert report["server_apps"] == []
    assert (report["operations"], report["hit_rate"]) == (2, 1.0)


@pytest.mark.django_db(transaction=True)
def test_a_fresh_venv_generator_on_the_real_openai_client_is_priced_by_the_server(
        wheel, tmp_path, live_server, api_key, django_capture_on_commit_callbacks):
    """The issue's "done when": pip install the SDK and the official client into a fresh
    venv, run a generator against the local fake provider, and the session arrives with
    its tokens and a server-side cost that follows a new price row."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from metrics.models import ApiCall, ModelPrice, Session

    def add_price(valid_from, input_usd: str) -> None:
        ModelPrice.objects.create(
            provider="openai", model="gpt-5-mini", valid_from=valid_from, source="test",
            input_per_mtok=Decimal(input_usd), output_per_mtok=Decimal("2.00"),
            cached_input_per_mtok=Decimal("0.025"))

    add_price(timezone.now() - timedelta(days=1), "0.25")
    _, python = _fresh_venv(wheel, tmp_path)
    _run([str(python), "-m", "pip", "install", "-q", _pinned("openai")], cwd=tmp_path,
         timeout=300)
    result = _run([str(python), "-I", "-c", OPENAI_GENERATOR], cwd=tmp_path, timeout=120,
                  env={"PERFMON_URL": live_server.url, "PERFMON_API_KEY": api_key[1],
                       "PERFMON_SPOOL_DIR": str(tmp_path / "spool")})
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["flushed"] and report["stats"]["sent"] == 1, report

    call = ApiCall.objects.get(session__external_id="ep001_fresh_openai")
    assert (call.provider, call.model, call.prompt_tokens, call.cached_tokens,
            call.completion_tokens) == ("openai", "gpt-5-mini", 2000, 1500, 500)
    # By hand, USD per million tokens: 500 uncached x 0.25 + 1500 cached x 0.025
    # + 500 output x 2.00 = 1162.5.
    assert Session.objects.get(external_id="ep001_fresh_openai").cost_usd == Decimal(
        "0.0011625")

    with django_capture_on_commit_callbacks(execute=True):
        add_price(timezone.now() - timedelta(hours=1), "0.50")  # 500 x 0.50 more: 1287.5

    assert Session.objects.get(external_id="ep001_fresh_openai").cost_usd == Decimal(
        "0.0012875")
