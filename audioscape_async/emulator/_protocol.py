"""A uvicorn HTTP protocol that lets the emulator act on its sockets.

uvicorn answers 500 for an app that fails before it starts a response, so an
app alone cannot "drop" a connection. This subclass of uvicorn's h11
protocol wraps the app per connection to put a `ConnectionControl` for
the connection's transport into `scope["extensions"]`; the app closes it
for "drop" and "drop-mid-body", then waits for uvicorn's disconnect message
so uvicorn has nothing left to answer. It also closes connections stalled
by "hang" when the server stops, instead of waiting for an answer that
will never come.

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
