import os

import django
from django.conf import settings
from django.core.handlers.asgi import ASGIHandler

from perfmon_site.asgi_limits import BodyCap
from perfmon_site.serving_gc import tune_for_serving

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")


class OneThreadASGIHandler(ASGIHandler):
    """Django's ASGI handler, with the synchronous part of every request (middleware,
    views, database work) run in the process's one thread for synchronous code.

    Django's own handler gives each request a thread of its own, and so a database
    connection of its own: a connection kept past the request (DB_CONN_MAX_AGE) is never
    used again and stays open until the garbage collector finds it; two workers under load
    held up to 96 connections and requests failed with "too many clients". Here the
    connection is opened once per process and reused, as under the sync worker, and views
    run one at a time per process while the event loop goes on reading other requests.
    """

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            raise ValueError(f"Django can only handle ASGI/HTTP connections, not {scope['type']}.")
        # No ThreadSensitiveContext: thread-sensitive calls go to asgiref's single thread.
        await self.handle(scope, receive, send)


django.setup(set_prefix=False)
application = BodyCap(OneThreadASGIHandler(), limit=settings.INGEST_MAX_BODY_BYTES)

tune_for_serving()
