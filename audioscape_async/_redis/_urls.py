"""The Redis URL: checked at construction, and shown without its password."""

from __future__ import annotations

import urllib.parse

from audioscape_async._exceptions import InvalidParameterError

__all__ = ["check_url", "safe_url"]


def safe_url(url: str) -> str:
    """`url` without its password (and without a user name that may be one)."""
    try:
        parts = urllib.parse.urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        netloc = host + (f":{parts.port}" if parts.port is not None else "")
    except ValueError:
        return "<an unreadable Redis URL>"
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def check_url(url: object) -> None:
    """Raise `InvalidParameterError` unless `url` is a redis://, rediss:// or unix:// URL."""
    rule = "must be a redis://, rediss:// or unix:// URL"
    if not isinstance(url, str):
        raise InvalidParameterError("backend.url", f"{rule}, got {type(url).__name__}")
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
    except ValueError:
        raise InvalidParameterError("backend.url", f"{rule}; {safe_url(url)!r} is not") from None
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise InvalidParameterError("backend.url", f"{rule}, not a {parts.scheme or 'bare'} URL")
