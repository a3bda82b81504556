"""A uvicorn HTTP protocol that lets the emulator act on its sockets.

uvicorn answers 500 for an app that fails before it starts a response, so an
app alone cannot "drop" a connection. This subclass of uvicorn's h11
protocol wraps the app per connection to put a `ConnectionControl` for
the connection's transport into `scope["extensions"]`; the app closes it
for "drop" and "drop-mid-body", then waits for uvicorn's disconnect message
so uvicorn has nothing left to answer. It also closes connections stalled
by "hang" when the server stops, instead of waiting for an answer that
will never come.

It also closes connections that sit idle: uvicorn's keep-alive timeout
only starts after an answer, and a byte of a new request cancels it, so a
client that connects and sends nothing, or half a request head, would hold
its connection for ever. Here a timer (uvicorn's `timeout_keep_alive`)
starts when the connection opens and after every answer, and a byte does not
stop it: if the request head is not complete when it fires, the connection
is closed. Once a request is being served, its body's time is the app's to
bound (408), and its answer's time the faults' business.

h11 is chosen over httptools because it is always installed with uvicorn.
"""

from __future__ import annotations

import asyncio

from starlette.types import ASGIApp, Receive, Scope, Send
from uvicorn.protocols.http.h11_impl import H11Protocol

from ._connection import CONNECTION_EXTENSION, ConnectionControl


class FaultCapableH11Protocol(H11Protocol):
    """uvicorn's h11 protocol, with each request's connection exposed to the app."""

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.control = ConnectionControl(transport)
        self.app = _with_control(self.app, self.control)
        self._head_timer: asyncio.TimerHandle | None = None
        self._arm_head_timer()

    def _arm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
        self._head_timer = self.loop.call_later(self.timeout_keep_alive, self._head_timed_out)

    def _head_timed_out(self) -> None:
        self._head_timer = None
        cycle = self.cycle
        if (cycle is None or cycle.response_complete) and not self.transport.is_closing():
            # No request is being served: the client sent nothing, or half a head.
            self.transport.close()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self.transport.is_closing():
            self._arm_head_timer()

    def connection_lost(self, exc: Exception | None) -> None:
        if getattr(self, "_head_timer", None) is not None:
            assert self._head_timer is not None
            self._head_timer.cancel()
            self._head_timer = None
        super().connection_lost(exc)

    def shutdown(self) -> None:
        if getattr(self, "control", None) is not None and self.control.hanging:
            self.control.close()
        super().shutdown()


def _with_control(app: ASGIApp, control: ConnectionControl) -> ASGIApp:
    async def with_control(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            extensions = {**scope.get("extensions", {}), CONNECTION_EXTENSION: control}
            scope = {**scope, "extensions": extensions}
        await app(scope, receive, send)

    return with_control
