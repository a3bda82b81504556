"""Every deadline that ends a call in the cache stage ends it with `DeadlineExceededError`.

A follower waiting for an identical search in flight past its own deadline,
and a leader reading a shared store past it: both raise the SDK's
`DeadlineExceededError`, on asyncio, on trio and through the sync `Client`.
"""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import anyio
import anyio.to_thread
import pytest

from audioscape_async import AsyncClient, Client, SearchCache, SearchResponse
from audioscape_async._exceptions import DeadlineExceededError
from audioscape_async._redis import RedisBackend
from audioscape_async.emulator import EmulatorServer, Faults
from tests.reliability.resources import wait_until

QUERY = "dark boss"
#: Seconds the emulator holds each answer.
LATENCY = 0.6
#: The follower's deadline, well inside LATENCY.
DEADLINE = 0.1

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture
def slow_server() -> Iterator[EmulatorServer]:
    """An emulator holding every answer LATENCY seconds."""
    with EmulatorServer(tracks=300, faults=Faults({"latency": 1.0}, latency=LATENCY)) as running:
        yield running


@pytest.fixture
def silent_redis() -> Iterator[str]:
    """The URL of a server that accepts connections and never answers (a hung Redis)."""
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(16)  # connections complete in the backlog; nothing is ever read
        yield f"redis://127.0.0.1:{listener.getsockname()[1]}/0"


def in_flight(server: EmulatorServer) -> bool:
    """Whether a request reached `server` and waits for its answer (within 10 s)."""
    return wait_until(lambda: server.emulator.in_flight > 0, timeout=10.0)


@pytest.mark.anyio
async def test_a_follower_past_its_deadline_raises_deadline_exceeded(
    slow_server: EmulatorServer, sdk_transport: str
) -> None:
    """A search waiting for an identical one in flight ends at its deadline, with its error."""
    cache = SearchCache(ttl=60)
    leader_pages: list[SearchResponse] = []
    async with AsyncClient(
        slow_server.api_key, base_url=slow_server.url, cache=cache, transport=sdk_transport
    ) as client:

        async def leader() -> None:
            leader_pages.append(await client.search(QUERY, limit=5))

        async with anyio.create_task_group() as group:
            group.start_soon(leader)
            assert await anyio.to_thread.run_sync(in_flight, slow_server)
            began = time.monotonic()
            with pytest.raises(
                DeadlineExceededError,
                match=r"deadline was reached \(while waiting for an identical",
            ):
                await client.search(QUERY, limit=5, deadline=DEADLINE)
            waited = time.monotonic() - began
    assert DEADLINE * 0.9 <= waited < LATENCY
    assert [page.cache_status for page in leader_pages] == ["miss"]
    assert len(slow_server.emulator.requests) == 1  # the follower sent nothing


def test_a_sync_follower_past_its_deadline_raises_deadline_exceeded(
    slow_server: EmulatorServer,
) -> None:
    """Through one sync Client used by two threads, the waiting call ends at its deadline."""
    cache = SearchCache(ttl=60)
    statuses: list[str | None] = []
    failures: list[BaseException] = []
    with Client(slow_server.api_key, base_url=slow_server.url, cache=cache) as client:

        def leader() -> None:
            try:
                statuses.append(client.search(QUERY, limit=5).cache_status)
            except BaseException as error:  # raised again in the test's thread
                failures.append(error)

        thread = threading.Thread(target=leader, daemon=True)
        thread.start()
        assert in_flight(slow_server)
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError):
            client.search(QUERY, limit=5, deadline=DEADLINE)
        waited = time.monotonic() - began
        thread.join(30)
        assert not thread.is_alive()
    assert failures == []
    assert statuses == ["miss"]
    assert waited < LATENCY
    assert len(slow_server.emulator.requests) == 1


@asyncio_only
@pytest.mark.anyio
async def test_a_shared_store_read_past_the_deadline_raises_deadline_exceeded(
    silent_redis: str, audioscape_emulator: EmulatorServer
) -> None:
    """A leader reading a Redis that does not answer stops at the call's deadline, not Redis's."""
    backend = RedisBackend(silent_redis, connect_timeout=5.0, timeout=5.0)
    cache = SearchCache(ttl=60, backend=backend)
    server = audioscape_emulator
    async with backend, AsyncClient(server.api_key, base_url=server.url, cache=cache) as client:
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError, match=r"Redis at .* gave no answer"):
            await client.search(QUERY, limit=5, deadline=0.3)
        waited = time.monotonic() - began
    assert 0.25 <= waited < 2.0
    assert len(server.emulator.requests) == 0
