"""No credential is committed: no API key, private key or production secret in the repo."""

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PATTERNS = {
    "perfmon API key": re.compile(r"\bpm_[0-9a-f]{12}_[A-Za-z0-9_-]{30,}"),
    "private key": re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    "hard-coded SECRET_KEY": re.compile(r"^\s*SECRET_KEY\s*=\s*['\"]", re.MULTILINE),
}


def tracked_text_files() -> list[Path]:
    names = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True,
                           check=True).stdout.split()
    return [ROOT / n for n in names if not n.endswith((".png", ".jpg", ".gz", ".ico"))]


def test_no_tracked_file_holds_a_credential():
    found = []
    for path in tracked_text_files():
        if not path.is_file():
            continue
        text = path.read_text(errors="ignore")
        found += [f"{path.relative_to(ROOT)}: {what}"
                  for what, pattern in PATTERNS.items() if pattern.search(text)]
    assert found == []


def test_the_patterns_would_catch_a_real_key(db):
    from ingest.models import ApiKey
    from metrics.models import Project

    project = Project.objects.create(name="p", slug="p")
    _, raw = ApiKey.generate(project=project, name="k")
    assert PATTERNS["perfmon API key"].search(f"key = '{raw}'")
