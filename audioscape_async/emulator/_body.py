"""Reading a request body within bounds, for the search endpoint and the admin API alike.

A gateway in front of the API would refuse a body that is too large (413) or
too slow (408), and so does the emulator, without ever holding more than the
limit in memory.
"""

from __future__ import annotations

import anyio
from starlette.types import Receive

#: A body over the limit is still drained up to this many bytes in all, so a client
#: that sends it whole before reading reads the 413 instead of a reset connection;
#: past it (an endless body) the connection is closed at once.
_DRAIN_LIMIT = 1024 * 1024


async def read_bounded_body(
    receive: Receive, limit: int, seconds: float
) -> tuple[bytes, tuple[int, str] | None]:
    """The request body, or a refusal (413 too large, 408 too slow).

    Never holds more than `limit` bytes, never waits more than `seconds`.
    """
    chunks: list[bytes] = []
    size = 0
    with anyio.move_on_after(seconds) as scope:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                break
            chunk = message.get("body", b"")
            size += len(chunk)
            if size <= limit:
                if chunk:
                    chunks.append(chunk)
            elif size > _DRAIN_LIMIT:
                break
            if not message.get("more_body", False):
                break
    if size > limit:
        return b"", (413, f"Request body too large (limit {limit} bytes)")
    if scope.cancelled_caught:
        return b"", (408, f"Request body not received within {seconds:g} s")
    return b"".join(chunks), None
