"""Environment proxies are honoured on every wire, as httpx honours them; trust_env=False and
NO_PROXY go direct; the insecure-URL warning fires only when a proxy really carries the key.

Against a real forward proxy on 127.0.0.1 (a raw-socket relay that counts the
connections it carries) in front of a raw-socket API server, which records the
request line: a request that came through a forward proxy names the absolute URL.
"""

from __future__ import annotations

import contextlib
import socket
import sys
import threading
import urllib.parse
from collections.abc import Iterator

import httpx
import pytest

from audioscape_async import AsyncClient, Client, InsecureURLWarning
from tests.reliability.servers import RawServer, answer, read_request

_PROXY_VARIABLES = ("http_proxy", "https_proxy", "all_proxy", "no_proxy")


class ForwardProxy:
    """A forward HTTP proxy on 127.0.0.1: reads a request in absolute form, relays the bytes."""

    def __init__(self) -> None:
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        #: How many client connections it carried.
        self.connections = 0
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._thread = threading.Thread(target=self._serve, daemon=True)
        self._thread.start()

    def _serve(self) -> None:
        while not self._stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            self.connections += 1
            thread = threading.Thread(target=self._relay, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()
        self._sock.close()

    def _relay(self, conn: socket.socket) -> None:
        with conn:
            request = read_request(conn)
            if request is None:
                return
            target = urllib.parse.urlsplit(request.head.split(b" ")[1].decode())
            with socket.create_connection((target.hostname, target.port or 80)) as upstream:
                upstream.sendall(request.head + b"\r\n\r\n" + request.body)
                back = threading.Thread(target=self._pipe, args=(upstream, conn), daemon=True)
                back.start()
                self._pipe(conn, upstream)
                back.join(5)

    def _pipe(self, source: socket.socket, sink: socket.socket) -> None:
        source.settimeout(0.05)
        while not self._stopping.is_set():
            try:
                data = source.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                break
            if not data:
                break
            with contextlib.suppress(OSError):
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(5)
        for thread in self._threads:
            thread.join(5)


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ForwardProxy]:
    """A running forward proxy, and an environment with no proxy settings but the test's."""
    for name in _PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.upper(), raising=False)
    running = ForwardProxy()
    yield running
    running.close()


@pytest.fixture
def api() -> Iterator[RawServer]:
    """The API: a raw server answering every request with a page."""
    with RawServer(answer()) as server:
        yield server


def _through_proxy(api: RawServer) -> list[bool]:
    """For each connection the API saw, whether its request came in a proxy's absolute form."""
    return [request.head.startswith(b"POST http://") for request in api.requests]


async def _searches(client: AsyncClient, count: int) -> None:
    for _ in range(count):
        assert (await client.search("chill lo-fi beats")).tracks


async def _search_twice(api: RawServer, transport: str, **options: object) -> None:
    async with AsyncClient("key", base_url=api.url(), transport=transport, **options) as client:  # type: ignore[arg-type]
        for _ in range(2):
            assert (await client.search("chill lo-fi beats")).tracks


@pytest.mark.anyio
async def test_an_environment_proxy_carries_every_call(
    sdk_transport: str, proxy: ForwardProxy, api: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With HTTP_PROXY set, the calls go through the proxy (one kept connection), and the
    key crossing it in plain http is warned of, once, at the first answer, naming the line
    that made the client."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    client = AsyncClient("key", base_url=api.url(), transport=sdk_transport)  # type: ignore[arg-type]
    made_at = sys._getframe().f_lineno - 1
    async with client:
        with pytest.warns(InsecureURLWarning, match="through a proxy") as caught:
            await _searches(client, 2)
    assert len(caught) == 1
    assert (caught[0].filename, caught[0].lineno) == (__file__, made_at)
    assert proxy.connections == 1
    assert _through_proxy(api) == [True]


def test_the_sync_client_warns_of_a_proxy_at_its_first_answer_too(
    proxy: ForwardProxy, api: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The blocking Client's answer arrives in its loop's thread; the warning names your line."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with Client("key", base_url=api.url()) as client:
        made_at = sys._getframe().f_lineno - 1
        with pytest.warns(InsecureURLWarning, match="through a proxy") as caught:
            pages = [client.search("chill lo-fi beats") for _ in range(2)]
    assert all(page.tracks for page in pages)
    assert len(caught) == 1
    assert (caught[0].filename, caught[0].lineno) == (__file__, made_at)


@pytest.mark.anyio
async def test_all_proxy_carries_calls_too(
    sdk_transport: str, proxy: ForwardProxy, api: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """ALL_PROXY applies when the scheme has no proxy of its own."""
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    client = AsyncClient("key", base_url=api.url(), transport=sdk_transport)  # type: ignore[arg-type]
    async with client:
        with pytest.warns(InsecureURLWarning):
            assert (await client.search("chill lo-fi beats")).tracks
    assert proxy.connections == 1
    assert _through_proxy(api) == [True]


@pytest.mark.anyio
@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "127.0.0.0/8"])
async def test_no_proxy_goes_direct_without_a_warning(
    sdk_transport: str,
    proxy: ForwardProxy,
    api: RawServer,
    monkeypatch: pytest.MonkeyPatch,
    no_proxy: str,
) -> None:
    """A host listed in NO_PROXY goes direct, and no warning speaks of a proxy."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    await _search_twice(api, sdk_transport)  # any warning fails the test
    assert proxy.connections == 0
    assert _through_proxy(api) == [False]


@pytest.mark.anyio
async def test_trust_env_false_goes_direct_without_a_warning(
    sdk_transport: str, proxy: ForwardProxy, api: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """trust_env=False leaves the environment's proxies out, and warns of none."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    await _search_twice(api, sdk_transport, trust_env=False)
    assert proxy.connections == 0
    assert _through_proxy(api) == [False]


@pytest.mark.anyio
async def test_with_options_can_turn_the_environment_off(
    sdk_transport: str, proxy: ForwardProxy, api: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A with_options(trust_env=False) copy goes direct on the pool it shares; the client
    itself still goes through the proxy."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    client = AsyncClient("key", base_url=api.url(), transport=sdk_transport)  # type: ignore[arg-type]
    async with client:
        direct = client.with_options(trust_env=False)
        assert (await direct.search("chill lo-fi beats")).tracks  # direct: no warning
        with pytest.warns(InsecureURLWarning):
            assert (await client.search("chill lo-fi beats")).tracks
    assert proxy.connections == 1
    assert sorted(_through_proxy(api)) == [False, True]


@pytest.mark.anyio
async def test_your_own_http_client_keeps_its_own_setting(
    proxy: ForwardProxy, api: RawServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Your http_client decides for itself: with trust_env=False it goes direct whatever the
    SDK's trust_env, and the SDK warns of no proxy it does not use."""
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    http = httpx.AsyncClient(trust_env=False)
    async with http, AsyncClient("key", base_url=api.url(), http_client=http) as client:
        assert (await client.search("chill lo-fi beats")).tracks
    assert proxy.connections == 0
    assert _through_proxy(api) == [False]


def test_trust_env_must_be_a_bool() -> None:
    """trust_env is checked at construction, as every argument is."""
    from audioscape_async import InvalidParameterError

    with pytest.raises(InvalidParameterError, match="trust_env"):
        AsyncClient("key", trust_env="no")  # type: ignore[arg-type]
