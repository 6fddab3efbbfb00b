"""A body cap in front of Django's ASGI handler.

Under ASGI, Django reads a request's whole body (spooling it to disk past 2.5 MiB) before
any middleware runs, so the ingest middleware's 413 would come only after an oversized
upload had been received. This wrapper answers 413 as soon as the declared length, or
the bytes received so far, pass the cap (the same cap the ingest middleware applies).
"""

import json


class BodyTooLarge(Exception):
    pass


class BodyCap:
    def __init__(self, app, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _declared_length(scope) > self.limit:
            await self._too_large(send)
            return
        received = 0

        async def capped_receive():
            nonlocal received
            message = await receive()
            received += len(message.get("body", b""))
            if received > self.limit:
                raise BodyTooLarge
            return message

        try:
            await self.app(scope, capped_receive, send)
        except BodyTooLarge:  # raised while Django reads the body, before any response
            await self._too_large(send)

    async def _too_large(self, send) -> None:
        body = json.dumps({"detail": f"the body is larger than {self.limit} bytes"}).encode()
        await send({"type": "http.response.start", "status": 413, "headers": [
            (b"content-type", b"application/json"), (b"connection", b"close"),
            (b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})


def _declared_length(scope) -> int:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return 0  # Django answers a malformed length itself
    return 0
