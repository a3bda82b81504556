"""The aiohttp wire: the SDK's own pool on aiohttp's HTTP/1.1 client, called directly (asyncio).

httpx's client layer (auth, cookies, redirects, event hooks, stream
wrappers) costs more CPU per search than aiohttp's whole exchange, and the
SDK uses none of it on a pool of its own. What this hands back is the SDK's
`Answer` with httpx's `Headers`; aiohttp's own errors become SDK errors in
`AiohttpWire.exchange`, and nowhere else. Cookies are not kept (an API client has no
use for them); proxies are the config's (`_proxy`), never aiohttp's own
reading of the environment.

A connection whose answer had bytes after its declared end (a server that
lied in Content-Length and appended another answer) is never reused: aiohttp
closes a connection whose parser holds unread data when it is released.
`tests/core/test_wire_soundness.py` proves it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from audioscape_async._exceptions import APIResponseValidationError

from ._base import Answer, Last, Outgoing, as_response, connection_error, timeout_error
from ._body import BodyReader

if TYPE_CHECKING:
    import ssl

    import aiohttp
    import yarl

    from ._proxy import Proxy

__all__ = ["AiohttpWire"]


class AiohttpWire:
    """The SDK's own pool on aiohttp: one request out, its answer read whole, within limits."""

    name = "aiohttp"

    def __init__(
        self, *, max_connections: int, keepalive_expiry: float, ssl_context: ssl.SSLContext
    ) -> None:
        import aiohttp  # imported already, off the event loop (`TransportStage`)

        self._aiohttp = aiohttp
        self._limit = max_connections
        self._keepalive = keepalive_expiry
        self._ssl = ssl_context
        self._session: aiohttp.ClientSession | None = None
        # The SDK passes the same URL, headers, timeout and proxy objects on every request
        # of a client: each is converted to aiohttp's form once, and again only on a change.
        self._url = Last(_yarl_url)
        # Pairs of str: aiohttp reads httpx.Headers as a mapping slowly, which shows
        # in the CPU per call (benchmarks/results.md, row 1).
        self._pairs = Last(_header_pairs)
        self._timeout = Last(_client_timeout)
        self._proxy = Last(_proxy_parts)

    @property
    def session(self) -> aiohttp.ClientSession | None:
        """The aiohttp session, once the first request opened it."""
        return self._session

    def _open(self) -> aiohttp.ClientSession:
        aiohttp = self._aiohttp
        connector = aiohttp.TCPConnector(
            limit=self._limit, keepalive_timeout=self._keepalive, ssl=self._ssl
        )
        self._session = aiohttp.ClientSession(
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),
            auto_decompress=False,  # the SDK decodes, with its limits
            trust_env=False,  # the config chose the proxy, by httpx's rules
        )
        return self._session

    async def exchange(self, outgoing: Outgoing, max_bytes: int) -> Answer:
        """Send `outgoing`; return its answer, the body read within the limits."""
        aiohttp = self._aiohttp
        session = self._session or self._open()
        extensions = outgoing.extensions
        try:
            proxy, proxy_headers = self._proxy(outgoing.proxy)
            async with session.request(
                "POST",
                self._url(outgoing.url),
                headers=self._pairs(outgoing.headers),
                data=outgoing.body,
                allow_redirects=False,
                compress=False,
                timeout=self._timeout(extensions.get("timeout")),
                server_hostname=extensions.get("sni_hostname"),
                proxy=proxy,
                proxy_headers=proxy_headers,
            ) as answer:
                headers = httpx.Headers(answer.raw_headers)
                reason = answer.reason.encode("latin-1", "replace") if answer.reason else None
                fields = answer.headers  # aiohttp's own: faster to look up than httpx's
                try:
                    reader = BodyReader(
                        fields.get("Content-Encoding", "identity"), max_bytes,
                        length=fields.get("Content-Length"),
                    )  # fmt: skip
                    async for data in answer.content.iter_any():
                        problem = reader.feed(data)
                        if problem is not None:
                            raise problem
                    content = reader.finish()
                except APIResponseValidationError as error:
                    error.response = as_response(
                        answer.status, headers, b"", outgoing, reason=reason
                    )
                    raise
                return Answer(answer.status, headers, content, outgoing, reason=reason)
        # aiohttp's own errors become SDK errors here, and nowhere else.
        except (TimeoutError, aiohttp.ServerTimeoutError) as error:
            raise timeout_error(error, outgoing) from error
        except (aiohttp.ClientError, OSError, ValueError) as error:
            # ValueError: what aiohttp says of a URL or proxy it cannot use.
            raise connection_error(error, outgoing) from error

    async def aclose(self) -> None:
        """Close the session and its connections."""
        if self._session is not None:
            await self._session.close()


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


def _proxy_parts(proxy: Proxy | None) -> tuple[yarl.URL | None, dict[str, str] | None]:
    if proxy is None:
        return None, None
    if proxy.is_socks:
        # A ValueError, as aiohttp's own about a proxy: a connection error, with this text.
        raise ValueError(
            f"aiohttp cannot use the SOCKS proxy {str(proxy.url)!r} set in the environment: "
            'use transport="httpx", or pass trust_env=False'
        )
    import yarl

    headers = None if proxy.authorization is None else {"Proxy-Authorization": proxy.authorization}
    return yarl.URL(str(proxy.url), encoded=True), headers
