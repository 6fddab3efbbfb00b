"""POST /api/otlp/v1/traces: the OTLP/HTTP traces endpoint.

A plain Django view rather than a second NinjaAPI: the body is binary protobuf as often
as JSON, and every answer (errors too) must come back in the request's own encoding,
which ninja's JSON parser and renderer would only get in the way of. Authentication, the
rate limit and the body limits are the very ones /api/v1/ uses (ApiKeyAuth, the same
throttle counting per key, and IngestBodyMiddleware for gzip and size).
"""

import gc
import logging
from collections.abc import Iterator
from contextlib import contextmanager

from django.db import InterfaceError, OperationalError
from django.http import HttpRequest, HttpResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from ingest.auth import ApiKeyAuth
from ingest.errors import RETRY_AFTER_S
from ingest.otlp import answers
from ingest.otlp.decode import Undecodable, decode_json, decode_protobuf
from ingest.otlp.store import store_spans
from ingest.throttle import ApiKeyRateThrottle

logger = logging.getLogger(__name__)

_auth = ApiKeyAuth()
_throttle = ApiKeyRateThrottle()
_DECODERS = {answers.PROTOBUF: decode_protobuf, answers.JSON: decode_json}


@csrf_exempt
@require_POST
def traces(request: HttpRequest) -> HttpResponse:
    encoding = request.content_type if request.content_type in _DECODERS else answers.JSON
    try:
        return _export(request, encoding)
    except (OperationalError, InterfaceError) as exc:
        # Nothing of this request was committed; the exporter retries after Retry-After.
        logger.warning("database unavailable during OTLP export: %s", exc)
        return answers.failure(encoding, 503, "the database is unavailable; retry shortly",
                               retry_after_s=RETRY_AFTER_S)


def _export(request: HttpRequest, encoding: str) -> HttpResponse:
    key = _auth(request)
    if key is None:
        response = answers.failure(encoding, 401, "missing, unknown or revoked API key")
        response["WWW-Authenticate"] = "Bearer"
        return response
    request.auth = key
    if not _throttle.allow_request(request):
        return answers.failure(encoding, 429, "over this key's rate limit",
                               retry_after_s=_throttle.wait())
    if request.content_type not in _DECODERS:
        return answers.failure(
            encoding, 415, "send application/x-protobuf or application/json")
    with _collector_paused():
        try:
            decoded = _DECODERS[encoding](request.body)
        except Undecodable as exc:
            return answers.failure(encoding, 400, str(exc))
        outcome = store_spans(key.project, decoded)
    return answers.exported(encoding, rejected=outcome.rejected, message=outcome.message())


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Hold off the cyclic garbage collector for one export.

    An export allocates a dozen objects per span, none in reference cycles (reference
    counting frees them all); with the collector on, those allocations set off full
    collections over the worker's whole heap in the middle of the request, a quarter of
    its time at thousands of spans. The body limit bounds what is allocated meanwhile.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
