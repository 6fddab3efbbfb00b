"""A small webhook receiver on loopback, run by the quickstart so a newcomer sees alerts.

It checks each message's signature as any receiver should (metrics.alerts.signing), keeps
what arrived and prints one line per message.
"""

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from metrics.alerts import signing

MAX_BODY_BYTES = 1024 * 1024


def start(secret: str, on_message: Callable[[bool, dict], None]) -> ThreadingHTTPServer:
    """Listen on 127.0.0.1 on a free port, in a daemon thread; returns the server."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server's name)
            length = min(int(self.headers.get("Content-Length") or 0), MAX_BODY_BYTES)
            body = self.rfile.read(length)
            valid = signing.verify(secret, self.headers, body)
            try:
                payload = json.loads(body)
            except ValueError:
                payload = {}
            on_message(valid, payload)
            self.send_response(200 if valid else 401)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format, *args) -> None:  # noqa: A002
            pass  # the quickstart prints its own line per message

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server
