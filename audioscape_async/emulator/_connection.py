"""The bridge between a network fault and the socket it acts on.

ASGI gives an app no handle on its connection, yet "drop" must close it
without a byte of answer and "hang" must stall it. The emulator's uvicorn
protocol (`_protocol`) puts a `ConnectionControl` into each request's
`scope["extensions"]` under `CONNECTION_EXTENSION`; the app finds it there.
Without it (in-process, or another server) network faults are emulated.
"""

from __future__ import annotations

import asyncio
from typing import Final

#: Where in `scope["extensions"]` the connection control is found.
CONNECTION_EXTENSION: Final = "audioscape.emulator.connection"


class ConnectionControl:
    """What a request may do to its own connection."""

    __slots__ = ("_transport", "hanging")

    def __init__(self, transport: asyncio.BaseTransport) -> None:
        self._transport = transport
        #: Set while a "hang" fault stalls the request, so a stopping server closes
        #: the connection instead of waiting for an answer that will never come.
        self.hanging = False

    def close(self) -> None:
        """Close the connection after flushing what was already written."""
        self._transport.close()

    @property
    def closed(self) -> bool:
        """Whether the connection is closed or closing."""
        return self._transport.is_closing()
