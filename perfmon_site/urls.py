from django.contrib import admin
from django.urls import include, path
from ninja import NinjaAPI

from ingest import errors
from ingest.api import router as ingest_router
from ingest.otlp.views import traces as otlp_traces
from ingest.parser import StrictJsonParser

api = NinjaAPI(
    title="perfmon ingest API",
    version="1",
    description="Schema-v1 sessions from the perfmon SDK. Authenticate with `Bearer <key>`.",
    urls_namespace="api",
    parser=StrictJsonParser(),
    docs_url="/docs",
)
api.add_router("/", ingest_router)
errors.register(api)

urlpatterns = [
    path("api/v1/", api.urls),
    path("api/otlp/v1/traces", otlp_traces, name="otlp-traces"),
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("", include("metrics.urls")),
]
