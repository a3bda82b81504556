"""Whose is it: the one fingerprint of `(base_url, API key)` that every shared thing carries.

A cached page, a search in flight, the rate gate, a 429's pause and every
key the SDK writes to Redis belong to one API key at one base URL. They are
told apart by this fingerprint, never by the key itself:

    HMAC-SHA256(secret, base_url + NUL + api_key), as 32 hex digits

The secret defaults to `DEFAULT_KEY_SECRET`, a fixed and documented constant,
so every process of a fleet computes the same fingerprint for the same key and
their entries meet in Redis. A fleet that wants its Redis keys not to be
checkable against a guessed API key sets its own secret, the same in every
process: ``RedisBackend(url, key_secret=...)``.
"""

from __future__ import annotations

import hashlib
import hmac

from ._exceptions import InvalidParameterError

__all__ = ["DEFAULT_KEY_SECRET", "check_secret", "fingerprint"]

#: The secret of the fingerprint when none is set: public, fixed, the same everywhere.
DEFAULT_KEY_SECRET = b"audioscape-async/fingerprint/v1"


def fingerprint(base_url: str, api_key: str, secret: bytes = DEFAULT_KEY_SECRET) -> str:
    """The fingerprint of one API key at one base URL (32 hex digits)."""
    message = f"{base_url}\0{api_key}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()[:32]


def check_secret(name: str, value: object) -> bytes:
    """`value` as the bytes of a fingerprint secret, or `InvalidParameterError` naming `name`."""
    if isinstance(value, str):
        value = value.encode()
    if not isinstance(value, bytes) or not value:
        raise InvalidParameterError(name, "must be a non-empty str or bytes")
    return value
