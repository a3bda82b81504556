"""`_transport._body`: an answer's body is read within the hard limits, on every wire.

Past `max_response_bytes` (declared or read, decompressed), or inflating like a bomb,
an answer is refused at once as an `APIResponseValidationError`, having read and
allocated little of it; gzip and deflate (the encodings the client offers) are
read; any other encoding is refused. Against raw loopback servers, on each transport.
"""

from __future__ import annotations

import gzip
import socket
import threading
import time
import zlib
from collections.abc import Callable

import pytest

from audioscape_async import APIResponseValidationError, AsyncClient
from tests.helpers import API_KEY
from tests.reliability.servers import PAGE, RawRequest, RawServer, answer, response_bytes

QUERY = "chill lo-fi beats"


def _raw_client(server: RawServer, sdk_transport: str, **options: object) -> AsyncClient:
    options.setdefault("max_retries", 0)
    return AsyncClient(API_KEY, base_url=server.url(), transport=sdk_transport, **options)  # type: ignore[arg-type]


def _endless(conn: socket.socket, request: RawRequest | None, stop: threading.Event) -> None:
    """A chunked body that never ends: a megabyte of JSON-ish filler per chunk."""
    if request is None:
        return
    conn.sendall(
        b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    )
    chunk = b" " * (1 << 20)
    frame = f"{len(chunk):x}\r\n".encode() + chunk + b"\r\n"
    while not stop.is_set():
        try:
            conn.sendall(frame)
        except OSError:
            return


#: What a `RawServer` runs on each connection.
Handler = Callable[[socket.socket, RawRequest | None, threading.Event], None]


def _bomb(encoding: str) -> Handler:
    """A small compressed body that inflates to a gigabyte."""
    if encoding == "gzip":
        body = gzip.compress(b" " * (1 << 30), compresslevel=9)
    else:
        body = zlib.compress(b" " * (1 << 30), 9)
    return answer(200, body, **{"content-encoding": encoding})


@pytest.fixture(scope="module")
def gzip_bomb() -> Handler:
    """A gzip bomb handler, built once (compressing a gigabyte takes a while)."""
    return _bomb("gzip")


@pytest.mark.anyio
async def test_an_endless_body_is_cut_at_the_limit(sdk_transport: str) -> None:
    """An endless chunked body ends at `max_response_bytes` with a clear error."""
    with RawServer(_endless, lifetime=20) as server:
        async with _raw_client(server, sdk_transport, max_response_bytes=2 << 20) as client:
            with pytest.raises(APIResponseValidationError, match="max_response_bytes"):
                await client.search(QUERY)


@pytest.mark.anyio
async def test_a_declared_huge_body_is_refused_before_reading(sdk_transport: str) -> None:
    """A Content-Length of 2 GB is refused from the header alone."""

    def huge(conn: socket.socket, request: RawRequest | None, stop: threading.Event) -> None:
        if request is not None:
            conn.sendall(response_bytes(200, b"{", content_length=2 << 30))
            stop.wait(5)

    with RawServer(huge, lifetime=20) as server:
        async with _raw_client(server, sdk_transport) as client:
            started = time.monotonic()
            with pytest.raises(APIResponseValidationError, match="2,147,483,648 bytes"):
                await client.search(QUERY)
            assert time.monotonic() - started < 2


@pytest.mark.anyio
async def test_a_gzip_bomb_is_refused(
    sdk_transport: str,
    gzip_bomb: Callable[[socket.socket, RawRequest | None, threading.Event], None],
) -> None:
    """A gigabyte of gzip'd spaces is refused as a bomb, having decompressed little of it."""
    with RawServer(gzip_bomb, lifetime=20) as server:
        async with _raw_client(server, sdk_transport) as client:
            with pytest.raises(APIResponseValidationError, match=r"decompression bomb|larger"):
                await client.search(QUERY)


@pytest.mark.anyio
@pytest.mark.parametrize("encoding", ["gzip", "deflate"])
async def test_a_compressed_page_is_read(sdk_transport: str, encoding: str) -> None:
    """gzip and deflate answers decode to the same page as a plain one."""
    body = gzip.compress(PAGE) if encoding == "gzip" else zlib.compress(PAGE)
    with RawServer(answer(200, body, **{"content-encoding": encoding})) as server:
        async with _raw_client(server, sdk_transport) as client:
            page = await client.search(QUERY)
    assert page.tracks[0].name == "Raw Track"
    assert server.requests[0].headers["accept-encoding"] == "gzip, deflate"


@pytest.mark.anyio
async def test_an_unasked_encoding_is_refused(sdk_transport: str) -> None:
    """A body in an encoding the client did not offer is a validation error, not garbage."""
    with RawServer(answer(200, b"\x00\x01", **{"content-encoding": "br"})) as server:
        async with _raw_client(server, sdk_transport) as client:
            with pytest.raises(APIResponseValidationError, match="'br'"):
                await client.search(QUERY)


@pytest.mark.anyio
async def test_a_refused_bomb_holds_memory_to_about_the_limit(
    sdk_transport: str, gzip_bomb: Handler
) -> None:
    """Reading a gigabyte bomb allocates a few limits' worth at most, never the gigabyte."""
    import tracemalloc

    with RawServer(gzip_bomb, lifetime=20) as server:
        async with _raw_client(server, sdk_transport, max_response_bytes=4 << 20) as client:
            tracemalloc.start()
            try:
                with pytest.raises(APIResponseValidationError):
                    await client.search(QUERY)
                _, peak = tracemalloc.get_traced_memory()
            finally:
                tracemalloc.stop()
    assert peak < 24 << 20, f"peak {peak / 2**20:.1f} MiB"
