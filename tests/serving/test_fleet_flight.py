"""One upstream call per key for the whole fleet: a Redis lease elects the fetcher of a
missing or stale page. Each `SearchCache` here stands for one process (its flights and
refreshes are its own); they share only the Redis server, as processes do."""

from __future__ import annotations

import time

import anyio
import pytest
import redis

from audioscape_async import (
    AsyncClient,
    DeadlineExceededError,
    InternalServerError,
    SearchResponse,
)
from audioscape_async import _cache as cache_module
from audioscape_async._redis import RedisBackend
from audioscape_async.emulator import EmulatorServer, Faults
from tests.helpers import eventually
from tests.serving.cache_support import process, searches
from tests.serving.redis_server import RedisServer

#: redis-py runs on asyncio only.
pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])

QUERY = "dark cinematic boss tension"


async def search_all(clients: list[AsyncClient], **options: object) -> list[SearchResponse]:
    pages: list[SearchResponse] = []

    async def one(client: AsyncClient) -> None:
        pages.append(await client.search(QUERY, limit=3, **options))  # type: ignore[arg-type]

    async with anyio.create_task_group() as group:
        for client in clients:
            group.start_soon(one, client)
    return pages


@pytest.mark.anyio
async def test_four_processes_missing_one_key_make_one_call(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """Four caches miss a cold key at once: one calls, three read its page from Redis."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
    async with RedisBackend(redis_server.url) as backend:
        clients = [process(emulator, backend, ttl=60) for _ in range(4)]
        pages = await search_all(clients)
        for client in clients:
            await client.aclose()
    assert searches(emulator) == 1
    assert sorted(page.cache_status or "" for page in pages) == ["coalesced"] * 3 + ["miss"]
    assert len({page.request_id for page in pages}) == 1


@pytest.mark.anyio
async def test_a_dead_fetchers_lease_is_taken_over_when_it_expires(
    emulator: EmulatorServer, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A lease whose holder died (never let go) delays the others until it expires, no more."""
    async with RedisBackend(redis_server.url) as backend:
        client = process(emulator, backend, ttl=60)
        key = client._pipeline.cache_key(QUERY, 3, 0, None)
        assert key is not None
        lease = "audioscape:lease:" + cache_module._shared_key(key)
        with redis.Redis.from_url(redis_server.url) as direct:
            direct.set(lease, "dead-process", px=600)
        started = time.monotonic()
        page = await client.search(QUERY, limit=3)
        waited = time.monotonic() - started
        await client.aclose()
    assert page.cache_status == "miss"
    assert 0.5 <= waited < 3
    assert searches(emulator) == 1


@pytest.mark.anyio
async def test_a_foreign_lease_key_without_expiry_does_not_block(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """A lease key nobody set to expire (not ours) is replaced at once."""
    async with RedisBackend(redis_server.url) as backend:
        client = process(emulator, backend, ttl=60)
        key = client._pipeline.cache_key(QUERY, 3, 0, None)
        assert key is not None
        with redis.Redis.from_url(redis_server.url) as direct:
            direct.set("audioscape:lease:" + cache_module._shared_key(key), "foreign")
        with anyio.fail_after(2):
            page = await client.search(QUERY, limit=3)
        await client.aclose()
    assert page.cache_status == "miss"


@pytest.mark.anyio
async def test_a_waiter_gives_up_at_its_own_deadline(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """While another process fetches for longer than a caller's deadline, the caller fails
    on time with DeadlineExceededError."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=1.5))
    async with RedisBackend(redis_server.url) as backend:
        slow, hurried = process(emulator, backend, ttl=60), process(emulator, backend, ttl=60)
        async with anyio.create_task_group() as group:
            group.start_soon(lambda: slow.search(QUERY, limit=3))
            await anyio.sleep(0.2)  # the slow one holds the lease now
            started = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await hurried.search(QUERY, limit=3, deadline=0.4)
            assert time.monotonic() - started < 0.8
        await slow.aclose()
        await hurried.aclose()
    assert searches(emulator) == 1


@pytest.mark.anyio
async def test_when_the_fetcher_fails_another_process_takes_over(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """The fetcher's error is its own: it lets go, and a waiting process calls itself."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
    emulator.emulator.force_fault("500")
    async with RedisBackend(redis_server.url) as backend:
        first, second = process(emulator, backend, ttl=60), process(emulator, backend, ttl=60)
        outcomes: list[object] = []

        async def one(client: AsyncClient) -> None:
            try:
                outcomes.append((await client.search(QUERY, limit=3)).cache_status)
            except InternalServerError as error:
                outcomes.append(type(error))

        async with anyio.create_task_group() as group:
            group.start_soon(one, first)
            await anyio.sleep(0.1)
            group.start_soon(one, second)
        await first.aclose()
        await second.aclose()
    assert outcomes == [InternalServerError, "miss"]
    assert searches(emulator) == 2


@pytest.mark.anyio
async def test_stale_pages_in_redis_are_refreshed_once_for_the_fleet(
    emulator: EmulatorServer, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three processes find a stale shared page: all serve it at once, one refreshes it."""
    now = [time.time()]
    monkeypatch.setattr(cache_module, "wall_clock", lambda: now[0])
    async with RedisBackend(redis_server.url) as backend:
        clients = [process(emulator, backend, ttl=2, stale_while_revalidate=10) for _ in range(3)]
        first = await clients[0].search(QUERY, limit=3)
        now[0] += 3
        emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
        pages = await search_all(clients)
        assert {page.cache_status for page in pages} == {"stale"}
        assert {page.request_id for page in pages} == {first.request_id}
        caches = [client._pipeline.shared.cache for client in clients]
        await eventually(lambda: sum(c.refreshes for c in caches if c is not None) >= 1)
        await eventually(lambda: all(not c._refreshing for c in caches if c is not None))
        fresh = await search_all(clients)
        for client in clients:
            await client.aclose()
    assert searches(emulator) == 2  # the first miss and one refresh
    assert {page.cache_status for page in fresh} == {"hit"}
    assert {page.request_id for page in fresh} != {first.request_id}
