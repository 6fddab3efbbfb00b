"""Content-Security-Policy for the pages perfmon serves (Django 5.2 has none built in).

Scripts come only from this server (the dashboard's own file and the Plotly bundle it
serves locally; no inline scripts or handlers). Styles allow inline because Plotly sets
style attributes and <style> elements as it draws. The API's JSON answers are not pages
and its interactive docs load their own assets, so /api/ is left alone.
"""

from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse

HEADER = "Content-Security-Policy"
API_PREFIX = "/api/"


def policy_header(directives: dict[str, str]) -> str:
    return "; ".join(f"{name} {value}" for name, value in directives.items())


class ContentSecurityPolicyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response
        self.header = policy_header(settings.CONTENT_SECURITY_POLICY)

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if not request.path.startswith(API_PREFIX) and HEADER not in response:
            response[HEADER] = self.header
        return response
