"""The ASGI entry point closes each request's database connection (perfmon_site/asgi.py)."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_asgi_requests_keep_no_connection_past_the_request():
    env = {**os.environ, "DATABASE_URL": "postgres://nobody@127.0.0.1:1/none",
           "DB_CONN_MAX_AGE": "60", "DJANGO_SETTINGS_MODULE": "perfmon_site.settings"}
    code = (
        "import perfmon_site.asgi; from django.db import connections; "
        "print(connections['default'].settings_dict['CONN_MAX_AGE'])"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=60, check=True)
    assert result.stdout.split()[-1] == "0"
