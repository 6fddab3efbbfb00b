"""Answers for failures that are not the client's fault and may pass."""

import logging

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2


def register(api: NinjaAPI) -> None:
    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    def database_unavailable(request: HttpRequest, exc: Exception) -> HttpResponse:
        # The database is restarting or unreachable: nothing was committed, so the client
        # can send the same payload again (the SDK does, after Retry-After).
        logger.warning("database unavailable during %s %s: %s", request.method,
                       request.path, exc)
        response = api.create_response(
            request, {"detail": "the database is unavailable; retry shortly"}, status=503
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
