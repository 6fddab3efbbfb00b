"""Answers for failures: 503 only for what a retry can fix, 422 for what it cannot."""

import logging

from django.db import DataError, InterfaceError, OperationalError, connection
from django.http import HttpRequest, HttpResponse
from ninja import NinjaAPI

logger = logging.getLogger(__name__)

RETRY_AFTER_S = 2

# SQLite reports values it cannot hold as OperationalError; resending them cannot help.
_PERMANENT_SQLITE_ERRORS = ("integer overflow", "too big", "too large", "too many")


class PayloadRefused(Exception):
    """A payload that passed the schema but cannot be stored as sent (a cycle, a sum past
    its column); answered 422 like a schema error, with the field path in ``loc``."""

    def __init__(self, loc: list[str | int], msg: str, kind: str = "value_error") -> None:
        super().__init__(msg)
        self.loc = loc
        self.msg = msg
        self.kind = kind

    def detail(self, prefix: tuple[str, ...] = ()) -> dict:
        return {"loc": [*prefix, *self.loc], "msg": self.msg, "type": self.kind}


def is_retryable(exc: Exception) -> bool:
    if isinstance(exc, DataError):
        return False
    if connection.vendor == "sqlite" and isinstance(exc, OperationalError):
        return not any(text in str(exc).lower() for text in _PERMANENT_SQLITE_ERRORS)
    return isinstance(exc, OperationalError | InterfaceError)


def register(api: NinjaAPI) -> None:
    @api.exception_handler(PayloadRefused)
    def refused(request: HttpRequest, exc: PayloadRefused) -> HttpResponse:
        return api.create_response(
            request, {"detail": [exc.detail(("body", "payload"))]}, status=422
        )

    @api.exception_handler(OperationalError)
    @api.exception_handler(InterfaceError)
    @api.exception_handler(DataError)
    def database_error(request: HttpRequest, exc: Exception) -> HttpResponse:
        if not is_retryable(exc):
            # A value the database cannot hold: the schema should have caught it, so log
            # it, but tell the client the truth (a resend gets the same answer).
            logger.error("value not storable during %s %s: %s", request.method,
                         request.path, exc)
            problem = {"loc": ["body"], "msg": "a value does not fit the database; a resend "
                       "gets the same answer", "type": "storage_error"}
            return api.create_response(request, {"detail": [problem]}, status=422)
        # The database is restarting or unreachable: nothing was committed, so the client
        # can send the same payload again (the SDK does, after Retry-After).
        logger.warning("database unavailable during %s %s: %s", request.method,
                       request.path, exc)
        response = api.create_response(
            request, {"detail": "the database is unavailable; retry shortly"}, status=503
        )
        response["Retry-After"] = str(RETRY_AFTER_S)
        return response
