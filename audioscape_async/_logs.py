"""The SDK's logger, and the ``AUDIOSCAPE_LOG`` switch that turns on a handler for it.

A library does not print on its own: by default the ``audioscape_async``
logger has only a `NullHandler`, and the app decides where its lines go.
``AUDIOSCAPE_LOG=info`` (retries, drift, circuit changes) or ``=debug`` (also
one line per HTTP attempt) adds a stderr handler, as ``OPENAI_LOG`` does, for
when you want to see what the client does without configuring logging.
No line carries the API key: the SDK logs the path, never the headers.

Nor does a line carry a control character a server sent: `printable` escapes
them, and every `AudioScapeError` message (the server's error text, a request
id) goes through it, so an error body cannot forge a second log line or send a
terminal escape, whoever prints the error.
"""

from __future__ import annotations

import logging
import os
import sys

from ._constants import LOG_ENV

logger = logging.getLogger("audioscape_async")
logger.addHandler(logging.NullHandler())

__all__ = ["configure_from_env", "logger", "printable"]


def printable(text: str) -> str:
    """`text` with every control or format character escaped (``\\n``, ``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


_LEVELS = {"debug": logging.DEBUG, "info": logging.INFO}
_installed: logging.Handler | None = None


def configure_from_env() -> None:
    """Add (once) the stderr handler that ``AUDIOSCAPE_LOG`` asks for; no variable, no handler."""
    global _installed
    if _installed is not None:
        return
    wanted = os.environ.get(LOG_ENV, "").strip().lower()
    level = _LEVELS.get(wanted)
    if level is None:
        if wanted:
            # No handler is there to log this with: say it on stderr, once.
            print(f"audioscape_async: {LOG_ENV}={wanted[:20]!r} is not one of: debug, info; "
                  "ignored", file=sys.stderr)  # fmt: skip
        _installed = logging.NullHandler()
        return
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    handler.setLevel(level)
    logger.addHandler(handler)
    if logger.level == logging.NOTSET or logger.level > level:
        logger.setLevel(level)
    _installed = handler
