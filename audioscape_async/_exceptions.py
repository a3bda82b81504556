"""Every exception a client call can raise.

Nothing else escapes a call of `AsyncClient` or `Client`: no `KeyError`, no
JSON or cattrs error, no raw httpx exception. The tree::

    AudioScapeError
    ├── InvalidParameterError        (also a ValueError; raised before any request)
    ├── CrawlFileError               (a crawl's file: unusable path, locked, damaged, disk full)
    ├── APIConnectionError           (no answer: DNS, refused, reset, closed, TLS)
    │   └── APITimeoutError          (no answer in time)
    ├── APIResponseValidationError   (a 2xx answer that is not JSON or not the documented shape)
    └── APIStatusError               (an error status, or a redirect: never followed)
        ├── BadRequestError          400
        ├── AuthenticationError      401
        ├── PermissionDeniedError    403
        ├── NotFoundError            404
        ├── RateLimitError           429 (`retry_after`)
        └── InternalServerError      5xx

Retried by default: `RateLimitError`, `InternalServerError` (500, 502, 503,
504), `APIConnectionError` and `APITimeoutError`. Never retried: other 4xx and
`APIResponseValidationError`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import httpx

__all__ = [
    "APIConnectionError",
    "APIResponseValidationError",
    "APIStatusError",
    "APITimeoutError",
    "AudioScapeError",
    "AuthenticationError",
    "BadRequestError",
    "CrawlFileError",
    "InternalServerError",
    "InvalidParameterError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
]


class AudioScapeError(Exception):
    """The root of every error this SDK raises; catch it to catch them all."""

    message: str

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


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
    """No usable HTTP answer: the connection failed or broke."""

    request: httpx.Request | None

    def __init__(self, message: str, *, request: httpx.Request | None = None) -> None:
        super().__init__(message)
        self.request = request


class APITimeoutError(APIConnectionError):
    """The server did not answer within the configured timeout."""


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


class APIStatusError(AudioScapeError):
    """The server answered with a 4xx or 5xx status, or a 3xx redirect (never followed)."""

    status_code: int
    body: object
    response: httpx.Response | None
    request_id: str | None

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: object = None,
        response: httpx.Response | None = None,
        request_id: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status_code = status_code
        self.body = body
        self.response = response
        self.request_id = request_id

    def __str__(self) -> str:
        suffix = f" (request id {self.request_id})" if self.request_id else ""
        return f"{self.status_code}: {self.message}{suffix}"

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

    retry_after: float | None

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after

    def __str__(self) -> str:
        text = super().__str__()
        if self.retry_after is not None:
            text += f"; retry after {self.retry_after:g} s"
        return text


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
