"""The transport stage: bytes out, status, headers and a bounded body back, or an SDK error.

`TransportStage.send` is the only code that touches the network. It owns the
connection pool (the SDK's own `httpx.AsyncClient`, or yours), queues calls
beyond the pool's size, reclaims what a cancelled request left in httpcore's
pool, holds the whole attempt to a total time bound, reads the body within
the size limit (counting decompressed bytes, refusing a decompression bomb:
the SDK decodes gzip and deflate itself, with a cap on each step), and turns
every network failure into `APIConnectionError` or `APITimeoutError`. A
client stays on the event loop (and in the process) it first ran in; anything
else is a clear error, not a hang.

Which HTTP transport runs under the SDK's `httpx.AsyncClient`:

httpx's own transport (httpcore) works on asyncio and trio alike. On asyncio,
aiohttp's HTTP/1.1 client moves pages faster, and `httpx-aiohttp` puts it under
the same `httpx.AsyncClient` API; the ``aiohttp`` extra installs both. The
choice, ``transport=`` on the clients:

- ``"httpx"``: httpx's own transport, always.
- ``"aiohttp"``: aiohttp; an error when the extra is missing (at construction)
  or when a request runs on trio (at that request).
- ``"auto"`` (the default): aiohttp when the extra is installed and the
  request runs on asyncio, httpx's own transport otherwise, silently. Proxies
  set in the environment also keep httpx's own (it honours them; the aiohttp
  transport would not).

The event loop is not known when a client is built, so the choice is made on
the first request (`_Deferred`); from then on httpx calls the chosen transport
directly. A client stays on the event loop it first ran on, as httpx's own
connection pool does.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import sys
import time
import urllib.request
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ._constants import DECOMPRESSION_CHECK_BYTES, MAX_DECOMPRESSION_RATIO
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AudioScapeError,
    InvalidParameterError,
)

if TYPE_CHECKING:
    import aiohttp
    import anyio

__all__ = ["TRANSPORTS", "Answer", "TransportChoice", "TransportStage", "default_transport"]

#: The request extension that tells the SDK's aiohttp transport the most raw bytes to read.
MAX_BYTES_EXTENSION = "audioscape.max_bytes"

#: What the ``transport=`` argument of the clients may be.
TransportChoice = Literal["auto", "httpx", "aiohttp"]
TRANSPORTS: tuple[TransportChoice, ...] = ("auto", "httpx", "aiohttp")

_EXTRA_HINT = "pip install 'audioscape-async[aiohttp]'"

# httpx's default pool, so that switching transports does not change it.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


def _extra_installed() -> bool:
    return all(importlib.util.find_spec(name) is not None for name in ("aiohttp", "httpx_aiohttp"))


def _env_proxies() -> bool:
    return any(key in ("http", "https", "all") for key in urllib.request.getproxies())


def default_transport(choice: object, *, own_http_client: bool) -> httpx.AsyncBaseTransport | None:
    """Check `choice`; return the transport for the SDK's own httpx client (None: httpx's own).

    `own_http_client` says the user passed an `httpx.AsyncClient`, whose
    transport is theirs to choose.
    """
    if choice not in TRANSPORTS:
        raise InvalidParameterError(
            "transport", f"must be one of {', '.join(map(repr, TRANSPORTS))}, got {choice!r}"
        )
    if own_http_client:
        if choice == "aiohttp":
            raise InvalidParameterError(
                "transport",
                '"aiohttp" cannot apply to your own http_client; give that client '
                "httpx_aiohttp.AiohttpTransport() yourself, or leave transport alone",
            )
        return None
    if choice == "httpx":
        return None
    if not _extra_installed():
        if choice == "aiohttp":
            raise InvalidParameterError(
                "transport", f'"aiohttp" needs the aiohttp extra: {_EXTRA_HINT}'
            )
        return None
    if choice == "auto" and _env_proxies():
        return None
    return _Deferred(required=choice == "aiohttp")


class _Deferred(httpx.AsyncBaseTransport):
    """Chooses aiohttp or httpx's own transport on the first request, inside its event loop."""

    def __init__(self, *, required: bool) -> None:
        self._required = required
        self._chosen: httpx.AsyncBaseTransport | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        chosen = self._chosen
        if chosen is None:
            chosen = self._chosen = self._choose()
            # httpx looks the method up on every request: from now on it finds
            # the chosen transport's own, and this layer costs nothing.
            self.handle_async_request = chosen.handle_async_request  # type: ignore[method-assign]
        return await chosen.handle_async_request(request)

    def _choose(self) -> httpx.AsyncBaseTransport:
        import asyncio  # imported where used: httpx alone does not import it

        try:
            asyncio.get_running_loop()
        except RuntimeError:
            if self._required:
                raise InvalidParameterError(
                    "transport",
                    '"aiohttp" runs only on asyncio, and this request runs on another '
                    'event loop (trio?): use transport="auto" or "httpx"',
                ) from None
            return httpx.AsyncHTTPTransport(limits=_LIMITS)
        return _aiohttp_transport_class()(limits=_LIMITS)

    async def aclose(self) -> None:
        if self._chosen is not None:
            await self._chosen.aclose()


@cache
def _aiohttp_transport_class() -> Callable[..., httpx.AsyncBaseTransport]:
    """httpx-aiohttp's transport, reading each answer whole and mapping errors as httpx does.

    Built on first use: aiohttp takes a tenth of a second to import, and trio
    users never need it.
    """
    import asyncio

    import aiohttp
    from httpx_aiohttp import AiohttpTransport

    class Transport(AiohttpTransport):
        # The stock transport streams the body through two wrappers and maps a
        # dropped connection to httpx.ConnectTimeout (which would surface as a
        # timeout). The SDK reads every answer whole, so this reads it at once
        # and maps errors to the httpx classes httpx's own transport raises.

        _timeouts: tuple[object, aiohttp.ClientTimeout] | None = None

        async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
            session = self.client
            if not isinstance(session, aiohttp.ClientSession):
                session = self.client = self.get_client()
            try:
                async with session.request(
                    request.method,
                    str(request.url),
                    # Pairs of str: aiohttp reading httpx.Headers as a mapping costs ~40 µs.
                    headers=[
                        (k.decode("latin-1"), v.decode("latin-1")) for k, v in request.headers.raw
                    ],
                    data=request.content or None,
                    allow_redirects=False,
                    auto_decompress=False,  # httpx decodes, as with its own transport
                    compress=False,
                    timeout=self._timeout(request.extensions.get("timeout")),
                    server_hostname=request.extensions.get("sni_hostname"),
                ) as answer:
                    limit = request.extensions.get(MAX_BYTES_EXTENSION)
                    if limit is None:
                        content = await answer.read()
                    else:
                        content = await _read_bounded(answer, limit)
            except (TimeoutError, asyncio.TimeoutError) as error:
                kind = (
                    httpx.ConnectTimeout
                    if isinstance(error, aiohttp.ConnectionTimeoutError)
                    else httpx.ReadTimeout
                )
                raise kind(str(error) or type(error).__name__, request=request) from error
            except aiohttp.ClientConnectorError as error:
                raise httpx.ConnectError(str(error), request=request) from error
            except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as error:
                raise httpx.RemoteProtocolError(
                    str(error) or type(error).__name__, request=request
                ) from error
            except (aiohttp.ClientError, OSError) as error:
                raise httpx.ReadError(
                    str(error) or type(error).__name__, request=request
                ) from error
            extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
            if answer.reason:
                extensions["reason_phrase"] = answer.reason.encode()
            # A stream, not content=: httpx would decompress content= whole, at once.
            return httpx.Response(
                answer.status,
                headers=answer.raw_headers,
                stream=httpx.ByteStream(content),
                request=request,
                extensions=extensions,
            )

        def _timeout(self, timeout: Any) -> aiohttp.ClientTimeout:
            # The SDK passes the same timeout dict on every request: convert it once.
            cached = self._timeouts
            if cached is not None and cached[0] is timeout:
                return cached[1]
            parts = timeout or {}
            converted = aiohttp.ClientTimeout(
                sock_connect=parts.get("connect"),
                sock_read=parts.get("read"),
                connect=parts.get("pool"),  # aiohttp's "connect" includes the wait for the pool
            )
            self._timeouts = (timeout, converted)
            return converted

    async def _read_bounded(answer: aiohttp.ClientResponse, limit: int) -> bytes:
        if answer.content_length is not None and answer.content_length > limit:
            raise too_large(limit, f"it says it is {answer.content_length:,} bytes")
        chunks: list[bytes] = []
        size = 0
        async for chunk in answer.content.iter_any():
            size += len(chunk)
            if size > limit:
                raise too_large(limit, "it kept coming")
            chunks.append(chunk)
        return b"".join(chunks)

    return Transport


def too_large(limit: int, detail: str) -> APIResponseValidationError:
    """The error of an answer over the size limit."""
    return APIResponseValidationError(
        f"the answer is larger than max_response_bytes ({limit:,} bytes; {detail}); "
        "a search page is far smaller: is base_url the AudioScape API?"
    )


def closed_error(*, during_call: bool = False) -> AudioScapeError:
    """The error of a call on a closed client (or one closed while the call ran)."""
    if during_call:
        return AudioScapeError("the client was closed while this call was running")
    return AudioScapeError("this AsyncClient is closed; create a new one")


class Answer:
    """What the transport stage hands on: a complete answer, its body read and decoded."""

    __slots__ = ("content", "elapsed", "headers", "response", "status_code")

    def __init__(self, response: httpx.Response, content: bytes, elapsed: float) -> None:
        self.response = response
        self.status_code = response.status_code
        self.headers = response.headers
        self.content = content
        self.elapsed = elapsed


#: Bumped in a child process after a fork: a client made before it must not be used there.
_fork_generation = 0


def _after_fork() -> None:
    global _fork_generation
    _fork_generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def _current_loop() -> object:
    """The running event loop (asyncio's loop, trio's token)."""
    import asyncio

    loop = asyncio._get_running_loop()
    if loop is not None:
        return loop
    trio = sys.modules.get("trio")  # not on asyncio: trio, if anything, and then imported
    if trio is not None:
        try:
            return trio.lowlevel.current_trio_token()
        except RuntimeError:
            pass
    return None  # pragma: no cover - another library: no check


class TransportStage:
    """The connection pool and everything done to send one request on it; see the module."""

    def __init__(self, http_client: httpx.AsyncClient | None, transport: object) -> None:
        self.owns_http = http_client is None
        chosen = default_transport(transport, own_http_client=not self.owns_http)
        self.http = (
            http_client
            if http_client is not None
            else httpx.AsyncClient(
                follow_redirects=False, transport=chosen, limits=_LIMITS, trust_env=True
            )
        )
        # Calls beyond the pool's size wait here, not in httpcore's pool, which
        # rescans every queued request at every turn: 1,000 calls queued there took
        # 25 s (and timed out) where this queue takes 3. Your own http_client keeps
        # its own limits, unknown here.
        self._slots: _Slots | None = None
        if self.owns_http and _LIMITS.max_connections is not None:
            self._slots = _Slots(_LIMITS.max_connections)
        self._loop: object = None
        self._generation = _fork_generation
        self.closed = False

    def check_context(self) -> None:
        """Refuse, at once and clearly, a use the pool cannot serve."""
        if self.closed:
            raise closed_error()
        if self._generation != _fork_generation:
            raise AudioScapeError(
                "this AsyncClient was created before the process forked; its connections "
                "belong to the parent: create a new client in each process"
            )
        loop = _current_loop()
        if self._loop is None:
            self._loop = loop
        elif loop is not self._loop:
            raise AudioScapeError(
                "this AsyncClient already runs on another event loop (another asyncio.run(), "
                "thread or trio run), where its connections live: create one client per event "
                "loop, or use the blocking Client from threads"
            )

    async def send(
        self,
        request: httpx.Request,
        *,
        bound: float | None,
        max_bytes: int,
        on_bound: Callable[[], APITimeoutError],
        host: str,
    ) -> Answer:
        """Send `request`; return its answer, read whole within `max_bytes` and `bound` seconds.

        `on_bound()` makes the error for an attempt that ran out of its bound
        (its own timeout, or the call's deadline).
        """
        outer = sys.exc_info()[1]  # what the caller was handling, if anything
        import anyio  # imported where used: `import audioscape_async` stays light

        started = time.perf_counter()
        try:
            with anyio.fail_after(bound):
                response, content = await self._exchange(request, max_bytes)
        except TimeoutError as error:
            _forget_locals(error, outer)
            raise on_bound() from error
        except httpx.TimeoutException as error:
            _forget_locals(error, outer)
            raise APITimeoutError(
                f"no answer from {host} in time ({type(error).__name__})", request=request
            ) from error
        except (httpx.HTTPError, OSError) as error:
            _forget_locals(error, outer)
            raise APIConnectionError(
                f"could not reach {host}: {_describe(error)}", request=request
            ) from error
        # The body is read, within its limits: give the response what reading it would have.
        response._content = content
        return Answer(response, content, time.perf_counter() - started)

    async def _exchange(
        self, request: httpx.Request, max_bytes: int
    ) -> tuple[httpx.Response, bytes]:
        try:
            return await self._pooled(request, max_bytes)
        except Exception as error:
            if not self.closed:
                raise
            # Closed under this call: whatever the pool said of it (httpx's RuntimeError,
            # a read on a closed connection), the reason is the close.
            raise closed_error(during_call=True) from error

    async def _pooled(self, request: httpx.Request, max_bytes: int) -> tuple[httpx.Response, bytes]:
        """Send one request through the pool and read its answer; after a failure or a
        cancellation at any point, reclaim what it left behind."""
        try:
            if self._slots is None:
                return await self._round_trip(request, max_bytes)
            async with self._slots:
                return await self._round_trip(request, max_bytes)
        except BaseException:
            if self.owns_http:
                await _close_orphans(self.http, request.stream)
            raise

    async def _round_trip(
        self, request: httpx.Request, max_bytes: int
    ) -> tuple[httpx.Response, bytes]:
        response = await self.http.send(request, stream=True, follow_redirects=False)
        try:
            return response, await _read_body(response, max_bytes)
        except APIResponseValidationError as error:
            error.response = response
            raise
        finally:
            await response.aclose()

    async def aclose(self) -> None:
        """Close the pool, if it is the SDK's own. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.owns_http:
            import anyio

            with anyio.CancelScope(shield=True):
                await self.http.aclose()


class _Decoder:
    """gzip or deflate, decompressed at most `room` bytes at a time (a bomb cannot burst)."""

    def __init__(self, encoding: str) -> None:
        self._encoding = encoding
        wbits = zlib.MAX_WBITS | 16 if encoding in ("gzip", "x-gzip") else zlib.MAX_WBITS
        self._zlib = zlib.decompressobj(wbits)
        self._first = True

    def decode(self, data: bytes, room: int) -> Iterator[bytes]:
        try:
            out = self._zlib.decompress(data, room)
        except zlib.error:
            if not (self._first and self._encoding == "deflate"):
                raise
            # Some servers send raw deflate, without the zlib header.
            self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
            out = self._zlib.decompress(data, room)
        self._first = False
        yield out
        while self._zlib.unconsumed_tail:
            yield self._zlib.decompress(self._zlib.unconsumed_tail, room)

    def flush(self) -> bytes:
        return self._zlib.flush()


async def _read_body(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body of `response`, refused past `max_bytes` or past a bomb's ratio."""
    if response.is_stream_consumed:
        # Read already, by a transport of your own that answers whole (httpx.MockTransport).
        if len(response.content) > max_bytes:
            raise too_large(max_bytes, f"it is {len(response.content):,} bytes")
        return response.content
    encoding = response.headers.get("content-encoding", "identity").strip().lower()
    length = response.headers.get("content-length", "")
    if length.isdigit() and int(length) > max_bytes:
        raise too_large(max_bytes, f"it says it is {int(length):,} bytes")
    body = _BodyReader(encoding, max_bytes)
    stream = response.aiter_raw()
    async for data in stream:
        problem = body.feed(data)
        if problem is not None:
            await _abandon(response, stream)
            raise problem
    return body.finish()


async def _abandon(response: httpx.Response, stream: AsyncIterator[bytes]) -> None:
    """Stop reading a body half-way, letting httpx's chain of stream generators end.

    Breaking out of them leaves each suspended (trio warns when they are
    collected, encode/httpx#3686); closing the connection under them first
    makes the next read fail inside the innermost one, which ends them all.
    """
    await response.aclose()
    for _ in range(8):
        try:
            await stream.__anext__()
        except (StopAsyncIteration, Exception):
            return


class _BodyReader:
    """Counts and decodes a body chunk by chunk; says what is wrong as soon as it is."""

    __slots__ = ("_chunks", "_decoder", "_encoding", "_max", "_raw", "_size")

    def __init__(self, encoding: str, max_bytes: int) -> None:
        self._encoding = encoding
        self._max = max_bytes
        self._chunks: list[bytes] = []
        self._size = self._raw = 0
        self._decoder: _Decoder | None = None
        if encoding in ("gzip", "x-gzip", "deflate"):
            self._decoder = _Decoder(encoding)
        elif encoding not in ("identity", ""):
            raise APIResponseValidationError(
                f"the answer is encoded as {encoding[:40]!r}, which was not asked for "
                "(the client accepts gzip and deflate)"
            )

    def feed(self, data: bytes) -> APIResponseValidationError | None:
        self._raw += len(data)
        if self._decoder is None:
            return self._take(data)
        try:
            for out in self._decoder.decode(data, self._max - self._size + 1):
                problem = self._take(out)
                if problem is not None:
                    return problem
        except zlib.error as error:
            return self._invalid(error)
        return None

    def _take(self, out: bytes) -> APIResponseValidationError | None:
        self._size += len(out)
        if self._size > self._max:
            detail = "it kept coming" if self._decoder is None else "once decompressed"
            return too_large(self._max, detail)
        if (
            self._decoder is not None
            and self._size > DECOMPRESSION_CHECK_BYTES
            and self._size > MAX_DECOMPRESSION_RATIO * self._raw
        ):
            return APIResponseValidationError(
                f"the answer grew more than {MAX_DECOMPRESSION_RATIO}x in decompression "
                f"({self._raw:,} bytes to over {self._size:,}): refused as a decompression bomb"
            )
        self._chunks.append(out)
        return None

    def _invalid(self, error: zlib.error) -> APIResponseValidationError:
        return APIResponseValidationError(
            f"the answer's body is not valid {self._encoding} ({error})"
        )

    def finish(self) -> bytes:
        if self._decoder is not None:
            try:
                self._chunks.append(self._decoder.flush())
            except zlib.error as error:
                raise self._invalid(error) from None
        return b"".join(self._chunks)


async def _close_orphans(http: httpx.AsyncClient, body: object) -> None:
    """Release what a cancelled request (the one sending `body`) left in httpcore's pool.

    asyncio's own cancellation (``Task.cancel()``, ``asyncio.wait_for``) is not
    stopped by httpcore's shields, and can land where httpcore does not clean up:
    just after a connection opened (it stays neither idle nor closed nor used:
    encode/httpcore#1093), or while a finished answer is being closed (its request
    stays queued, its connection busy). Either keeps a socket and a pool slot for
    good, and enough of them starve the pool. Private attributes, read
    defensively: another transport finds nothing here.
    """
    transport = getattr(http, "_transport", None)
    transport = getattr(transport, "_chosen", transport)  # the SDK's deferred choice
    pool: Any = getattr(transport, "_pool", None)
    try:
        for left in [waiting for waiting in pool._requests if waiting.request.stream is body]:
            pool._requests.remove(left)
        used = {id(waiting.connection) for waiting in pool._requests}
        orphans = [
            connection
            for connection in pool._connections
            if id(connection) not in used and not (connection.is_idle() or connection.is_closed())
        ]
        for connection in orphans:
            pool._connections.remove(connection)
    except (AttributeError, TypeError, ValueError):
        return
    if orphans:
        import anyio

        with anyio.CancelScope(shield=True):
            for connection in orphans:
                with contextlib.suppress(Exception):
                    await connection.aclose()


class _Slots:
    """At most `size` requests in the pool at once; the others wait here, in turn.

    Unlike an anyio Semaphore, taking a free slot does not yield to the event
    loop (that cost a seventh of a cached search); a freed slot goes straight to
    the longest waiter.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[anyio.Event] = deque()

    async def __aenter__(self) -> None:
        if self._free > 0:
            self._free -= 1
            return
        import anyio

        granted = anyio.Event()
        self._waiters.append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                self._waiters.remove(granted)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1


class Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A request body sent as one chunk, iterated by a plain object.

    httpx's own body stream iterates with an async generator; a request
    cancelled while it is sent leaves that generator unfinished, and trio
    warns (ResourceWarning) when it is collected (encode/httpx#3686).
    """

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._body,))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _OneChunk(self._body)


class _OneChunk:
    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        body, self._body = self._body, None
        if body is None:
            raise StopAsyncIteration
        return body


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


def _forget_locals(error: BaseException, outer: BaseException | None) -> None:
    """Clear the local variables of the finished frames under an attempt that failed.

    The HTTP stack's frames hold the request's headers, API key included (aiohttp's
    ``headers``, a socket write's ``data``), and a traceback shown with its locals
    (``capture_locals=True``, rich, Sentry) would print them. The frames stay in
    the traceback, file and line; only their values go. `outer`, the exception
    the caller was handling, and what it chains are the caller's: left alone.
    """
    import traceback

    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        exc = pending.pop()
        if exc is outer or id(exc) in seen:
            continue
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)  # frames still running are skipped
        pending.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
        pending.extend(getattr(exc, "exceptions", ()))
