"""python manage.py rebuild_session_indexes"""

from django.core.management.base import BaseCommand
from django.db import connection

from metrics import session_indexes


class Command(BaseCommand):
    help = (
        "Rebuild the session table's indexes, which session writes leave half empty, "
        "without locking ingest out (PostgreSQL: REINDEX TABLE CONCURRENTLY; SQLite: "
        "nothing to do). The periodic task does the same every SESSION_REINDEX_INTERVAL_S."
    )

    def handle(self, *args, **options) -> None:
        result = session_indexes.rebuild_session_indexes(progress=self.stdout.write)
        if not result.ran and connection.vendor != "postgresql":
            self.stdout.write(f"Nothing to rebuild on {connection.vendor}: only "
                              "PostgreSQL's session indexes need it.")
