"""One `SearchCache` shared across threads and event loops: each loop works, none hangs.

A flight belongs to the loop of its leader (`audioscape_async._cache`): a
caller on another loop leads its own call instead of waiting on a primitive it
cannot wait on. Real threads against the emulator, whose answers are held
0.5 s so that the identical searches of the two threads overlap; every thread
is bounded by a timeout, so a hang fails the test instead of stalling it.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

import anyio
import pytest
import trio

from audioscape_async import AsyncClient, Client, SearchCache
from audioscape_async.emulator import EmulatorServer, Faults
from tests.reliability.resources import wait_until

T = TypeVar("T")

QUERY = "dark boss"
#: Seconds the emulator holds each answer: far longer than the threads take to line up.
LATENCY = 0.5
#: Seconds a thread may take before the test calls it a hang.
HANG = 30.0


@pytest.fixture
def slow_server() -> Iterator[EmulatorServer]:
    """An emulator holding every answer LATENCY seconds."""
    with EmulatorServer(tracks=300, faults=Faults({"latency": 1.0}, latency=LATENCY)) as running:
        yield running


def in_threads(*targets: Callable[[threading.Barrier], T]) -> list[T]:
    """Run each target in a daemon thread of its own; their results, in order.

    Each target gets a barrier to wait on just before its identical search, so
    the searches start together. The first error of a thread is raised here; a
    thread still running after HANG seconds fails the test.
    """
    barrier = threading.Barrier(len(targets))
    results: list[T | None] = [None] * len(targets)
    errors: list[BaseException | None] = [None] * len(targets)

    def run(index: int, target: Callable[[threading.Barrier], T]) -> None:
        try:
            results[index] = target(barrier)
        except BaseException as error:  # handed to the test's thread, raised there
            errors[index] = error
            barrier.abort()  # the other threads must not wait for this one

    threads = [
        threading.Thread(target=run, args=(index, target), daemon=True)
        for index, target in enumerate(targets)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(HANG)
    hung = sum(thread.is_alive() for thread in threads)
    assert hung == 0, f"{hung} thread(s) still running after {HANG:g} s: a hang"
    for error in errors:
        if error is not None:
            raise error
    return results  # type: ignore[return-value]


def lined_up(barrier: threading.Barrier) -> None:
    """Wait for the other threads (bounded: a broken barrier raises)."""
    barrier.wait(HANG)


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_two_sync_clients_in_two_threads_share_one_cache(
    slow_server: EmulatorServer, transport: str
) -> None:
    """Two sync Clients in two threads, one cache, the same search at once: both get the page."""
    cache = SearchCache(ttl=60)

    def one(barrier: threading.Barrier) -> list[str | None]:
        with Client(
            slow_server.api_key, base_url=slow_server.url, cache=cache, transport=transport
        ) as client:
            lined_up(barrier)
            first = client.search(QUERY, limit=5)
            again = client.search(QUERY, limit=5)
        assert first.tracks == again.tracks
        return [first.cache_status, again.cache_status]

    statuses = in_threads(one, one)
    # Each loop led its own call (one request each), then both read the stored page.
    assert statuses == [["miss", "hit"], ["miss", "hit"]]
    assert len(slow_server.emulator.requests) == 2
    assert cache.stats()["entries"] == 1
    assert cache._flights == {}  # nothing left in flight


@pytest.mark.parametrize("transport", ["httpx", "aiohttp"])
def test_asyncio_run_in_two_threads_share_one_cache(
    slow_server: EmulatorServer, transport: str
) -> None:
    """`asyncio.run` in two threads, one cache: 20 identical searches in each, one call per loop."""
    cache = SearchCache(ttl=60)

    async def searches(barrier: threading.Barrier) -> list[str | None]:
        async with AsyncClient(
            slow_server.api_key, base_url=slow_server.url, cache=cache, transport=transport
        ) as client:
            lined_up(barrier)
            pages = await asyncio.gather(*(client.search(QUERY, limit=5) for _ in range(20)))
        return sorted(page.cache_status or "" for page in pages)

    def one(barrier: threading.Barrier) -> list[str | None]:
        return asyncio.run(searches(barrier))

    for statuses in in_threads(one, one):
        assert statuses == ["coalesced"] * 19 + ["miss"]
    assert len(slow_server.emulator.requests) == 2
    assert cache._flights == {}


def test_asyncio_and_trio_in_two_threads_share_one_cache(slow_server: EmulatorServer) -> None:
    """asyncio in one thread and trio in another, one cache: each loop gets its pages."""
    cache = SearchCache(ttl=60)

    async def searches(barrier: threading.Barrier) -> list[str]:
        statuses: list[str] = []
        async with AsyncClient(
            slow_server.api_key, base_url=slow_server.url, cache=cache
        ) as client:

            async def one() -> None:
                statuses.append((await client.search(QUERY, limit=5)).cache_status or "")

            lined_up(barrier)
            async with anyio.create_task_group() as group:
                for _ in range(10):
                    group.start_soon(one)
            await one()
        return statuses

    def on_asyncio(barrier: threading.Barrier) -> list[str]:
        return asyncio.run(searches(barrier))

    def on_trio(barrier: threading.Barrier) -> list[str]:
        return trio.run(searches, barrier)

    for statuses in in_threads(on_asyncio, on_trio):
        assert sorted(statuses[:10]) == ["coalesced"] * 9 + ["miss"]
        assert statuses[10] == "hit"
    assert len(slow_server.emulator.requests) == 2
    assert cache._flights == {}


def test_a_follower_on_another_thread_never_waits_on_the_leaders_loop(
    slow_server: EmulatorServer,
) -> None:
    """A search on a second loop while the first loop's call is in flight ends on its own."""
    cache = SearchCache(ttl=60)
    leading = threading.Event()

    def leader(barrier: threading.Barrier) -> str | None:
        with Client(slow_server.api_key, base_url=slow_server.url, cache=cache) as client:
            lined_up(barrier)
            leading.set()
            return client.search(QUERY, limit=5).cache_status

    def latecomer(barrier: threading.Barrier) -> str | None:
        with Client(slow_server.api_key, base_url=slow_server.url, cache=cache) as client:
            lined_up(barrier)
            assert leading.wait(HANG)
            # Until the leader's call is at the server.
            assert wait_until(lambda: slow_server.emulator.in_flight > 0, timeout=HANG)
            return client.search(QUERY, limit=5, deadline=5.0).cache_status

    assert in_threads(leader, latecomer) == ["miss", "miss"]
    assert cache._flights == {}
