"""The transport stage: bytes out, status, headers and a bounded body back, or an SDK error.

`TransportStage.send` is the only code that touches the network. It owns the
connection pool (the SDK's own, or your `httpx.AsyncClient`), queues calls
beyond the pool's size, reclaims what a cancelled request left in httpcore's
pool, holds the whole attempt to a total time bound, reads the body within
the size limit (counting decompressed bytes, refusing a decompression bomb:
the SDK decodes gzip and deflate itself, with a cap on each step), and turns
every network failure into `APIConnectionError` or `APITimeoutError`. A
client stays on the event loop (and in the process) it first ran in; anything
else is a clear error, not a hang.

What carries the requests of the SDK's own pool, ``transport=`` on the clients:

- ``"httpx"``: an `httpx.AsyncClient` on httpx's own transport (httpcore),
  which works on asyncio and trio alike.
- ``"aiohttp"``: aiohttp's HTTP/1.1 client, called directly (`_AiohttpWire`),
  which costs about half the CPU per search on asyncio; an error when the
  extra is missing (at construction) or when a request runs on trio (at that
  request).
- ``"auto"`` (the default): aiohttp when the extra is installed and the
  client runs on asyncio, httpx's own transport otherwise, silently. Proxies
  set in the environment also keep httpx's own (it honours them; aiohttp
  would not). On asyncio the first `AIOHTTP_AFTER_CALLS` - 1 calls of a client
  go over httpx's own transport unless aiohttp is imported already: its import
  (~75 ms of CPU) would cost a short script more than all its searches.

Both paths hand on the same things: an `httpx.Response` with the body read,
httpx's exception classes for network failures, the same size and encoding
checks (`_BodyReader`). Your own `http_client` is always used as given. The
event loop is not known when a client is built, so the choice is made on the
first request (`TransportStage.check_context`).
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import urllib.request
import zlib
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

import httpx

from ._constants import AIOHTTP_AFTER_CALLS, DECOMPRESSION_CHECK_BYTES, MAX_DECOMPRESSION_RATIO
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APITimeoutError,
    AudioScapeError,
    InvalidParameterError,
)
from ._logs import logger

if TYPE_CHECKING:
    import aiohttp
    import anyio
    import yarl

__all__ = ["TRANSPORTS", "Answer", "TransportChoice", "TransportStage", "default_transport"]

#: What the ``transport=`` argument of the clients may be.
TransportChoice = Literal["auto", "httpx", "aiohttp"]
TRANSPORTS: tuple[TransportChoice, ...] = ("auto", "httpx", "aiohttp")

_EXTRA_HINT = "pip install 'audioscape-async[aiohttp]'"

# httpx's default pool, so that switching transports does not change it.
_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20, keepalive_expiry=5.0)


def _extra_installed() -> bool:
    import importlib.util  # imported where used: httpx does not import it

    return importlib.util.find_spec("aiohttp") is not None


def _env_proxies() -> bool:
    return any(key in ("http", "https", "all") for key in urllib.request.getproxies())


_Carrier = Literal["httpx", "aiohttp", "auto"]


def default_transport(choice: object, *, own_http_client: bool) -> _Carrier:
    """Check `choice`; say what carries the SDK's own requests: httpx's own transport,
    aiohttp, or ``"auto"`` (aiohttp if the first request runs on asyncio).

    `own_http_client` says the user passed an `httpx.AsyncClient`, whose
    transport is theirs to choose: that is always ``"httpx"``.
    """
    if choice not in TRANSPORTS:
        raise InvalidParameterError(
            "transport", f"must be one of {', '.join(map(repr, TRANSPORTS))}, got {choice!r}"
        )
    if own_http_client:
        if choice == "aiohttp":
            raise InvalidParameterError(
                "transport",
                '"aiohttp" cannot apply to your own http_client; give that client an '
                "aiohttp-based httpx transport yourself, or leave transport alone",
            )
        return "httpx"
    if choice == "httpx":
        return "httpx"
    if not _extra_installed():
        if choice == "aiohttp":
            raise InvalidParameterError(
                "transport", f'"aiohttp" needs the aiohttp extra: {_EXTRA_HINT}'
            )
        return "httpx"
    if choice == "auto" and _env_proxies():
        return "httpx"
    return "aiohttp" if choice == "aiohttp" else "auto"


def _on_asyncio() -> bool:
    import asyncio  # imported where used: httpx alone does not import it

    return asyncio._get_running_loop() is not None


#: Connections in each of the pools behind the SDK's own httpx client (`_Shards`).
_SHARD_SIZE = 8


class _Shards(httpx.AsyncBaseTransport):
    """httpx's own transport, as several small connection pools; a request goes to the least busy.

    httpcore's pool scans all its connections each time a request enters or
    leaves it, so one pool of 100 costs more CPU per search the more requests
    are in flight: 64 at once moved 0.55x the searches per second of 8. Pools of
    `_SHARD_SIZE` keep each scan short, and the least busy pool takes the next
    request (ties: the first, so a lone caller reuses one connection). Together
    they hold `_LIMITS.max_connections`, as one pool would.
    """

    def __init__(self) -> None:
        total = _LIMITS.max_connections or 100
        verify = httpx.create_ssl_context(trust_env=True)  # loaded once, shared by the pools
        sizes = [_SHARD_SIZE] * (total // _SHARD_SIZE)
        if total % _SHARD_SIZE:
            sizes.append(total % _SHARD_SIZE)
        self.shards = [
            httpx.AsyncHTTPTransport(
                verify=verify,
                limits=httpx.Limits(
                    max_connections=size,
                    max_keepalive_connections=size,
                    keepalive_expiry=_LIMITS.keepalive_expiry,
                ),
            )
            for size in sizes
        ]
        self._busy = [0] * len(sizes)
        self._closed = False

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        busy = self._busy
        index = busy.index(min(busy))
        busy[index] += 1
        try:
            response = await self.shards[index].handle_async_request(request)
        except BaseException:
            busy[index] -= 1
            raise
        response.stream = _Counted(response.stream, busy, index)
        if self._closed:
            # Closed while this request's connection was being opened: httpcore's
            # pool closed everything it held, not that connection, which would be
            # served and then left open outside any pool. Closing its answer unread
            # closes it.
            await response.aclose()
            raise httpx.ReadError("the connection pool was closed", request=request)
        return response

    async def aclose(self) -> None:
        self._closed = True
        for shard in self.shards:
            await shard.aclose()


class _Counted(httpx.AsyncByteStream):
    """An answer's stream that gives its pool's turn back when closed (once)."""

    __slots__ = ("_busy", "_index", "_stream")

    def __init__(self, stream: Any, busy: list[int], index: int) -> None:
        self._stream = stream
        self._busy: list[int] | None = busy
        self._index = index

    def __aiter__(self) -> AsyncIterator[bytes]:
        return self._stream.__aiter__()  # type: ignore[no-any-return]

    async def aclose(self) -> None:
        busy, self._busy = self._busy, None
        try:
            await self._stream.aclose()
        finally:
            if busy is not None:
                busy[self._index] -= 1


class _AiohttpWire:
    """The SDK's own pool on aiohttp: one request out, its answer read whole, within limits.

    httpx's client layer (auth, cookies, redirects, event hooks, stream
    wrappers) costs more CPU per search than aiohttp's whole exchange, and the
    SDK uses none of it on a pool of its own: this calls aiohttp directly.
    What comes back is still httpx's: an `httpx.Response` (for errors and
    `page.headers`), httpx's exception classes for network failures (mapped as
    httpx's own transport raises them), which `TransportStage.send` turns into
    SDK errors the same way on both paths. Cookies are not kept, as an API
    client has no use for them.
    """

    def __init__(self) -> None:
        import aiohttp  # a tenth of a second to import: only when aiohttp is chosen

        self._aiohttp = aiohttp
        self._session: aiohttp.ClientSession | None = None
        # The SDK passes the same URL, headers and timeout objects on every request of
        # a client: each is converted to aiohttp's form once, and again only on a change.
        self._url = _Last(_yarl_url)
        # Pairs of str: aiohttp reading httpx.Headers as a mapping costs ~40 µs.
        self._pairs = _Last(_header_pairs)
        self._timeout = _Last(_client_timeout)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session, once the first request opened it."""
        return self._session

    def _open(self) -> aiohttp.ClientSession:
        aiohttp = self._aiohttp
        connector = aiohttp.TCPConnector(
            limit=_LIMITS.max_connections or 0,
            keepalive_timeout=_LIMITS.keepalive_expiry,
            # httpx's certificates (certifi, or SSL_CERT_FILE/SSL_CERT_DIR), as on httpx's own.
            ssl=httpx.create_ssl_context(trust_env=True),
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # the SDK decodes, with its limits
        )
        return self._session

    async def exchange(self, outgoing: Outgoing, max_bytes: int) -> Answer:
        """Send `outgoing`; return its answer, the body read within the limits."""
        aiohttp = self._aiohttp
        session = self._session or self._open()
        extensions = outgoing.extensions
        try:
            async with session.request(
                "POST",
                self._url(outgoing.url),
                headers=self._pairs(outgoing.headers),
                data=outgoing.body,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(extensions.get("timeout")),
                server_hostname=extensions.get("sni_hostname"),
            ) as answer:
                headers = httpx.Headers(answer.raw_headers)
                reason = answer.reason.encode("latin-1", "replace") if answer.reason else None
                fields = answer.headers  # aiohttp's own: faster to look up than httpx's
                try:
                    reader = _BodyReader(
                        fields.get("Content-Encoding", "identity"), max_bytes,
                        length=fields.get("Content-Length"),
                    )  # fmt: skip
                    async for data in answer.content.iter_any():
                        problem = reader.feed(data)
                        if problem is not None:
                            raise problem
                    content = reader.finish()
                except APIResponseValidationError as error:
                    error.response = _response(answer.status, headers, reason, outgoing, b"")
                    raise
                return Answer(answer.status, headers, content, outgoing=outgoing, reason=reason)
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            kind = (
                httpx.ConnectTimeout
                if isinstance(error, aiohttp.ConnectionTimeoutError)
                else httpx.ReadTimeout
            )
            raise kind(str(error) or type(error).__name__, request=outgoing.request()) from error
        except aiohttp.ClientConnectorError as error:
            raise httpx.ConnectError(str(error), request=outgoing.request()) from error
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientPayloadError) as error:
            raise httpx.RemoteProtocolError(
                str(error) or type(error).__name__, request=outgoing.request()
            ) from error
        except (aiohttp.ClientError, OSError) as error:
            raise httpx.ReadError(
                str(error) or type(error).__name__, request=outgoing.request()
            ) from error

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


K = TypeVar("K")
V = TypeVar("V")


class _Last(Generic[K, V]):
    """`convert` of the last key it was called with (the same object), kept until another."""

    __slots__ = ("_convert", "_key", "_value")

    def __init__(self, convert: Callable[[K], V]) -> None:
        self._convert = convert
        self._key: object = _Last  # no key yet: nothing the caller passes is this class
        self._value: V | None = None

    def __call__(self, key: K) -> V:
        if key is not self._key:
            self._value, self._key = self._convert(key), key
        return self._value  # type: ignore[return-value]


def _yarl_url(url: httpx.URL) -> yarl.URL:
    import yarl

    return yarl.URL(str(url), encoded=True)


def _header_pairs(headers: httpx.Headers) -> list[tuple[str, str]]:
    return [(k.decode("latin-1"), v.decode("latin-1")) for k, v in headers.raw]


def _client_timeout(timeout: Any) -> aiohttp.ClientTimeout:
    import aiohttp

    parts = timeout or {}
    return aiohttp.ClientTimeout(
        sock_connect=parts.get("connect"),
        sock_read=parts.get("read"),
        connect=parts.get("pool"),  # aiohttp's "connect" includes the wait for the pool
    )


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


class Outgoing:
    """One request to send: its parts, and the `httpx.Request` they make, built when needed.

    On aiohttp no `httpx.Request` is needed unless an error carries it (building
    one is a tenth of the SDK's own CPU per search).
    """

    __slots__ = ("_request", "body", "extensions", "headers", "url")

    def __init__(
        self,
        url: httpx.URL,
        headers: httpx.Headers,
        body: bytes,
        extensions: dict[str, Any],
    ) -> None:
        self.url = url
        self.headers = headers
        self.body = body
        self.extensions = extensions
        self._request: httpx.Request | None = None

    def request(self) -> httpx.Request:
        """The `httpx.Request` of this request (one object however often asked)."""
        request = self._request
        if request is None:
            request = self._request = httpx.Request(
                "POST", self.url, headers=self.headers, content=self.body,
                extensions=self.extensions,
            )  # fmt: skip
            request.stream = Body(self.body)  # content and Content-Length are set already
        return request


class Answer:
    """What the transport stage hands on: a complete answer, its body read and decoded.

    `response` is an `httpx.Response` with the body read, built on first use
    when aiohttp carried the request (an error status, a body that fails to
    decode); `headers` is always httpx's.
    """

    __slots__ = (
        "_outgoing",
        "_reason",
        "_response",
        "content",
        "elapsed",
        "headers",
        "status_code",
    )

    def __init__(
        self,
        status_code: int,
        headers: httpx.Headers,
        content: bytes,
        *,
        response: httpx.Response | None = None,
        outgoing: Outgoing | None = None,
        reason: bytes | None = None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.content = content
        self.elapsed = 0.0
        self._response = response
        self._outgoing = outgoing
        self._reason = reason

    @property
    def response(self) -> httpx.Response:
        """The answer as an `httpx.Response`, its body read."""
        response = self._response
        if response is None:
            assert self._outgoing is not None
            response = self._response = _response(
                self.status_code, self.headers, self._reason, self._outgoing, self.content
            )
        return response


def _response(
    status: int, headers: httpx.Headers, reason: bytes | None, outgoing: Outgoing, content: bytes
) -> httpx.Response:
    extensions: dict[str, Any] = {"http_version": b"HTTP/1.1"}
    if reason:
        extensions["reason_phrase"] = reason
    response = httpx.Response(
        status, headers=headers, request=outgoing.request(), extensions=extensions
    )
    response._content = content  # read already, and decoded: not decoded again
    return response


#: Bumped in a child process after a fork: a client made before it must not be used there.
_fork_generation = 0


def _after_fork() -> None:
    global _fork_generation
    _fork_generation += 1


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork)


def fork_generation() -> int:
    """How many forks this process came out of (a client refuses to cross one)."""
    return _fork_generation


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
        self._choice = default_transport(transport, own_http_client=not self.owns_http)
        # What carries the requests, settled on the first one (inside its event loop):
        # an httpx.AsyncClient (yours, or the SDK's own on httpx's transport), or aiohttp.
        self._http = http_client
        self._wire: _AiohttpWire | None = None
        #: Calls left before "auto" moves from httpx to aiohttp (0: no move ahead).
        self._countdown = 0
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

    @property
    def chosen(self) -> Literal["httpx", "aiohttp"] | None:
        """What carries the requests: httpx or aiohttp (None before the first request)."""
        if self._wire is not None:
            return "aiohttp"
        return "httpx" if self._http is not None else None

    @property
    def http(self) -> httpx.AsyncClient | None:
        """The httpx client the requests go through (None on aiohttp, or before the first)."""
        return self._http

    @property
    def wire(self) -> _AiohttpWire | None:
        """The aiohttp pool, when aiohttp carries the requests."""
        return self._wire

    def _settle(self) -> None:
        """Choose what carries the requests, on the first one (its event loop is known).

        ``"auto"`` on asyncio starts on httpx's own transport unless aiohttp is
        imported already: importing it costs more CPU (~75 ms) than a short script
        spends in all its searches. The client moves to aiohttp on its
        `AIOHTTP_AFTER_CALLS`-th call, when it is a busy one.
        """
        auto = self._choice == "auto" and _on_asyncio()
        if self._choice == "aiohttp" or (auto and "aiohttp" in sys.modules):
            self._wire = _AiohttpWire()
            return
        if auto:
            self._countdown = AIOHTTP_AFTER_CALLS
        self._http = httpx.AsyncClient(
            follow_redirects=False, transport=_Shards(), limits=_LIMITS, trust_env=True
        )

    def _move_to_aiohttp(self) -> None:
        """A busy client on "auto": from now on aiohttp carries its requests.

        Requests in flight on httpx's pool finish there; that pool closes with the
        client. If aiohttp cannot be imported after all, the client stays on httpx.
        """
        self._countdown = 0
        try:
            self._wire = _AiohttpWire()
        except ImportError as error:  # pragma: no cover - a broken install of the extra
            logger.warning(
                "aiohttp could not be imported (%s); staying on httpx's transport", error
            )

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
            if self._choice == "aiohttp" and not _on_asyncio():
                raise InvalidParameterError(
                    "transport",
                    '"aiohttp" runs only on asyncio, and this request runs on another '
                    'event loop (trio?): use transport="auto" or "httpx"',
                )
            if self._wire is None and self._http is None:
                self._settle()  # first, so that one interrupted (Ctrl-C) runs again next time
            self._loop = loop
        elif loop is not self._loop:
            raise AudioScapeError(
                "this AsyncClient already runs on another event loop (another asyncio.run(), "
                "thread or trio run), where its connections live: create one client per event "
                "loop, or use the blocking Client from threads"
            )
        if self._countdown:
            self._countdown -= 1
            if not self._countdown:
                self._move_to_aiohttp()

    async def send(
        self,
        outgoing: Outgoing,
        *,
        bound: float | None,
        max_bytes: int,
        on_bound: Callable[[], APITimeoutError],
        host: str,
    ) -> Answer:
        """Send `outgoing`; return its answer, read whole within `max_bytes` and `bound` seconds.

        `on_bound()` makes the error for an attempt that ran out of its bound
        (its own timeout, or the call's deadline).
        """
        outer = sys.exc_info()[1]  # what the caller was handling, if anything
        import anyio  # imported where used: `import audioscape_async` stays light

        started = time.perf_counter()
        try:
            with anyio.fail_after(bound):
                answer = await self._exchange(outgoing, max_bytes)
        except TimeoutError as error:
            _forget_locals(error, outer)
            raise on_bound() from error
        except httpx.TimeoutException as error:
            _forget_locals(error, outer)
            raise APITimeoutError(
                f"no answer from {host} in time ({type(error).__name__})",
                request=outgoing.request(),
            ) from error
        except (httpx.HTTPError, OSError) as error:
            _forget_locals(error, outer)
            raise APIConnectionError(
                f"could not reach {host}: {_describe(error)}", request=outgoing.request()
            ) from error
        answer.elapsed = time.perf_counter() - started
        return answer

    async def _exchange(self, outgoing: Outgoing, max_bytes: int) -> Answer:
        try:
            return await self._pooled(outgoing, max_bytes)
        except Exception as error:
            if not self.closed:
                raise
            # Closed under this call: whatever the pool said of it (httpx's RuntimeError,
            # a read on a closed connection), the reason is the close.
            raise closed_error(during_call=True) from error

    async def _pooled(self, outgoing: Outgoing, max_bytes: int) -> Answer:
        """Send one request through the pool and read its answer; after a failure or a
        cancellation at any point, reclaim what it left behind."""
        wire = self._wire
        if wire is not None:
            if self._slots is None:  # pragma: no cover - the SDK's own pool always has slots
                return await wire.exchange(outgoing, max_bytes)
            async with self._slots:
                return await wire.exchange(outgoing, max_bytes)
        http = self._http
        assert http is not None  # settled by check_context, before any send
        request = outgoing.request()
        try:
            if self._slots is None:
                return await _round_trip(http, request, max_bytes)
            async with self._slots:
                return await _round_trip(http, request, max_bytes)
        except BaseException:
            if self.owns_http:
                await _close_orphans(http, request.stream)
            raise

    async def aclose(self) -> None:
        """Close the pool, if it is the SDK's own. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.owns_http and (self._http is not None or self._wire is not None):
            import anyio

            with anyio.CancelScope(shield=True):
                if self._http is not None:
                    await self._http.aclose()
                if self._wire is not None:
                    await self._wire.aclose()


async def _round_trip(http: httpx.AsyncClient, request: httpx.Request, max_bytes: int) -> Answer:
    response = await http.send(request, stream=True, follow_redirects=False)
    try:
        content = await _read_body(response, max_bytes)
    except APIResponseValidationError as error:
        error.response = response
        raise
    finally:
        await response.aclose()
    # The body is read, within its limits: give the response what reading it would have.
    response._content = content
    return Answer(response.status_code, response.headers, content, response=response)


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
    body = _BodyReader.for_response(response, max_bytes)
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

    def __init__(self, encoding: str, max_bytes: int, *, length: str | None = None) -> None:
        """Refuses at once a body whose Content-Length says it is too large."""
        if length is not None and length.isdigit() and int(length) > max_bytes:
            raise too_large(max_bytes, f"it says it is {int(length):,} bytes")
        encoding = encoding.strip().lower()
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

    @classmethod
    def for_response(cls, response: httpx.Response, max_bytes: int) -> _BodyReader:
        """The reader of `response`'s body; refuses at once one that says it is too large."""
        headers = response.headers
        return cls(
            headers.get("content-encoding", "identity"), max_bytes,
            length=headers.get("content-length"),
        )  # fmt: skip

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
    orphans: list[Any] = []
    for shard in getattr(transport, "shards", [transport]):  # the SDK's pools, or one
        pool: Any = getattr(shard, "_pool", None)
        try:
            for left in [waiting for waiting in pool._requests if waiting.request.stream is body]:
                pool._requests.remove(left)
            used = {id(waiting.connection) for waiting in pool._requests}
            found = [
                connection
                for connection in pool._connections
                if id(connection) not in used
                and not (connection.is_idle() or connection.is_closed())
            ]
            for connection in found:
                pool._connections.remove(connection)
        except (AttributeError, TypeError, ValueError):
            continue
        orphans.extend(found)
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
