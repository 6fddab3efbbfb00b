import os

from django.core.wsgi import get_wsgi_application

from perfmon_site.serving_gc import tune_for_serving

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "perfmon_site.settings")

application = get_wsgi_application()

tune_for_serving()
