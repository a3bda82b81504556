"""Every exception a client call can raise.

Nothing else escapes a call of `AsyncClient` or `Client`: no `KeyError`, no
JSON or cattrs error, no raw httpx exception. The tree::

    AudioScapeError
    ├── InvalidParameterError        (also a ValueError; raised before any request)
    ├── CrawlFileError               (a crawl's file: unusable path, locked, damaged, disk full)
    ├── APIConnectionError           (no answer: DNS, refused, reset, closed, TLS)
    │   ├── APITimeoutError          (no answer in time)
    │   │   └── DeadlineExceededError    (the call's `deadline` ran out; never retried)
    │   └── CircuitOpenError         (not sent: the circuit breaker is open; `retry_in`)
    ├── APIResponseValidationError   (a 2xx answer that is not JSON or not the documented shape)
    ├── BackendUnavailableError      (the `RedisBackend` cannot be reached; `url` without password)
    ├── PaginationError              (a walk stopped: the server made no progress; `reason`)
    └── APIStatusError               (an error status, or a redirect: never followed)
        ├── BadRequestError          400
        ├── AuthenticationError      401
        ├── PermissionDeniedError    403
        ├── NotFoundError            404
        ├── RateLimitError           429 (`retry_after`)
        └── InternalServerError      5xx

Retried by default: `RateLimitError`, `InternalServerError` (500, 502, 503,
504), `APIConnectionError` and `APITimeoutError`. Never retried: other 4xx,
`APIResponseValidationError`, `DeadlineExceededError`, `CircuitOpenError`, an
`APIConnectionError` that no retry can help (`retryable` is False: TLS against
a plain-HTTP server, a certificate that fails verification) and
`PaginationError` (an empty page before `meta.total` is asked again by the walk
itself, before it ends there).

Every exception pickles (to hand it from a worker process to its parent) as
the same class with the same fields, but without its `request` and
`response`: they carry the headers, and the headers carry the API key.

`error_from_response` turns an error answer into its exception; it is the
one place that reads an error body or a ``Retry-After`` header.

Transient (`is_transient`: they open the circuit breaker and let the cache serve
a stale page): 429, 5xx and every `APIConnectionError`, `CircuitOpenError`
included. Anything else is the request's own fault and is always raised.
"""

from __future__ import annotations

import email.utils
import math
import time
from typing import TYPE_CHECKING, Any

from ._json import JSONError, loads
from ._logs import printable

if TYPE_CHECKING:
    import httpx

#: Fields that hold the HTTP exchange (and so the key): never pickled.
_UNPICKLED = ("request", "response")

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AudioScapeError",
    "AuthenticationError",
    "BackendUnavailableError",
    "BadRequestError",
    "CircuitOpenError",
    "CrawlFileError",
    "DeadlineExceededError",
    "InternalServerError",
    "InvalidParameterError",
    "NotFoundError",
    "PaginationError",
    "PermissionDeniedError",
    "RateLimitError",
]


class AudioScapeError(Exception):
    """The root of every error this SDK raises; catch it to catch them all."""

    message: str

    def __init__(self, message: str) -> None:
        # Server text (an error body, a header) ends up in messages: escaped here, once,
        # so no log line or terminal that shows an error can be forged through it.
        message = printable(message)
        super().__init__(message)
        self.message = message

    def __reduce__(self) -> tuple[Any, ...]:
        state = {
            name: (None if name in _UNPICKLED else value) for name, value in vars(self).items()
        }
        return _restore, (type(self), self.message, state)


def _restore(cls: type[AudioScapeError], message: str, state: dict[str, Any]) -> AudioScapeError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class InvalidParameterError(AudioScapeError, ValueError):
    """A parameter broke a documented rule; raised before any request is sent."""

    parameter: str

    def __init__(self, parameter: str, rule: str) -> None:
        super().__init__(f"invalid {parameter}: {rule}")
        self.parameter = parameter


class CrawlFileError(AudioScapeError):
    """A file crawl cannot use its files: `path` names the file; an `OSError` is the cause."""

    path: str

    def __init__(self, path: object, problem: str) -> None:
        super().__init__(f"{path}: {problem}")
        self.path = str(path)


class APIConnectionError(AudioScapeError):
    """No usable HTTP answer: the connection failed or broke.

    `retryable` is False when no retry can help, so none is made: a TLS handshake
    with a server that speaks plain HTTP, or a certificate that fails verification.
    """

    request: httpx.Request | None
    retryable: bool

    def __init__(
        self, message: str, *, request: httpx.Request | None = None, retryable: bool = True
    ) -> None:
        super().__init__(message)
        self.request = request
        self.retryable = retryable


class APITimeoutError(APIConnectionError):
    """The server did not answer within the configured timeout."""


class DeadlineExceededError(APITimeoutError):
    """The call's `deadline` ran out (or a wait could not fit in what was left); not retried."""


class CircuitOpenError(APIConnectionError):
    """The circuit breaker is open: the request was not sent; `retry_in` says when a probe goes."""

    retry_in: float

    def __init__(
        self, message: str, *, retry_in: float = 0.0, request: httpx.Request | None = None
    ) -> None:
        super().__init__(message, request=request)
        self.retry_in = retry_in


class BackendUnavailableError(AudioScapeError):
    """The shared `RedisBackend` did not answer in time or at all; `url` has no password."""

    url: str | None

    def __init__(self, message: str, *, url: str | None = None) -> None:
        super().__init__(message)
        self.url = url


class APIResponseValidationError(AudioScapeError):
    """A successful answer whose body is not JSON or not the documented shape."""

    response: httpx.Response | None
    body: object
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        response: httpx.Response | None = None,
        body: object = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.response = response
        self.body = body
        self.request_id = request_id


class PaginationError(AudioScapeError):
    """A walk stopped because paging made no progress; `reason` says which rule stopped it.

    `reason` is ``"offset_ignored"`` (the same page for two offsets),
    ``"stale_pages"`` (pages in a row of only tracks seen before) or
    ``"total_unstable"`` (`meta.total` kept moving); `offset` is where it was seen.
    """

    reason: str
    offset: int

    def __init__(self, message: str, *, reason: str, offset: int) -> None:
        super().__init__(message)
        self.reason = reason
        self.offset = offset


class APIStatusError(AudioScapeError):
    """The server answered with a 4xx or 5xx status, or a 3xx redirect (never followed)."""

    status_code: int
    body: object
    response: httpx.Response | None
    request_id: str | None
    retry_after: float | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: object = None,
        response: httpx.Response | None = None,
        request_id: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.response = response
        self.request_id = request_id
        #: Seconds the server asked to wait (``Retry-After``), on a 429 or a 503.
        self.retry_after = retry_after

    def __str__(self) -> str:
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        text = f"{self.status_code}: {self.message}{suffix}"
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g} s"
        return text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status_code={self.status_code}, message={self.message!r}, "
            f"request_id={self.request_id!r})"
        )


class BadRequestError(APIStatusError):
    """400: the server rejected the request's parameters."""


class AuthenticationError(APIStatusError):
    """401: the API key is missing or not valid."""


class PermissionDeniedError(APIStatusError):
    """403: the API key may not use this endpoint."""


class NotFoundError(APIStatusError):
    """404: the URL names nothing; check `base_url`."""


class RateLimitError(APIStatusError):
    """429: too many requests; `retry_after` says how long the server asked to wait."""


class InternalServerError(APIStatusError):
    """5xx: the server failed; retried by default."""


_STATUS_ERRORS: dict[int, type[APIStatusError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    429: RateLimitError,
}


def status_error_class(status_code: int) -> type[APIStatusError]:
    """Return the exception class that stands for an HTTP error status."""
    if status_code >= 500:
        return InternalServerError
    return _STATUS_ERRORS.get(status_code, APIStatusError)


def parse_retry_after(value: str | None, *, now: float | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP-date.

    Anything unreadable, negative or not finite is None: better to fall back on
    our own backoff than to trust garbage.
    """
    if value is None:
        return None
    value = value.strip()
    try:
        seconds = float(value)
    except ValueError:
        try:
            when = email.utils.parsedate_to_datetime(value)
            if when.tzinfo is None:  # an HTTP-date is always GMT
                return None
            seconds = when.timestamp() - (time.time() if now is None else now)
        except (TypeError, ValueError, IndexError, OverflowError):
            return None  # a hostile server's year 99999999999999999999 included
        return max(0.0, seconds)
    if not math.isfinite(seconds) or seconds < 0:
        return None
    return seconds


def retry_after(headers: httpx.Headers) -> float | None:
    """What the answer's headers say about when to come back: ``retry-after-ms`` first."""
    from ._constants import RETRY_AFTER_HEADER, RETRY_AFTER_MS_HEADER

    raw = headers.get(RETRY_AFTER_MS_HEADER)
    if raw is not None:
        try:
            millis = float(raw.strip())
        except ValueError:
            millis = math.nan
        if math.isfinite(millis) and millis >= 0:
            return millis / 1000
    return parse_retry_after(headers.get(RETRY_AFTER_HEADER))


def request_id(headers: httpx.Headers) -> str | None:
    """The server's id for the exchange, from the most specific header that carries one.

    One pass over the raw headers: on every answer, four lookups that miss cost
    five times as much (httpx raises and catches a KeyError for each).
    """
    best: bytes | None = None
    best_rank = len(_REQUEST_ID_RANK)
    for key, value in headers.raw:
        rank = _REQUEST_ID_RANK.get(key.lower())
        if rank is not None and rank < best_rank and value.strip():
            best, best_rank = value, rank
    return printable(best.decode("latin-1").strip()) if best is not None else None


def _request_id_ranks() -> dict[bytes, int]:
    from ._constants import REQUEST_ID_HEADERS

    return {name.encode("ascii"): rank for rank, name in enumerate(REQUEST_ID_HEADERS)}


_REQUEST_ID_RANK = _request_id_ranks()


def _error_message(response: httpx.Response, body: object) -> str:
    """A readable message from any error body: the API's JSON, or a proxy's HTML page."""
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    phrase = response.reason_phrase or "error"
    text = response.content[:2048].decode("utf-8", "replace").strip()
    if not text or body is not None:
        return phrase
    lowered = text.lower()
    start = lowered.find("<title>")
    if start != -1:
        end = lowered.find("</title>", start)
        title = text[start + len("<title>") : end if end != -1 else None].strip()
        if title:
            return f"{phrase}: {title[:200]}"
    if lowered.startswith("<"):
        return phrase
    first_line = text.splitlines()[0]
    return f"{phrase}: {first_line[:200]}"


def _base_url_hint(shown_url: str) -> str:
    """What a "no such endpoint" answer says of a base URL not in the API's form ("" if it is)."""
    from urllib.parse import urlsplit

    from ._constants import API_PATH, DEFAULT_BASE_URL

    path = urlsplit(shown_url).path.rstrip("/")
    if path.endswith(API_PATH) and not path.endswith(API_PATH + API_PATH):
        return ""
    return (
        f"; check base_url {shown_url}: the API's base URL ends in {API_PATH}, "
        f"as {DEFAULT_BASE_URL}"
    )


def error_from_response(response: httpx.Response, *, shown_url: str) -> APIStatusError:
    """The exception of an answer whose status is not 2xx (its body is read already).

    `shown_url` is the base URL as it may be printed (a redirect names it).
    """
    status = response.status_code
    try:
        body: object = loads(response.content) if response.content else None
    except JSONError:
        body = None
    message = _error_message(response, body)
    wait = retry_after(response.headers) if status in (429, 503) else None
    if 300 <= status < 400:
        location = response.headers.get("location", "nowhere")
        message = (
            f"the API at {shown_url} redirected to {location}; redirects are not followed, "
            "since that would send the API key to another address: check base_url"
        )
    elif status in (404, 405):
        message += _base_url_hint(shown_url)
    return status_error_class(status)(
        message,
        status_code=status,
        body=body if body is not None else response.text[:2048],
        response=response,
        request_id=request_id(response.headers),
        retry_after=wait,
    )


def is_transient(error: BaseException) -> bool:
    """Whether `error` says the service is unwell rather than the request wrong.

    429, 5xx and connection errors (timeouts and an open circuit included) are
    transient; 400, 401, validation failures and anything else are not.
    """
    if isinstance(error, APIStatusError):
        return error.status_code == 429 or error.status_code >= 500
    return isinstance(error, APIConnectionError)
