import os

from django.conf import settings
from django.core.asgi import get_asgi_application

from perfmon_site.asgi_limits import BodyCap
from perfmon_site.serving_gc import tune_for_serving

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")

application = BodyCap(get_asgi_application(), limit=settings.INGEST_MAX_BODY_BYTES)

tune_for_serving()
