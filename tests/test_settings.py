"""Settings come from the environment, with embedded defaults that run a fresh clone."""

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured

from perfmon_site.env import env_bool, env_int, env_list

ROOT = Path(__file__).resolve().parent.parent


def run_python(*args: str, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items()
            if k not in {"DATABASE_URL", "CELERY_BROKER_URL", "DEBUG", "SECRET_KEY"}}
    return subprocess.run(
        [sys.executable, *args], cwd=ROOT, env={**base, **env},
        capture_output=True, text=True, timeout=120,
    )


def run_manage(*args: str, **env: str) -> subprocess.CompletedProcess:
    return run_python("manage.py", *args, **env)


def settings_value(expression: str, **env: str) -> str:
    code = (
        "import os; os.environ.setdefault('DJANGO_SETTINGS_MODULE', 'perfmon_site.settings'); "
        f"from django.conf import settings; print(repr(({expression})))"
    )
    result = run_python("-c", code, **env)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


def test_check_deploy_is_clean_in_production_mode():
    result = run_manage(
        "check", "--deploy", "--fail-level", "WARNING",
        DEBUG="0", SECRET_KEY=secrets.token_urlsafe(50), ALLOWED_HOSTS="perfmon.example.com",
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_production_mode_refuses_to_start_without_a_secret_key():
    result = run_manage("check", DEBUG="0", ALLOWED_HOSTS="perfmon.example.com")

    assert result.returncode != 0
    assert "SECRET_KEY must be set" in result.stderr


def test_no_database_url_means_sqlite_in_the_project_folder():
    assert settings_value("settings.DATABASES['default']['ENGINE']") == (
        "'django.db.backends.sqlite3'")
    assert settings_value("settings.DATABASES['default']['NAME']") == repr(str(ROOT / "db.sqlite3"))


def test_postgres_database_url_selects_postgresql():
    engine = settings_value(
        "settings.DATABASES['default']['ENGINE'], settings.DATABASES['default']['NAME']",
        DATABASE_URL="postgres://postgres@127.0.0.1:5432/perfmon",
    )
    assert engine == "('django.db.backends.postgresql', 'perfmon')"


def test_no_broker_means_eager_tasks_and_redis_means_a_real_broker():
    assert settings_value("settings.CELERY_TASK_ALWAYS_EAGER") == "True"
    assert settings_value(
        "settings.CELERY_TASK_ALWAYS_EAGER, settings.CELERY_BROKER_URL",
        CELERY_BROKER_URL="redis://127.0.0.1:6379/3",
    ) == "(False, 'redis://127.0.0.1:6379/3')"


def test_a_bad_boolean_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("SOME_FLAG", "maybe")
    with pytest.raises(ImproperlyConfigured, match="SOME_FLAG"):
        env_bool("SOME_FLAG", False)


def test_a_bad_integer_is_a_configuration_error(monkeypatch):
    monkeypatch.setenv("SOME_NUMBER", "ten")
    with pytest.raises(ImproperlyConfigured, match="SOME_NUMBER"):
        env_int("SOME_NUMBER", 1)


def test_env_helpers_fall_back_to_defaults_and_parse_values(monkeypatch):
    monkeypatch.delenv("SOME_FLAG", raising=False)
    assert env_bool("SOME_FLAG", True) is True
    monkeypatch.setenv("SOME_FLAG", "off")
    assert env_bool("SOME_FLAG", True) is False
    monkeypatch.setenv("SOME_HOSTS", " a.example , b.example ,")
    assert env_list("SOME_HOSTS", []) == ["a.example", "b.example"]
