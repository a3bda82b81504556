"""Which HTTP transport runs under the SDK's `httpx.AsyncClient`.

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

import importlib.util
import urllib.request
from collections.abc import Callable
from functools import cache
from typing import TYPE_CHECKING, Any, Literal

import httpx

from ._exceptions import InvalidParameterError

if TYPE_CHECKING:
    import aiohttp

__all__ = ["TRANSPORTS", "TransportChoice", "default_transport"]

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
                    content = await answer.read()
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
            return httpx.Response(
                answer.status,
                headers=answer.raw_headers,
                content=content,
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

    return Transport
