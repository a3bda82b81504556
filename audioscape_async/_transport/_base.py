"""What every wire shares: the request it is given, the answer it hands back, its protocol.

A wire (`_httpx`, `_aiohttp`) implements `Wire`: `exchange` sends one
`Outgoing` and returns its `Answer` with the body read whole (within the
size limit), or raises an SDK error. Its own library's network errors become
`APIConnectionError` or `APITimeoutError` in one function of its own module,
through `connection_error` and `timeout_error` here, so both wires word them
alike. No wire sets or edits any private state of httpx, httpcore or aiohttp.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

import httpx

from audioscape_async._exceptions import APIConnectionError, APITimeoutError

from ._body import Body

if TYPE_CHECKING:
    from ._proxy import Proxy

__all__ = [
    "Answer",
    "Last",
    "Outgoing",
    "Wire",
    "connection_error",
    "timeout_error",
]


class Outgoing:
    """One request to send: its parts, and the `httpx.Request` they make, built when needed.

    No wire needs an `httpx.Request` to send (building one is a noticeable part
    of the SDK's own CPU per search, row 1 of benchmarks/results.md); an error
    that carries the request builds it.
    `proxy` is the one the client's config chose for this URL (None: direct).
    """

    __slots__ = ("_request", "body", "extensions", "headers", "proxy", "url")

    def __init__(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        body: bytes,
        extensions: dict[str, Any],
        proxy: Proxy | None = None,
    ) -> None:
        self.url = url
        self.headers = headers
        self.body = body
        self.extensions = extensions
        self.proxy = proxy
        self._request: httpx.Request | None = None

    def request(self) -> httpx.Request:
        """The `httpx.Request` of this request (one object however often asked)."""
        request = self._request
        if request is None:
            request = self._request = httpx.Request(
                "POST", self.url, headers=self.headers, content=self.body,
                extensions=self.extensions,
            )  # fmt: skip
            request.stream = Body(self.body)  # Host and Content-Length are set already
        return request


class Answer:
    """What the transport stage hands on: a complete answer, its body read and decoded.

    `response` is the same answer as an `httpx.Response` (its body read), for
    errors and their handlers; it is built on first use, with httpx's public
    constructor.
    """

    __slots__ = (
        "_outgoing",
        "_response",
        "content",
        "elapsed",
        "headers",
        "http_version",
        "networked",
        "reason",
        "status_code",
    )

    def __init__(
        self,
        status_code: int,
        headers: httpx.Headers,
        content: bytes,
        outgoing: Outgoing,
        *,
        reason: bytes | None = None,
        http_version: bytes = b"HTTP/1.1",
        response: httpx.Response | None = None,
        networked: bool = True,
    ) -> None:
        #: Whether the answer came over a network socket (httpcore's documented
        #: ``network_stream`` response extension says so; aiohttp always uses one),
        #: not from an in-process transport such as httpx's ASGI or mock transports.
        self.networked = networked
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.reason = reason
        self.http_version = http_version
        self.elapsed = 0.0
        self._outgoing = outgoing
        self._response = response

    @property
    def response(self) -> httpx.Response:
        """The answer as an `httpx.Response`, its body read."""
        response = self._response
        if response is None:
            response = self._response = as_response(
                self.status_code, self.headers, self.content, self._outgoing,
                reason=self.reason, http_version=self.http_version,
            )  # fmt: skip
        return response


def as_response(
    status: int,
    headers: httpx.Headers,
    content: bytes,
    outgoing: Outgoing,
    *,
    reason: bytes | None = None,
    http_version: bytes = b"HTTP/1.1",
) -> httpx.Response:
    """An `httpx.Response` of an answer whose body the SDK read and decoded already.

    httpx would decode the body again by its ``Content-Encoding``: the
    response is made with that header left out (the body read as it is), then
    given the answer's own headers.
    """
    extensions: dict[str, Any] = {"http_version": http_version}
    if reason:
        extensions["reason_phrase"] = reason
    plain = httpx.Headers(
        [(name, value) for name, value in headers.raw if name.lower() != b"content-encoding"]
    )
    response = httpx.Response(
        status, headers=plain, content=content, request=outgoing.request(),
        extensions=extensions,
    )  # fmt: skip
    response.headers = headers
    return response


class Wire(Protocol):
    """What carries the requests: one exchange at a time, its answer read whole, or an SDK error.

    `exchange` raises only `AudioScapeError`s (and cancellation); the stage
    bounds it in time and in number.
    """

    #: ``"httpx"`` or ``"aiohttp"``.
    name: str

    async def exchange(self, outgoing: Outgoing, max_bytes: int) -> Answer:
        """Send `outgoing`; return its answer, the body read within `max_bytes`."""
        ...

    async def aclose(self) -> None:
        """Close the wire's connections (if it owns them). Idempotent."""
        ...


def timeout_error(error: BaseException, outgoing: Outgoing) -> APITimeoutError:
    """The SDK error of a wire's own timeout (connect, read, write, pool)."""
    return APITimeoutError(
        f"no answer from {outgoing.url.host} in time ({type(error).__name__})",
        request=outgoing.request(),
    )


def connection_error(error: BaseException, outgoing: Outgoing) -> APIConnectionError:
    """The SDK error of a wire's own network failure; one no retry can help says why."""
    hint = _hopeless_tls(error, outgoing)
    message = f"could not reach {outgoing.url.host}: {_describe(error)}"
    return APIConnectionError(
        f"{message}; {hint}" if hint else message,
        request=outgoing.request(),
        retryable=hint is None,
    )


#: OpenSSL's reasons for a handshake whose answer is not TLS at all: the server speaks
#: plain HTTP (OpenSSL 3.0 says the first, 3.2 on the second, older ones the others).
_NOT_TLS_REASONS = frozenset(
    {"WRONG_VERSION_NUMBER", "RECORD_LAYER_FAILURE", "PACKET_LENGTH_TOO_LONG", "UNKNOWN_PROTOCOL"}
)


def _hopeless_tls(error: BaseException, outgoing: Outgoing) -> str | None:
    """Why the TLS failure somewhere in `error`'s chain can never pass on a retry, or None.

    Every wire and event loop keeps the `ssl` module's own error in the chain
    (httpcore on trio three causes down, aiohttp one), and its class and
    OpenSSL reason are stable where messages are not.
    """
    import ssl

    cause: BaseException | None = error
    for _ in range(10):
        if cause is None:
            return None
        if isinstance(cause, ssl.SSLCertVerificationError):
            return "the server's certificate fails verification, so no retry was made"
        if isinstance(cause, ssl.SSLError) and getattr(cause, "reason", None) in _NOT_TLS_REASONS:
            return (
                f"the server at {outgoing.url.host}:{outgoing.url.port or 443} does not speak "
                "TLS, so no retry was made: if it serves plain HTTP (as the emulator does), "
                "base_url starts with http://"
            )
        cause = cause.__cause__ or cause.__context__
    return None


K = TypeVar("K")
V = TypeVar("V")


class Last(Generic[K, V]):
    """`convert` of the last key it was called with (the same object), kept until another."""

    __slots__ = ("_convert", "_key", "_value")

    def __init__(self, convert: Callable[[K], V]) -> None:
        self._convert = convert
        self._key: object = Last  # no key yet: nothing the caller passes is this class
        self._value: V | None = None

    def __call__(self, key: K) -> V:
        if key is not self._key:
            self._value, self._key = self._convert(key), key
        return self._value  # type: ignore[return-value]


def _describe(error: BaseException) -> str:
    """``Type: message`` of an error; an empty message is taken from the first cause with one.

    httpx on trio says nothing of its own about a refused certificate
    (``ConnectError: ``): the reason is three causes down its chain.
    """
    cause: BaseException | None = error
    for _ in range(10):
        if cause is None:
            break
        text = str(cause)
        if text:
            source = "" if cause is error else f" ({type(cause).__name__})"
            return f"{type(error).__name__}: {text}{source}"
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__
