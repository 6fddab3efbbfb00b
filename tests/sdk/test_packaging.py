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


def _run(args: list[str], cwd: Path, timeout: float) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "VIRTUAL_ENV") and not k.startswith("PERFMON_")}
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


def test_a_fresh_venv_installs_the_wheel_and_runs_a_generator(wheel, tmp_path):
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)], cwd=tmp_path, timeout=120)
    python = venv / "bin" / "python"
    _run([str(python), "-m", "pip", "install", "-q", "--no-index", "--no-deps", str(wheel)],
         cwd=tmp_path, timeout=120)

    result = _run([str(python), "-I", "-c", GENERATOR], cwd=tmp_path, timeout=60)
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["version"] == perfmon.__version__
    assert Path(report["file"]).is_relative_to(venv)
    assert report["server_apps"] == []
    assert (report["operations"], report["hit_rate"]) == (2, 1.0)
