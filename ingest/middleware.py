"""Size limits and gzip decoding for API request bodies, before anything parses them."""

import zlib
from collections.abc import Callable

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

API_PREFIX = "/api/"


class IngestBodyMiddleware:
    """Answers 413 for bodies over the cap and inflates ``Content-Encoding: gzip`` bodies.

    The cap applies to the inflated size too, and inflation stops one byte past it, so a
    gzip bomb costs at most the cap in memory.
    """

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if request.path.startswith(API_PREFIX):
            refusal = self._prepare_body(request)
            if refusal is not None:
                return refusal
        return self.get_response(request)

    def _prepare_body(self, request: HttpRequest) -> HttpResponse | None:
        limit = settings.INGEST_MAX_BODY_BYTES
        try:
            declared = int(request.META.get("CONTENT_LENGTH") or 0)
        except ValueError:
            return _error(400, "Content-Length is not a number")
        if declared > limit:
            return _too_large(limit)
        encoding = request.META.get("HTTP_CONTENT_ENCODING", "identity").strip().lower()
        if encoding in ("", "identity"):
            return None
        if encoding != "gzip":
            return _error(415, f"Content-Encoding {encoding!r} is not supported; use gzip")
        try:
            inflated = _gunzip(request.body, limit)
        except zlib.error:
            return _error(400, "the body is not valid gzip")
        if inflated is None:
            return _too_large(limit)
        request._body = inflated  # what request.body returns from here on
        del request.META["HTTP_CONTENT_ENCODING"]
        request.META["CONTENT_LENGTH"] = str(len(inflated))
        return None


MAX_GZIP_MEMBERS = 1000


def _gunzip(data: bytes, limit: int) -> bytes | None:
    """Inflate every member of ``data`` (gzip allows several, concatenated), or return
    None if together they would exceed ``limit`` bytes."""
    out = b""
    for _ in range(MAX_GZIP_MEMBERS):
        member = _inflate_member(data, limit - len(out))
        if member is None:
            return None
        inflated, data = member
        out += inflated
        if not data:
            return out
    raise zlib.error(f"more than {MAX_GZIP_MEMBERS} gzip members")


def _inflate_member(data: bytes, room: int) -> tuple[bytes, bytes] | None:
    """One member inflated and what follows it, or None if it exceeds ``room`` bytes."""
    inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
    out = inflater.decompress(data, room + 1)
    if len(out) > room or inflater.unconsumed_tail:
        return None
    out += inflater.flush()
    if len(out) > room:
        return None
    if not inflater.eof:
        raise zlib.error("truncated gzip stream")
    return out, inflater.unused_data


def _too_large(limit: int) -> HttpResponse:
    return _error(413, f"the body is larger than {limit} bytes")


def _error(status: int, detail: str) -> HttpResponse:
    return JsonResponse({"detail": detail}, status=status)
