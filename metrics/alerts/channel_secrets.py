"""Channel secrets: made once, shown once, stored encrypted so the server can still sign.

A signing secret cannot be hashed like an API key: the server needs the secret itself to
compute each delivery's HMAC. It is stored encrypted (Fernet: AES-128-CBC with an
HMAC-SHA256 tag) under a key derived from ALERT_SECRETS_KEY, which defaults to one derived
from SECRET_KEY. A copy of the database alone does not reveal the secrets; changing the
key makes the stored secrets unreadable, and each channel then needs a new one.
"""

import base64
import hashlib
import secrets

from cryptography.fernet import Fernet, InvalidToken
from django.conf import settings

SECRET_PREFIX = "whsec_"


class UnreadableSecret(Exception):
    """The stored secret was encrypted under another key (the key changed)."""


def _fernet() -> Fernet:
    material = f"perfmon alert channel secrets:{settings.ALERT_SECRETS_KEY}".encode()
    return Fernet(base64.urlsafe_b64encode(hashlib.sha256(material).digest()))


def new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def encrypt(secret: str) -> str:
    return _fernet().encrypt(secret.encode()).decode()


def decrypt(token: str) -> str:
    try:
        return _fernet().decrypt(token.encode()).decode()
    except InvalidToken:
        raise UnreadableSecret(
            "the channel's secret cannot be decrypted (ALERT_SECRETS_KEY or SECRET_KEY "
            "changed); rotate the channel's secret"
        ) from None
