import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from perfmon_site.asgi_limits import BodyCap
from perfmon_site.serving_gc import tune_for_serving

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")

application = BodyCap(get_asgi_application(), limit=settings.INGEST_MAX_BODY_BYTES)

# Under ASGI Django runs each request's view in a thread of its own, with a database
# connection of its own: a connection kept past the request (DB_CONN_MAX_AGE) is never
# used again and stays open until the garbage collector finds it, so two workers under
# load held up to 96 connections and requests failed with "too many clients". Each
# request closes its connection instead.
for database in settings.DATABASES.values():
    database["CONN_MAX_AGE"] = 0

tune_for_serving()
