"""One `RedisBackend` used from several event loops at once: each loop its own bounded pool.

redis-py binds a connection to the loop that opened it. These tests share one
backend between real threads (sync `Client`s, ``asyncio.run`` in each thread,
a trio thread) against a real `redis-server`, and count the connections the
server saw (``INFO``): at most ``max_connections`` per loop, none left open
once the loops are done.


Each test has a redis-server of its own: it counts connections, and another test's client
that has not yet let go of one (a process still exiting, a pool not yet collected) would be
counted too.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable, Iterator

import pytest
import trio

from audioscape_async import AsyncClient, AudioScapeError, Client, RateLimit, SearchCache
from audioscape_async._redis import RedisBackend
from audioscape_async.emulator import EmulatorServer
from tests.serving.redis_server import RedisServer

#: The pool size of one loop in these tests.
POOL = 3


@pytest.fixture
def api() -> Iterator[EmulatorServer]:
    """The emulator, with no rate limit of its own."""
    with EmulatorServer(tracks=300) as running:
        yield running


def run_threads(target: Callable[[int], None], count: int, timeout: float = 60.0) -> None:
    """Run `target(n)` in `count` threads at once; fail if one of them hangs."""
    threads = [threading.Thread(target=target, args=(n,), name=f"worker {n}") for n in range(count)]
    for thread in threads:
        thread.start()
    ends = time.monotonic() + timeout
    for thread in threads:
        thread.join(max(0.0, ends - time.monotonic()))
    assert not [thread.name for thread in threads if thread.is_alive()], "a thread hung"


def sdk_threads() -> list[threading.Thread]:
    """The running threads, but the emulator's (its handlers run in anyio's worker threads,
    which stay idle a while after their last request)."""
    return [thread for thread in threading.enumerate() if thread.name != "AnyIO worker thread"]


def opened_since(server: RedisServer, before: int) -> int:
    """Connections the server accepted since `before` (a `total_connections_received`),
    less the one this query opens."""
    return server.info("total_connections_received") - before - 1


def connected_once_settled(server: RedisServer, timeout: float = 5.0) -> int:
    """`connected_clients` once only this query's own connection is left (or at `timeout`)."""
    ends = time.monotonic() + timeout
    while True:
        connected = server.info("connected_clients")
        if connected <= 1 or time.monotonic() > ends:
            return connected
        time.sleep(0.02)


def test_two_sync_clients_in_two_threads_share_one_backend(
    own_redis_server: RedisServer, api: EmulatorServer
) -> None:
    """120 searches by two sync Clients in two threads: all answered, the cache shared, at most
    2 x max_connections connections opened and none left open or running."""
    backend = RedisBackend(own_redis_server.url, max_connections=POOL)
    threads_before = sdk_threads()
    before = own_redis_server.info("total_connections_received")
    failures: list[BaseException] = []

    def worker(number: int) -> None:
        try:
            with Client(
                api.api_key,
                base_url=api.url,
                cache=SearchCache(backend=backend),
                rate_limit=RateLimit(requests_per_second=1_000, burst=100, backend=backend),
            ) as client:
                for index in range(60):
                    client.search(f"thread {number} query {index % 7}", limit=1)
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    run_threads(worker, 2)
    assert failures == []
    assert len(api.emulator.requests) == 14  # 7 queries per thread; the rest from Redis
    opened = opened_since(own_redis_server, before)
    print(f"\n120 searches from 2 threads opened {opened} Redis connections")
    assert opened <= 2 * POOL
    assert connected_once_settled(own_redis_server) == 1
    assert sdk_threads() == threads_before


def test_asyncio_run_in_two_threads_bounds_and_closes_each_pool(
    own_redis_server: RedisServer, api: EmulatorServer
) -> None:
    """Two threads each ``asyncio.run`` 60 concurrent searches on one backend, never closed:
    each loop stays within max_connections and its pool closes as its loop ends. A third
    thread on trio gets an AudioScapeError saying why, meanwhile."""
    backend = RedisBackend(own_redis_server.url, max_connections=POOL)
    threads_before = sdk_threads()
    before = own_redis_server.info("total_connections_received")
    failures: list[BaseException] = []
    trio_errors: list[AudioScapeError] = []

    async def searches(number: int) -> None:
        async with AsyncClient(
            api.api_key,
            base_url=api.url,
            cache=SearchCache(backend=backend),
            rate_limit=RateLimit(requests_per_second=1_000, burst=200, backend=backend),
        ) as client:
            await asyncio.gather(
                *(client.search(f"loop {number} query {i}", limit=1) for i in range(60))
            )

    async def on_trio() -> None:
        try:
            await backend.get("k")
        except AudioScapeError as error:
            trio_errors.append(error)

    def worker(number: int) -> None:
        try:
            if number == 2:
                trio.run(on_trio)
            else:
                asyncio.run(searches(number))
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    run_threads(worker, 3)
    assert failures == []
    assert len(api.emulator.requests) == 120
    assert len(trio_errors) == 1
    assert "asyncio only" in str(trio_errors[0])
    opened = opened_since(own_redis_server, before)
    print(f"\n120 concurrent searches from 2 loops opened {opened} Redis connections")
    assert opened <= 2 * POOL
    assert connected_once_settled(own_redis_server) == 1
    assert sdk_threads() == threads_before


def test_first_use_from_many_threads_at_once(own_redis_server: RedisServer) -> None:
    """Eight loops whose first commands start at the same instant each get a pool of their own
    and their own answers; every pool closes with its loop."""
    backend = RedisBackend(own_redis_server.url, max_connections=1)
    barrier = threading.Barrier(8, timeout=30)
    before = own_redis_server.info("total_connections_received")
    answers: dict[int, list[bytes | None]] = {}
    failures: list[BaseException] = []

    async def commands(number: int) -> None:
        barrier.wait()  # every loop runs by now: their first commands race
        mine = answers[number] = []
        for round_ in range(20):
            await backend.set(f"k{number}", f"{number}/{round_}".encode(), 60)
            mine.append(await backend.get(f"k{number}"))

    def worker(number: int) -> None:
        try:
            asyncio.run(commands(number))
        except BaseException as error:  # reported below, with the others
            failures.append(error)

    run_threads(worker, 8)
    assert failures == []
    for number in range(8):
        assert answers[number] == [f"{number}/{round_}".encode() for round_ in range(20)]
    assert opened_since(own_redis_server, before) <= 8
    assert connected_once_settled(own_redis_server) == 1


def test_aclose_in_one_loop_leaves_another_loops_commands_alone(
    own_redis_server: RedisServer,
) -> None:
    """While a thread's loop keeps using the backend, other loops open and close it five
    times: the thread's commands never fail, and its pool closes when its loop ends."""
    backend = RedisBackend(own_redis_server.url, max_connections=2)
    running = threading.Event()
    done = threading.Event()
    failures: list[BaseException] = []
    commands = 0

    async def busy() -> None:
        nonlocal commands
        await backend.set("busy", b"1", 60)
        running.set()
        while not done.is_set():
            assert await backend.get("busy") == b"1"
            commands += 1
            await asyncio.sleep(0.001)

    def worker(_number: int) -> None:
        try:
            asyncio.run(busy())
        except BaseException as error:  # reported below
            failures.append(error)
            running.set()

    async def use_and_close() -> None:
        async with backend:
            await backend.get("other")

    thread = threading.Thread(target=worker, args=(0,))
    thread.start()
    try:
        assert running.wait(10)
        for _ in range(5):
            asyncio.run(use_and_close())
            time.sleep(0.02)
    finally:
        done.set()
        thread.join(10)
    assert not thread.is_alive()
    assert failures == []
    assert commands > 5
    assert connected_once_settled(own_redis_server) == 1
