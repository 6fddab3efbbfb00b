"""Sending one message over HTTP or e-mail, and saying whether to try again.

HTTP goes to the configured URL only: redirects are refused (a 3xx is reported, never
followed), proxies from the environment are ignored, and only http(s) URLs are opened.
Network errors and 5xx may succeed later; a 4xx or a redirect would fail the same way.
"""

import http.client
import json
import smtplib
import urllib.error
import urllib.request
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings
from django.core.mail import send_mail

from metrics.alerts import signing
from metrics.alerts.message import Message, slack_text
from metrics.alerts.models import AlertChannel

ERROR_BODY_CHARS = 300
USER_AGENT = "perfmon-alerts/1"


@dataclass(frozen=True)
class Outcome:
    sent: bool
    retryable: bool = False
    status: int | None = None
    error: str = ""


class _RefuseRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None  # urllib then raises HTTPError with the 3xx status


_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}), _RefuseRedirects())


def send(channel: AlertChannel, message: Message, *, delivery_pk: int) -> Outcome:
    if channel.kind == AlertChannel.Kind.EMAIL:
        return send_email(channel, message)
    if channel.kind == AlertChannel.Kind.SLACK:
        body = json.dumps({"text": slack_text(message.text)}).encode()
    else:
        body = json.dumps(message.payload, separators=(",", ":")).encode()
    headers = {**signing.signed_headers(channel.secret, body),
               signing.DELIVERY_HEADER: str(delivery_pk)}
    return post(channel.url, body, headers, timeout_s=settings.ALERT_HTTP_TIMEOUT_S)


def post(url: str, body: bytes, headers: dict[str, str], *, timeout_s: float) -> Outcome:
    if urlsplit(url).scheme not in ("http", "https"):
        return Outcome(False, error="only http and https URLs are sent to")
    request = urllib.request.Request(url, data=body, method="POST", headers={
        "Content-Type": "application/json", "User-Agent": USER_AGENT, **headers})
    try:
        with _OPENER.open(request, timeout=timeout_s) as response:
            return Outcome(True, status=response.status)
    except urllib.error.HTTPError as error:
        return _refused(error)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as error:
        reason = getattr(error, "reason", error)
        return Outcome(False, retryable=True, error=f"network error: {reason}")


def _refused(error: urllib.error.HTTPError) -> Outcome:
    status = error.code
    if 300 <= status < 400:
        return Outcome(False, status=status, error=f"HTTP {status}: redirect to "
                       f"{error.headers.get('Location', '?')!r} not followed")
    try:
        answer = error.read(ERROR_BODY_CHARS).decode("utf-8", "replace")
    except OSError:
        answer = ""
    return Outcome(False, retryable=status >= 500, status=status,
                   error=f"HTTP {status} {error.reason}: {answer}".strip())


def send_email(channel: AlertChannel, message: Message) -> Outcome:
    try:
        send_mail(message.subject, message.text, None, channel.recipients())
    except smtplib.SMTPRecipientsRefused as error:
        return Outcome(False, error=f"recipients refused: {sorted(error.recipients)}")
    except (smtplib.SMTPException, OSError) as error:
        return Outcome(False, retryable=True, error=f"mail error: {error}")
    return Outcome(True)
