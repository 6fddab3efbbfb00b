"""Refuse page requests whose URL carries a NUL character, before any view queries with it.

PostgreSQL text cannot hold NUL, so a filter or id containing one would fail inside the
database (a 500) on every dashboard page that reads its query string. No code, id or name
perfmon stores can contain NUL (the ingest schema refuses it), so such a URL can name
nothing: it is answered 400. The API checks its own parameters and names the field in a
422 (or answers 404 for an id), so /api/ is left to it.
"""

from collections.abc import Callable

from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest

API_PREFIX = "/api/"
NUL = "\x00"


def carries_nul(request: HttpRequest) -> bool:
    if NUL in request.path:
        return True
    return any(NUL in key or any(NUL in value for value in values)
               for key, values in request.GET.lists())


class RefuseNulInUrlMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if not request.path.startswith(API_PREFIX) and carries_nul(request):
            return HttpResponseBadRequest(
                "NUL characters cannot appear in a URL here.", content_type="text/plain"
            )
        return self.get_response(request)
