"""A connection whose answer had bytes after its declared end is closed, never reused.

A server that lies in Content-Length and appends a second answer must not
have that answer served to the next request on the connection (with a cache,
it would then be stored under that request's key). Over a raw-socket server,
on each wire the test's event loop can run; and a pin on the httpcore and h11
internals the httpx wire reads to see those bytes.
"""

from __future__ import annotations

import socket
import threading

import h11
import httpcore
import orjson
import pytest

from audioscape_async import AsyncClient
from audioscape_async._transport._httpx import trailing_data
from tests.reliability.servers import (
    PAGE,
    Handler,
    RawRequest,
    RawServer,
    read_request,
    response_bytes,
)

#: The answer a lying server appends: the same page with another total, easy to tell apart.
SMUGGLED = orjson.dumps(
    {**orjson.loads(PAGE), "meta": {**orjson.loads(PAGE)["meta"], "total": 999}}
)


def _appending_once() -> Handler:
    """A server's first answer is a page followed by a second, unasked answer; then plain pages."""
    appended = threading.Event()

    def handle(conn: socket.socket, request: RawRequest | None, stopping: threading.Event) -> None:
        while request is not None and not stopping.is_set():
            extra = b"" if appended.is_set() else response_bytes(200, SMUGGLED)
            appended.set()
            conn.sendall(response_bytes(200, PAGE) + extra)
            request = read_request(conn)

    return handle


@pytest.mark.anyio
async def test_an_appended_answer_is_never_served_to_the_next_request(
    sdk_transport: str,
) -> None:
    """The second search gets its own answer, on a new connection, not the appended one."""
    with RawServer(_appending_once()) as server:
        async with AsyncClient("key", base_url=server.url(), transport=sdk_transport) as client:  # type: ignore[arg-type]
            first = await client.search("chill lo-fi beats")
            second = await client.search("sad piano")
            third = await client.search("sad piano")
    assert [page.meta.total for page in (first, second, third)] == [1, 1, 1]
    assert server.connections == 2  # the tainted one closed; the next one reused


HTTPCORE_CHECKED = "1.0.9"
H11_CHECKED = "0.16.0"


@pytest.mark.anyio
async def test_the_h11_path_the_httpx_wire_reads_is_where_it_was() -> None:
    """httpcore and h11 are the versions the trailing-data read was checked on, and the bytes
    a server appended are found through a pooled connection: else the check went blind."""
    assert (httpcore.__version__, h11.__version__) == (HTTPCORE_CHECKED, H11_CHECKED), (
        "httpcore or h11 changed: check that an HTTP/1.1 connection still keeps its "
        "h11.Connection at connection._connection._h11_state (audioscape_async/_transport/"
        "_httpx.py, trailing_data), then update the versions pinned here"
    )
    with RawServer(_appending_once()) as server:
        async with httpcore.AsyncConnectionPool() as pool:
            answer = await pool.request(
                "POST", server.url() + "/search", headers={"Content-Length": "2"}, content=b"{}"
            )
            assert answer.content == PAGE
            [connection] = pool.connections
            assert connection.is_idle()
            assert trailing_data(connection) == response_bytes(200, SMUGGLED)
