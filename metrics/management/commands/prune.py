"""python manage.py prune [--older-than 90d] [--project SLUG] [--dry-run]"""

import re

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser

from metrics import retention
from metrics.models import Project

AGE = re.compile(r"^(\d+)d?$")


def parse_age(text: str) -> int:
    """'90d' or '90' -> 90 days."""
    match = AGE.match(text.strip())
    if match is None:
        raise CommandError(f"--older-than takes days, like 90d, not {text!r}")
    return int(match.group(1))


class Command(BaseCommand):
    help = (
        "Remove raw operations and API calls of sessions older than the retention period "
        "(each project's own, else RETENTION_DAYS). Session figures, cost lines, findings "
        "and rollups stay; baseline and pinned sessions are kept whole."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--older-than", help="age in days, e.g. 90d (default: each "
                            "project's retention period)")
        parser.add_argument("--project", help="only this project (slug)")
        parser.add_argument("--dry-run", action="store_true",
                            help="count what would go, delete nothing")
        parser.add_argument("--batch-size", type=int, default=settings.RETENTION_BATCH_ROWS,
                            help="rows per transaction (default: %(default)s)")

    def handle(self, *args, older_than, project, dry_run, batch_size, **options) -> None:
        days = parse_age(older_than) if older_than is not None else None
        if days == 0:
            raise CommandError("--older-than 0d would prune everything; give a real age")
        if project is not None and not Project.objects.filter(slug=project).exists():
            raise CommandError(f"no project {project!r}")
        if batch_size < 1:
            raise CommandError("--batch-size is at least 1")
        result = retention.prune(
            older_than_days=days, project_slug=project, dry_run=dry_run,
            batch_size=batch_size, progress=self.stdout.write,
        )
        verb = "Would prune" if dry_run else "Pruned"
        self.stdout.write(
            f"{verb} {result.sessions} sessions: {result.operations} operations, "
            f"{result.api_calls} API calls."
        )
