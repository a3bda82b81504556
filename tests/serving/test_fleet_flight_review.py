"""The fleet's lease under a hostile review: foreign lease keys, cancelled fetchers."""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest
import redis

from audioscape_async import AsyncClient, SearchCache
from audioscape_async import _cache as cache_module
from audioscape_async._redis import RedisBackend
from audioscape_async.emulator import EmulatorServer
from tests.serving.redis_server import RedisServer

#: redis-py runs on asyncio only.
pytestmark = pytest.mark.parametrize("anyio_backend", ["asyncio"])

QUERY = "dark cinematic boss tension"


@pytest.fixture
def emulator() -> Iterator[EmulatorServer]:
    """An emulator of this test's own, whose request log counts the upstream calls."""
    with EmulatorServer() as server:
        yield server


def process(server: EmulatorServer, backend: RedisBackend, **cache: float) -> AsyncClient:
    """A client with a cache of its own over the shared backend: one process of a fleet."""
    return AsyncClient(
        server.api_key,
        base_url=server.url,
        cache=SearchCache(backend=backend, **cache),  # type: ignore[arg-type]
        transport="httpx",
        max_retries=0,
    )


def lease_of(client: AsyncClient) -> str:
    key = client._pipeline.cache_key(QUERY, 3, 0, None)
    assert key is not None
    return "audioscape:lease:" + cache_module._shared_key(key)


@pytest.mark.anyio
async def test_a_foreign_lease_key_longer_than_any_lease_does_not_block(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """A lease key set to expire later than any lease of ours (not ours) is replaced at once."""
    async with RedisBackend(redis_server.url) as backend:
        client = process(emulator, backend, ttl=60)
        redis.Redis.from_url(redis_server.url).set(lease_of(client), "foreign", ex=3600)
        with anyio.fail_after(2):
            page = await client.search(QUERY, limit=3)
        await client.aclose()
    assert page.cache_status == "miss"
