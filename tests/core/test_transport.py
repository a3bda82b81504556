"""The transport choice (``transport=``): aiohttp on asyncio, httpx's own elsewhere, same errors.

Over real loopback sockets: the emulator in a thread (faults forced with its
fault header) and a tiny redirecting server of our own. Every behaviour is
checked on each transport that can run on the test's event loop.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import anyio
import httpx
import pytest

from audioscape_async import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    InvalidParameterError,
)
from audioscape_async import _transport as transport_module
from audioscape_async.emulator import FAULT_HEADER, EmulatorServer
from tests.reliability.resources import pool_state


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """One emulator in a thread for the whole module."""
    with EmulatorServer(tracks=500) as running:
        yield running


@pytest.fixture(params=["aiohttp", "httpx"])
def transport(request: pytest.FixtureRequest, anyio_backend: tuple[str, object]) -> str:
    """Each transport that can run on this test's event loop."""
    if request.param == "aiohttp" and anyio_backend[0] != "asyncio":
        pytest.skip("aiohttp runs only on asyncio")
    return str(request.param)


def _client(server: EmulatorServer, transport: str, **options: object) -> AsyncClient:
    return AsyncClient(server.api_key, base_url=server.url, transport=transport, **options)  # type: ignore[arg-type]


def _chosen(client: AsyncClient) -> str | None:
    return client._pipeline.shared.transport.chosen


@pytest.mark.anyio
async def test_auto_picks_aiohttp_on_asyncio_and_httpx_elsewhere(
    server: EmulatorServer, anyio_backend: tuple[str, object]
) -> None:
    """The default transport is aiohttp's on asyncio (aiohttp imported already: at once) and
    httpx's own on trio; both answer."""
    pytest.importorskip("aiohttp")
    async with _client(server, "auto") as client:
        page = await client.search("chill lo-fi beats", limit=5)
        assert len(page.tracks) == 5
        chosen = _chosen(client)
    assert chosen == ("aiohttp" if anyio_backend[0] == "asyncio" else "httpx")


@pytest.mark.anyio
async def test_answers_are_the_same_on_every_transport(server: EmulatorServer) -> None:
    """A page read over aiohttp equals the page read over httpx's own transport."""
    async with _client(server, "httpx") as plain:
        expected = await plain.search("dark cinematic boss tension", limit=50, offset=10)
    async with _client(server, "auto") as client:
        page = await client.search("dark cinematic boss tension", limit=50, offset=10)
    assert page.to_dict() == expected.to_dict()
    assert page.request_id


@pytest.mark.anyio
async def test_timeout_maps_to_api_timeout_error(server: EmulatorServer, transport: str) -> None:
    """A hanging server ends in APITimeoutError within the configured timeout."""
    client = _client(
        server, transport, timeout=0.3, max_retries=0, default_headers={FAULT_HEADER: "hang"}
    )
    async with client:
        started = time.monotonic()
        with pytest.raises(APITimeoutError):
            await client.search("chill lo-fi beats")
    assert time.monotonic() - started < 5


@pytest.mark.anyio
async def test_dropped_connection_maps_to_api_connection_error(
    server: EmulatorServer, transport: str
) -> None:
    """A connection the server drops is a connection error, not a timeout."""
    client = _client(server, transport, max_retries=0, default_headers={FAULT_HEADER: "drop"})
    async with client:
        with pytest.raises(APIConnectionError) as caught:
            await client.search("chill lo-fi beats")
    assert not isinstance(caught.value, APITimeoutError)


@pytest.mark.anyio
async def test_refused_connection_maps_to_api_connection_error(transport: str) -> None:
    """Nothing listening is a connection error, not a timeout."""
    with ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler) as closed:
        port = closed.server_address[1]
    client = AsyncClient(
        "key",
        base_url=f"http://127.0.0.1:{port}/v1",
        transport=transport,
        max_retries=0,  # type: ignore[arg-type]
    )
    async with client:
        with pytest.raises(APIConnectionError) as caught:
            await client.search("chill lo-fi beats")
    assert not isinstance(caught.value, APITimeoutError)


class _Redirect(BaseHTTPRequestHandler):
    hits = 0

    def do_POST(self) -> None:
        type(self).hits += 1
        self.rfile.read(int(self.headers.get("content-length", 0)))
        self.send_response(307)
        self.send_header("location", "http://127.0.0.1:9/elsewhere")
        self.send_header("content-length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:
        """Quiet."""


@pytest.mark.anyio
async def test_redirects_are_not_followed(transport: str) -> None:
    """A 307 is reported as an error after one request, never followed."""
    with ThreadingHTTPServer(("127.0.0.1", 0), _Redirect) as redirecting:
        thread = threading.Thread(target=redirecting.serve_forever, daemon=True)
        thread.start()
        _Redirect.hits = 0
        url = f"http://127.0.0.1:{redirecting.server_address[1]}/v1"
        try:
            async with AsyncClient(
                "key", base_url=url, transport=transport, max_retries=0
            ) as client:  # type: ignore[arg-type]
                with pytest.raises(APIStatusError) as caught:
                    await client.search("chill lo-fi beats")
        finally:
            redirecting.shutdown()
            thread.join()
    assert caught.value.status_code == 307
    assert "not followed" in caught.value.message
    assert _Redirect.hits == 1


@pytest.mark.anyio
async def test_explicit_aiohttp_on_trio_says_why(
    server: EmulatorServer, anyio_backend: tuple[str, object]
) -> None:
    """transport="aiohttp" works on asyncio and fails clearly on trio."""
    async with _client(server, "aiohttp", max_retries=0) as client:
        if anyio_backend[0] == "asyncio":
            assert len((await client.search("chill lo-fi beats", limit=1)).tracks) == 1
        else:
            with pytest.raises(InvalidParameterError, match="only on asyncio"):
                await client.search("chill lo-fi beats", limit=1)


def test_unknown_transport_is_refused() -> None:
    """Only "auto", "httpx" and "aiohttp" are accepted, at construction."""
    with pytest.raises(InvalidParameterError, match="transport"):
        AsyncClient("key", transport="curl")  # type: ignore[arg-type]


def test_aiohttp_with_own_http_client_is_refused() -> None:
    """transport="aiohttp" cannot change the transport of the user's own httpx client."""
    with pytest.raises(InvalidParameterError, match="own http_client"):
        AsyncClient("key", http_client=httpx.AsyncClient(), transport="aiohttp")


def test_missing_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """Without the extra, "auto" keeps httpx's own transport and "aiohttp" says what to install."""
    monkeypatch.setattr(transport_module, "_extra_installed", lambda: False)
    assert transport_module.default_transport("auto", own_http_client=False) == "httpx"
    with pytest.raises(InvalidParameterError, match=r"audioscape-async\[aiohttp\]"):
        AsyncClient("key", transport="aiohttp")


@pytest.mark.anyio
async def test_httpx_transport_spreads_many_requests_over_small_pools(
    server: EmulatorServer,
) -> None:
    """On httpx's own transport, 64 concurrent searches use several pools of at most 8
    connections; searches one at a time keep reusing a single connection."""
    async with _client(server, "httpx") as client:
        for _ in range(5):
            await client.search("chill lo-fi beats", limit=5)
        assert pool_state(client).open == 1
        pages: list[int] = []

        async def one() -> None:
            pages.append(len((await client.search("chill lo-fi beats", limit=5)).tracks))

        async with anyio.create_task_group() as group:
            for _ in range(64):
                group.start_soon(one)
        assert pages == [5] * 64
        pools = client._pipeline.shared.transport.wire.pools  # type: ignore[union-attr]
        sizes = [len(pool.connections) for pool in pools]
        assert max(sizes) <= 8
        assert sum(size > 0 for size in sizes) >= 2  # spread, not one pool
        assert sum(sizes) == pool_state(client).open <= 100
        assert pool_state(client).busy == 0


_FRESH_PROCESS = """
import asyncio, sys, threading

imported_in = []


class Watch:
    def find_spec(self, name, path=None, target=None):
        # An import, not a look for the extra (importlib.util.find_spec):
        if name == "aiohttp" and sys._getframe(2).f_code.co_name != "find_spec":
            imported_in.append(threading.current_thread() is threading.main_thread())
        return None


sys.meta_path.insert(0, Watch())
from audioscape_async import AsyncClient

async def main() -> None:
    async with AsyncClient(sys.argv[1], base_url=sys.argv[2]) as client:
        stage = client._pipeline.shared.transport
        seen = []
        for _ in range(20):
            assert len((await client.search("chill lo-fi beats", limit=2)).tracks) == 2
            seen.append(stage.chosen)
        print([seen, imported_in])

asyncio.run(main())
"""


def test_auto_chooses_once_at_the_first_call_and_imports_off_the_loop(
    server: EmulatorServer,
) -> None:
    """In a fresh process "auto" carries every call over aiohttp from the first on, and
    aiohttp is imported once, in a worker thread: never on the event loop's thread."""
    import ast
    import subprocess
    import sys

    done = subprocess.run(
        [sys.executable, "-c", _FRESH_PROCESS, server.api_key, server.url],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    seen, imported_in = ast.literal_eval(done.stdout.strip())
    assert seen == ["aiohttp"] * 20
    assert imported_in == [False]  # found once, by a thread that is not the loop's
