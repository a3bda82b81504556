"""The transport stage: bytes out, status, headers and a bounded body back, or an SDK error.

`TransportStage.send` is the only code that touches the network, through a
`Wire` (`_base`): it queues calls beyond the pool's size (`_Slots`), holds the
whole attempt to a total time bound, and turns a close under a call into the
clear error it is. A stage stays on the event loop (and in the process) it
first ran in; anything else is a clear error, not a hang (`_context` says
which loop and process this is; in a forked child, `_pipeline.Shared.renew`
gives the client a new stage instead).

The wires, one module each, every one implementing `Wire`:

- `_httpx.PoolWire`: the SDK's own pool on httpcore, httpx's transport
  (asyncio and trio); `_httpx.ClientWire`: your `httpx.AsyncClient`, used as
  given;
- `_aiohttp.AiohttpWire`: the SDK's own pool on aiohttp's HTTP/1.1 client
  (asyncio only), less CPU per search than httpx's (benchmarks/results.md,
  rows 1 and 1a).

``transport=`` on the clients chooses the wire of the SDK's own pool:
``"httpx"``, ``"aiohttp"`` (an error when the extra is missing, at
construction, or when the first call runs on trio), or ``"auto"`` (the
default): aiohttp when the extra is installed and the client's first call
runs on asyncio (and needs no SOCKS proxy, which only httpx speaks), httpx
otherwise. The choice is made once, at the client's first call (the event
loop is not known before), and never changes. The wire's library is
imported and its TLS context loaded in a worker thread, so no event loop
waits on an import, not even the first call's.

Both wires read bodies the same way (`_body`), send through the proxy the
config chose from the environment (`_proxy`), and give the same answers: the
SDK's `Answer`, with httpx's `Headers` and, for errors, an `httpx.Response`.
"""

from __future__ import annotations

import sys
import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

from audioscape_async._context import closed_error, current_loop, fork_generation, on_asyncio
from audioscape_async._exceptions import APITimeoutError, AudioScapeError, InvalidParameterError
from audioscape_async._extras import installed, missing_text
from audioscape_async._logs import logger

from ._base import Answer, Outgoing, Wire
from ._body import too_large

if TYPE_CHECKING:
    import ssl

    import anyio
    import httpx

    from audioscape_async._config import ClientConfig

    from ._proxy import Proxy

__all__ = [
    "TRANSPORTS",
    "Answer",
    "Outgoing",
    "TransportChoice",
    "TransportStage",
    "Wire",
    "default_transport",
    "too_large",
]

#: What the ``transport=`` argument of the clients may be.
TransportChoice = Literal["auto", "httpx", "aiohttp"]
TRANSPORTS: tuple[TransportChoice, ...] = ("auto", "httpx", "aiohttp")


def _extra_installed() -> bool:
    return installed("aiohttp")  # looked for, not imported: it is imported off the event loop


def default_transport(choice: object, *, own_http_client: bool) -> TransportChoice:
    """Check `choice`; say what carries the SDK's own requests: httpx, aiohttp, or
    ``"auto"`` (aiohttp if the first request runs on asyncio).

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
                "transport", missing_text('transport="aiohttp"', "aiohttp", "aiohttp")
            )
        return "httpx"
    return "aiohttp" if choice == "aiohttp" else "auto"


def _prepare(library: str, trust_env: bool) -> ssl.SSLContext:
    """Import a wire's library and load the TLS context: in a worker thread, off the loop."""
    import importlib

    import httpx

    importlib.import_module(library)
    # httpx's certificates (certifi, or SSL_CERT_FILE/SSL_CERT_DIR), on every wire.
    return httpx.create_ssl_context(trust_env=trust_env)


class TransportStage:
    """The connection pool and everything done to send one request on it; see the module."""

    def __init__(
        self, http_client: httpx.AsyncClient | None, transport: object, config: ClientConfig
    ) -> None:
        self.owns_http = http_client is None
        self._choice = default_transport(transport, own_http_client=not self.owns_http)
        self._max_connections = config.max_connections
        self._keepalive_expiry = config.keepalive_expiry
        self._trust_env = config.trust_env
        # What carries the requests: your client from the start, else settled by the
        # first request (inside its event loop), and never changed.
        self._wire: Wire | None = None
        if http_client is not None:
            from ._httpx import ClientWire

            self._wire = ClientWire(http_client)
        # Calls beyond the pool's size wait here, not in httpcore's pool, which
        # rescans every queued request at every turn: 1,000 calls queued there took
        # 25 s (and timed out) where this queue takes 3. Your own http_client keeps
        # its own limits, unknown here.
        self._slots = _Slots(config.max_connections) if self.owns_http else None
        self._opening: anyio.Lock | None = None
        self._loop: object = None
        self._asyncio = False
        self._generation = fork_generation()
        self.closed = False

    @property
    def chosen(self) -> Literal["httpx", "aiohttp"] | None:
        """What carries the requests: httpx or aiohttp (None before the first request)."""
        return None if self._wire is None else self._wire.name  # type: ignore[return-value]

    @property
    def wire(self) -> Wire | None:
        """The wire that carries the requests (None before the first request)."""
        return self._wire

    def check_context(self) -> None:
        """Refuse, at once and clearly, a use the pool cannot serve."""
        if self.closed:
            raise closed_error()
        if self._generation != fork_generation():
            raise AudioScapeError(
                "this AsyncClient was created before the process forked; its connections "
                "belong to the parent: create a new client in each process"
            )
        loop = current_loop()
        if self._loop is None:
            self._asyncio = on_asyncio()
            if self._choice == "aiohttp" and not self._asyncio:
                raise InvalidParameterError(
                    "transport",
                    '"aiohttp" runs only on asyncio, and this request runs on another '
                    'event loop (trio?): use transport="auto" or "httpx"',
                )
            self._loop = loop
        elif loop is not self._loop:
            raise AudioScapeError(
                "this AsyncClient already runs on another event loop (another asyncio.run(), "
                "thread or trio run), where its connections live: create one client per event "
                "loop, or use the blocking Client from threads"
            )

    async def open(self, proxy: Proxy | None) -> Wire:
        """Settle the wire, at the first request: the choice, made once (see the module).

        The pipeline awaits it before a first call's turn at the rate gate, so that
        no turn is spent waiting for an import; `send` opens it too if need be.
        """
        import anyio
        import anyio.to_thread

        if self._opening is None:
            self._opening = anyio.Lock()
        async with self._opening:
            if self._wire is not None:  # settled by a request that came first
                return self._wire
            socks = proxy is not None and proxy.is_socks
            aiohttp = self._choice == "aiohttp" or (
                self._choice == "auto" and self._asyncio and not socks
            )
            library = "aiohttp" if aiohttp else "httpcore"
            try:
                ssl_context = await anyio.to_thread.run_sync(
                    _prepare, library, self._trust_env, abandon_on_cancel=True
                )
            except ImportError as error:  # pragma: no cover - a broken install of the extra
                if self._choice == "aiohttp":
                    raise AudioScapeError(f"aiohttp could not be imported: {error}") from error
                logger.warning("aiohttp could not be imported (%s); using httpx", error)
                library = "httpcore"
                ssl_context = await anyio.to_thread.run_sync(
                    _prepare, library, self._trust_env, abandon_on_cancel=True
                )
            if self.closed:
                raise closed_error(during_call=True)
            limits = {
                "max_connections": self._max_connections,
                "keepalive_expiry": self._keepalive_expiry,
                "ssl_context": ssl_context,
            }
            wire: Wire
            if library == "aiohttp":
                from ._aiohttp import AiohttpWire

                wire = AiohttpWire(**limits)  # type: ignore[arg-type]
            else:
                from ._httpx import PoolWire

                wire = PoolWire(**limits)  # type: ignore[arg-type]
            self._wire = wire
            return wire

    async def send(
        self,
        outgoing: Outgoing,
        *,
        bound: float | None,
        max_bytes: int,
        on_bound: Callable[[], APITimeoutError],
    ) -> Answer:
        """Send `outgoing`; return its answer, read whole within `max_bytes` and `bound` seconds.

        `on_bound()` makes the error for an attempt that ran out of its bound
        (its own timeout, or the call's deadline).
        """
        outer = sys.exc_info()[1]  # what the caller was handling, if anything
        import anyio  # imported where used: `import audioscape_async` stays light

        # The first call's import and TLS setup are not the attempt's: outside its bound.
        wire = self._wire or await self.open(outgoing.proxy)
        started = time.perf_counter()
        try:
            with anyio.fail_after(bound):
                slots = self._slots
                if slots is None:
                    answer = await wire.exchange(outgoing, max_bytes)
                else:
                    async with slots:
                        answer = await wire.exchange(outgoing, max_bytes)
        except TimeoutError as error:
            _forget_locals(error, outer)
            raise on_bound() from error
        except Exception as error:
            _forget_locals(error, outer)
            if not self.closed:
                raise
            # Closed under this call: whatever the pool said of it (a read on a closed
            # connection, your client's RuntimeError), the reason is the close.
            raise closed_error(during_call=True) from error
        answer.elapsed = time.perf_counter() - started
        return answer

    async def aclose(self) -> None:
        """Close the pool, if it is the SDK's own. Idempotent."""
        if self.closed:
            return
        self.closed = True
        if self.owns_http and self._wire is not None:
            import anyio

            with anyio.CancelScope(shield=True):
                await self._wire.aclose()


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
