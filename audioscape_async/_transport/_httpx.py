"""The httpx wires: the SDK's own pool on httpcore (httpx's transport), or your `httpx.AsyncClient`.

`PoolWire` is the SDK's own pool: httpcore's connection pools, which httpx's
own transport runs on, called directly through their public API (trio and
asyncio alike), as several small pools (`_SHARD_SIZE` connections each; see
`PoolWire`), plus one pool per proxy the config chose. `ClientWire` sends
through the `httpx.AsyncClient` you passed as ``http_client``, as given: its
transport, proxies and limits are yours.

Each wire's network errors become SDK errors in its `exchange`, and nowhere
else. Nothing here sets or edits private state of httpx or httpcore. One
thing is read that httpcore does not publish, and only read: h11's
``trailing_data`` of a connection whose answer ended (`_trailing_data`),
because httpcore would serve bytes a server appended after a lying
Content-Length as the answer to the next request on that connection; such a
connection is closed instead. `tests/core/test_wire_soundness.py` pins the
httpcore and h11 versions this was checked on and fails if the path moves.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TYPE_CHECKING, Any

import httpx

from audioscape_async._context import closed_error
from audioscape_async._exceptions import APIResponseValidationError, AudioScapeError

from ._base import (
    Answer,
    Last,
    Outgoing,
    as_response,
    connection_error,
    timeout_error,
)
from ._body import Body, BodyReader, too_large

if TYPE_CHECKING:
    import ssl

    import httpcore

    from ._proxy import Proxy

__all__ = ["ClientWire", "PoolWire", "trailing_data"]

#: httpcore's response extension that holds the socket the answer came over: present
#: only when one did (httpx copies it onto its own responses; ASGI and mock transports
#: have none).
NETWORK_STREAM = "network_stream"
#: Connections in each of the small pools of the SDK's own httpx wire (`PoolWire`).
_SHARD_SIZE = 8


class PoolWire:
    """The SDK's own pool on httpcore, as several small pools; a request goes to the least busy.

    httpcore's pool scans all its connections each time a request enters or
    leaves it, so one pool of 100 costs more CPU per search the more requests
    are in flight: 64 at once moved fewer searches per second than 8 (see rows 5a
    and 5b of benchmarks/results.md for the sharded pools' figures). Pools of
    `_SHARD_SIZE` keep each scan short, and the least busy pool takes the next
    request (ties: the first, so a lone caller reuses one connection). Together
    they hold the config's `max_connections`, as one pool would; the stage lets
    no more requests in at once, so none ever queues inside httpcore.
    """

    name = "httpx"

    def __init__(
        self, *, max_connections: int, keepalive_expiry: float, ssl_context: ssl.SSLContext
    ) -> None:
        import httpcore  # imported already, off the event loop (`TransportStage`)

        self._httpcore = httpcore
        self._ssl = ssl_context
        self._max = max_connections
        self._keepalive = keepalive_expiry
        sizes = [_SHARD_SIZE] * (max_connections // _SHARD_SIZE)
        if max_connections % _SHARD_SIZE:
            sizes.append(max_connections % _SHARD_SIZE)
        #: The direct pools.
        self.pools: list[httpcore.AsyncConnectionPool] = [
            httpcore.AsyncConnectionPool(
                ssl_context=ssl_context,
                max_connections=size,
                max_keepalive_connections=size,
                keepalive_expiry=keepalive_expiry,
            )
            for size in sizes
        ]
        self._busy = [0] * len(sizes)
        #: One pool per proxy, made when a request first needs it.
        self.proxied: dict[Proxy, httpcore.AsyncConnectionPool] = {}
        self._closed = False
        # The same URL and headers objects come on every request of a client: each is
        # converted to httpcore's form once, and again only on a change.
        self._target = Last(_target)
        self._raw = Last(_raw_headers)

    async def exchange(self, outgoing: Outgoing, max_bytes: int) -> Answer:
        """Send `outgoing`; return its answer, the body read within the limits."""
        httpcore = self._httpcore
        busy = self._busy
        index = -1
        try:
            if outgoing.proxy is None:
                index = busy.index(min(busy))
                pool = self.pools[index]
                busy[index] += 1
            else:
                pool = self._proxy_pool(outgoing.proxy)
            url, host = self._target(outgoing.url)
            body = outgoing.body
            request = httpcore.Request(
                b"POST", url,
                headers=[
                    (b"Host", host), (b"Content-Length", b"%d" % len(body)),
                    *self._raw(outgoing.headers),
                ],
                content=Body(body), extensions=outgoing.extensions,
            )  # fmt: skip
            response = await pool.handle_async_request(request)
            if self._closed:
                # Closed while this request's connection was being opened: the pool
                # closed what it held, not that connection, which would be served and
                # then left open outside any pool. Closing its answer unread closes it.
                await response.aclose()
                raise closed_error(during_call=True)
            try:
                answer = await _read(response, outgoing, max_bytes)
            finally:
                await response.aclose()
            if _trailing_data(pool):
                await _close_trailing(pool)
            return answer
        # httpcore's own errors become SDK errors here, and nowhere else.
        except httpcore.TimeoutException as error:
            raise timeout_error(error, outgoing) from error
        except (
            httpcore.NetworkError, httpcore.ProtocolError, httpcore.ProxyError,
            httpcore.UnsupportedProtocol, OSError,
        ) as error:  # fmt: skip
            raise connection_error(error, outgoing) from error
        finally:
            if index >= 0:
                busy[index] -= 1
                if not busy[index]:
                    await _close_orphans(self.pools[index])

    def _proxy_pool(self, proxy: Proxy) -> httpcore.AsyncConnectionPool:
        known = self.proxied.get(proxy)
        if known is not None:
            return known
        pool: httpcore.AsyncConnectionPool
        httpcore = self._httpcore
        url, _ = _target(proxy.url)
        common: dict[str, Any] = {
            "ssl_context": self._ssl,
            "max_connections": self._max,
            "max_keepalive_connections": self._max,
            "keepalive_expiry": self._keepalive,
        }
        if not proxy.is_socks:
            authorization = proxy.authorization
            headers = None if authorization is None else [(b"Proxy-Authorization", authorization)]
            pool = httpcore.AsyncHTTPProxy(proxy_url=url, proxy_headers=headers, **common)
        else:
            import importlib.util

            if importlib.util.find_spec("socksio") is None:  # httpcore needs it for SOCKS
                raise AudioScapeError(
                    f"the SOCKS proxy {str(proxy.url)!r} set in the environment needs the "
                    "socksio package (pip install 'httpx[socks]'), or pass trust_env=False"
                )
            pool = httpcore.AsyncSOCKSProxy(proxy_url=url, proxy_auth=proxy.credentials, **common)
        self.proxied[proxy] = pool
        return pool

    async def aclose(self) -> None:
        """Close every pool. Idempotent."""
        self._closed = True
        for pool in [*self.pools, *self.proxied.values()]:
            await pool.aclose()


class ClientWire:
    """Your `httpx.AsyncClient`, used as given: its transport, proxies and limits stay yours."""

    name = "httpx"

    def __init__(self, http: httpx.AsyncClient) -> None:
        #: The client the requests go through.
        self.http = http

    async def exchange(self, outgoing: Outgoing, max_bytes: int) -> Answer:
        """Send `outgoing` through the client; return its answer, read within the limits."""
        try:
            response = await self.http.send(outgoing.request(), stream=True, follow_redirects=False)
            try:
                content = await _read_response(response, max_bytes)
            except APIResponseValidationError as error:
                error.response = response
                raise
            finally:
                await response.aclose()
        # httpx's errors (and those of your transport) become SDK errors here, and nowhere else.
        except httpx.TimeoutException as error:
            raise timeout_error(error, outgoing) from error
        except (httpx.HTTPError, OSError) as error:
            raise connection_error(error, outgoing) from error
        return Answer(
            response.status_code, response.headers, content, outgoing,
            reason=response.reason_phrase.encode("latin-1", "replace") or None,
            http_version=response.http_version.encode("ascii", "replace"),
            networked=NETWORK_STREAM in response.extensions,
        )  # fmt: skip

    async def aclose(self) -> None:
        """Nothing: the client is yours to close."""


async def _read(response: httpcore.Response, outgoing: Outgoing, max_bytes: int) -> Answer:
    """The answer of an httpcore `response`, its body read within `max_bytes`."""
    headers = httpx.Headers(response.headers)
    extensions = response.extensions
    reason = extensions.get("reason_phrase")
    version = extensions.get("http_version", b"HTTP/1.1")
    try:
        reader = BodyReader.for_headers(headers, max_bytes)
        stream: AsyncIterator[bytes] = response.stream.__aiter__()  # type: ignore[union-attr]
        content = await _read_body(reader, stream, response.aclose)
    except APIResponseValidationError as error:
        error.response = as_response(
            response.status, headers, b"", outgoing, reason=reason, http_version=version
        )
        raise
    return Answer(
        response.status, headers, content, outgoing, reason=reason, http_version=version,
        networked=NETWORK_STREAM in extensions,
    )  # fmt: skip


async def _read_response(response: httpx.Response, max_bytes: int) -> bytes:
    """The decoded body of an httpx `response`, refused past `max_bytes` or past a bomb's ratio."""
    if response.is_stream_consumed:
        # Read already, by a transport of your own that answers whole (httpx.MockTransport).
        if len(response.content) > max_bytes:
            raise too_large(max_bytes, f"it is {len(response.content):,} bytes")
        return response.content
    reader = BodyReader.for_headers(response.headers, max_bytes)
    return await _read_body(reader, response.aiter_raw(), response.aclose)


async def _read_body(
    reader: BodyReader, stream: AsyncIterator[bytes], aclose: Callable[[], Awaitable[None]]
) -> bytes:
    """`stream` read through `reader`; its first problem abandons the stream and is raised."""
    async for data in stream:
        problem = reader.feed(data)
        if problem is not None:
            await _abandon(aclose, stream)
            raise problem
    return reader.finish()


async def _abandon(aclose: Callable[[], Awaitable[None]], stream: AsyncIterator[bytes]) -> None:
    """Stop reading a body half-way, letting the chain of stream generators under it end.

    Breaking out of them leaves each suspended (trio warns when they are
    collected, encode/httpx#3686); closing the connection under them first
    (`aclose`: the answer's) makes the next read fail inside the innermost
    one, which ends them all.
    """
    await aclose()
    for _ in range(8):
        try:
            await stream.__anext__()
        except (StopAsyncIteration, Exception):
            return


def trailing_data(connection: object) -> bytes:
    """The bytes h11 received on `connection` past the answers it parsed (read, never set).

    Not published by httpcore: its HTTP/1.1 connection (`_connection`, under
    a proxy's or a plain connection) keeps an `h11.Connection` as
    `_h11_state`, whose `trailing_data` is public. Empty when the path is not
    there (another HTTP version, or another httpcore: the pinned test says so).
    """
    inner: object = connection
    for _ in range(4):
        state = getattr(inner, "_h11_state", None)
        if state is not None:
            data: bytes = state.trailing_data[0]
            return data
        inner = getattr(inner, "_connection", None)
        if inner is None:
            break
    return b""


def _trailing_data(pool: httpcore.AsyncConnectionPool) -> bool:
    """Whether an idle connection of `pool` holds bytes no request asked for."""
    return any(c.is_idle() and trailing_data(c) for c in pool.connections)


async def _close_trailing(pool: httpcore.AsyncConnectionPool) -> None:
    """Close the idle connections of `pool` that hold bytes no request asked for.

    An HTTP/1.1 connection between answers holds nothing: those bytes came
    after an answer's declared end, and would be read as the next request's
    answer. The pool drops a closed connection when it next looks.
    """
    import anyio

    with anyio.CancelScope(shield=True):
        for connection in pool.connections:
            if connection.is_idle() and trailing_data(connection):
                await connection.aclose()


async def _close_orphans(pool: httpcore.AsyncConnectionPool) -> None:
    """Close what cancelled requests left in a pool that has no request in flight.

    asyncio's own cancellation (``Task.cancel()``, ``asyncio.wait_for``) is not
    stopped by httpcore's shields, and can land just after a connection opened
    (it stays neither idle nor closed, encode/httpcore#1093), which would keep a
    socket and a pool slot for good. With no request in flight in the pool,
    every connection should be idle or closed: any other is such an orphan.
    Closed through its public ``aclose()``; the pool drops it when it next looks.
    """
    orphans = [c for c in pool.connections if not (c.is_idle() or c.is_closed())]
    if orphans:
        import anyio

        with anyio.CancelScope(shield=True):
            for connection in orphans:
                try:
                    await connection.aclose()
                except Exception:
                    continue


def _target(url: httpx.URL) -> tuple[httpcore.URL, bytes]:
    """httpcore's form of `url`, and its Host header (as httpx makes them)."""
    import httpcore

    target = httpcore.URL(
        scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
    )
    return target, url.netloc


def _raw_headers(headers: httpx.Headers) -> list[tuple[bytes, bytes]]:
    return headers.raw
