"""The fleet's lease under a hostile review: foreign lease keys, cancelled fetchers."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import anyio
import pytest
import redis

from audioscape_async import AsyncClient, DeadlineExceededError
from audioscape_async import _cache as cache_module
from audioscape_async._redis import RedisBackend
from audioscape_async.emulator import EmulatorServer, Faults
from tests.serving.cache_support import process
from tests.serving.redis_server import RedisServer

#: redis-py runs on asyncio only.
pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])

QUERY = "dark cinematic boss tension"


def lease_of(client: AsyncClient) -> str:
    key = client._pipeline.cache_key(QUERY, 3, 0, None)
    assert key is not None
    return "audioscape:lease:" + cache_module._shared_key(key)


@pytest.mark.anyio
async def test_a_foreign_lease_key_longer_than_any_lease_does_not_block(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """A lease key set to expire later than any lease of ours (not ours) is replaced at once."""
    async with (
        RedisBackend(redis_server.url) as backend,
        process(emulator, backend, ttl=60) as client,
    ):
        with redis.Redis.from_url(redis_server.url) as direct:
            direct.set(lease_of(client), "foreign", ex=3600)
        with anyio.fail_after(2):
            page = await client.search(QUERY, limit=3)
    assert page.cache_status == "miss"


class SlowLeaseProxy:
    """A TCP proxy to Redis that passes every command on at once, but holds back for `delay`
    seconds each answer to a command naming a lease: the script runs, its answer is late."""

    def __init__(self, port: int, delay: float) -> None:
        self.port, self.delay = port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"redis://127.0.0.1:{self.listener.getsockname()[1]}/0"
        self.sockets: list[socket.socket] = [self.listener]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            server = socket.create_connection(("127.0.0.1", self.port))
            self.sockets += [client, server]
            asked = threading.Event()
            threading.Thread(target=self._up, args=(client, server, asked), daemon=True).start()
            threading.Thread(target=self._down, args=(server, client, asked), daemon=True).start()

    def _up(self, source: socket.socket, target: socket.socket, asked: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if b"lease:" in data:
                    asked.set()
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def _down(self, source: socket.socket, target: socket.socket, asked: threading.Event) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                if asked.is_set():
                    asked.clear()
                    time.sleep(self.delay)
                target.sendall(data)
        with contextlib.suppress(OSError):
            target.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        for sock in self.sockets:
            with contextlib.suppress(OSError):
                sock.close()


@pytest.mark.anyio
async def test_a_fetcher_cancelled_while_redis_ran_its_lease_script_lets_go(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """A caller cancelled while Redis gave it the lease (its answer late) lets go of it: the
    next process fetches at once instead of waiting for the lease to expire (10 s)."""
    proxy = SlowLeaseProxy(redis_server.port, delay=0.5)
    try:
        async with (
            RedisBackend(redis_server.url) as direct,
            RedisBackend(proxy.url, timeout=5) as slow,
            process(emulator, slow, ttl=60) as first,
            process(emulator, direct, ttl=60) as second,
        ):
            await second.search("load the scripts", limit=3)  # LEAD is in Redis's cache
            with anyio.move_on_after(0.25) as scope:
                await first.search(QUERY, limit=3)  # its LEAD ran; its answer is late
            assert scope.cancelled_caught
            with anyio.fail_after(3):
                page = await second.search(QUERY, limit=3)
    finally:
        proxy.close()
    assert page.cache_status == "miss"


@pytest.mark.anyio
@pytest.mark.parametrize("fallback", [False, True])
async def test_a_fetcher_out_of_time_while_redis_ran_its_lease_script_lets_go(
    emulator: EmulatorServer, redis_server: RedisServer, fallback: bool
) -> None:
    """A caller whose deadline passed while Redis gave it the lease (its answer late) lets go
    of it: the next process fetches at once instead of waiting for the lease to expire."""
    proxy = SlowLeaseProxy(redis_server.port, delay=0.5)
    try:
        async with (
            RedisBackend(redis_server.url) as direct,
            RedisBackend(proxy.url, timeout=5, fallback=fallback) as slow,
            process(emulator, slow, ttl=60) as first,
            process(emulator, direct, ttl=60) as second,
        ):
            await second.search("load the scripts", limit=3)  # LEAD is in Redis's cache
            with contextlib.suppress(DeadlineExceededError):
                await first.search(QUERY, limit=3, deadline=0.3)  # its LEAD ran, late
            with anyio.fail_after(3):
                page = await second.search(QUERY, limit=3)
    finally:
        proxy.close()
    assert page.cache_status in {"miss", "coalesced"}


@pytest.mark.anyio
async def test_a_fetcher_out_of_time_waiting_for_the_api_lets_go_of_its_lease(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """A process whose caller's deadline passes during the upstream call lets go of the
    lease: the next process fetches at once instead of waiting for it to expire (10 s)."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.5))
    async with (
        RedisBackend(redis_server.url) as backend,
        process(emulator, backend, ttl=60) as hurried,
        process(emulator, backend, ttl=60) as patient,
    ):
        with pytest.raises(DeadlineExceededError):
            await hurried.search(QUERY, limit=3, deadline=0.2)
        with anyio.fail_after(3):
            page = await patient.search(QUERY, limit=3)
    assert page.cache_status == "miss"
