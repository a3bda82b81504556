"""Answers never cross an API key: cache, coalescing, Redis entries, gate and 429 pause.

Every shared thing belongs to one owner, the fingerprint of `(base_url, API
key)` (`audioscape_async._fingerprint`, whose arithmetic `test_fingerprint.py`
tests). Against the real emulator with two keys, one of them unknown to it (a
revoked key), and a real redis-server.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import anyio
import pytest

from audioscape_async import (
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidParameterError,
    RateLimitError,
    RetryPolicy,
    SearchCache,
)
from audioscape_async._redis import RedisBackend
from audioscape_async.emulator import EmulatorServer, Faults
from audioscape_async.emulator import KeyRateLimit as ServerRateLimit
from tests.serving.redis_server import RedisServer

VALID = "sk-valid-0123456789"
REVOKED = "sk-revoked-0123456789"
OTHER = "sk-other-0123456789"

asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """The emulator knowing VALID and OTHER, not REVOKED."""
    with EmulatorServer(tracks=300, api_keys=[VALID, OTHER]) as running:
        yield running


@pytest.fixture
def slow_server() -> Iterator[EmulatorServer]:
    """Every answer (a 401 too) held 0.3 s, so that two calls overlap."""
    with EmulatorServer(
        tracks=300, api_keys=[VALID], faults=Faults({"latency": 1.0}, latency=0.3)
    ) as running:
        yield running


def statuses(server: EmulatorServer, key: str) -> list[int | None]:
    key_id = server.emulator.key_id(key)
    return [record.status for record in server.emulator.requests if record.key_id == key_id]


@pytest.mark.anyio
async def test_a_revoked_key_is_never_answered_from_another_keys_page(
    server: EmulatorServer, sdk_transport: str
) -> None:
    """`with_options(api_key=revoked)` goes to the server and gets its 401, cache or not."""
    cache = SearchCache()
    async with AsyncClient(
        VALID, base_url=server.url, cache=cache, transport=sdk_transport
    ) as client:
        page = await client.search("dark boss", limit=5)
        assert page.cache_status == "miss"
        assert (await client.search("dark boss", limit=5)).cache_status == "hit"
        with pytest.raises(AuthenticationError):
            await client.with_options(api_key=REVOKED).search("dark boss", limit=5)
        # The valid key's entry is still its own.
        assert (await client.search("dark boss", limit=5)).cache_status == "hit"
    assert statuses(server, REVOKED) == [401]


@pytest.mark.anyio
async def test_two_clients_sharing_one_cache_never_share_a_page(server: EmulatorServer) -> None:
    """Two clients of two keys with one `SearchCache`: each key's pages are its own."""
    cache = SearchCache()
    async with (
        AsyncClient(VALID, base_url=server.url, cache=cache) as valid,
        AsyncClient(OTHER, base_url=server.url, cache=cache) as other,
        AsyncClient(REVOKED, base_url=server.url, cache=cache) as revoked,
    ):
        assert (await valid.search("calm piano", limit=3)).cache_status == "miss"
        assert (await other.search("calm piano", limit=3)).cache_status == "miss"
        assert (await other.search("calm piano", limit=3)).cache_status == "hit"
        with pytest.raises(AuthenticationError):
            await revoked.search("calm piano", limit=3)
    assert cache.stats()["entries"] == 2


@pytest.mark.anyio
async def test_coalescing_never_crosses_keys(
    slow_server: EmulatorServer, sdk_transport: str
) -> None:
    """Identical calls of two keys at once: each gets its own answer, both ways."""
    cache = SearchCache()
    async with AsyncClient(
        VALID, base_url=slow_server.url, cache=cache, transport=sdk_transport
    ) as client:
        revoked = client.with_options(api_key=REVOKED)
        outcomes: dict[str, object] = {}

        async def run(name: str, target: AsyncClient) -> None:
            try:
                outcomes[name] = (await target.search("storm", limit=4)).cache_status
            except AuthenticationError as error:
                outcomes[name] = error

        async with anyio.create_task_group() as group:
            group.start_soon(run, "revoked first", revoked)
            await anyio.sleep(0.05)
            group.start_soon(run, "valid", client)
        async with anyio.create_task_group() as group:
            group.start_soon(run, "valid again", client.with_options(timeout=5))
            group.start_soon(run, "revoked second", revoked)
    assert isinstance(outcomes["revoked first"], AuthenticationError)
    assert outcomes["valid"] == "miss"
    assert outcomes["valid again"] == "hit"
    assert isinstance(outcomes["revoked second"], AuthenticationError)
    assert statuses(slow_server, REVOKED) == [401, 401]


def test_sync_clients_of_two_keys_sharing_a_cache(server: EmulatorServer) -> None:
    """The sync `Client` keeps the same boundary: a revoked key gets its 401."""
    cache = SearchCache()
    with Client(VALID, base_url=server.url, cache=cache) as valid:
        assert valid.search("sunny day", limit=2).cache_status == "miss"
        with (
            Client(REVOKED, base_url=server.url, cache=cache) as revoked,
            pytest.raises(AuthenticationError),
        ):
            revoked.search("sunny day", limit=2)


@asyncio_only
@pytest.mark.anyio
async def test_redis_entries_are_per_key_across_processes(
    server: EmulatorServer, redis_server: RedisServer
) -> None:
    """Two backends (as two processes would) on one Redis: a key reads only its own entries."""
    async with (
        RedisBackend(redis_server.url) as one,
        RedisBackend(redis_server.url) as two,
        AsyncClient(VALID, base_url=server.url, cache=SearchCache(backend=one)) as valid,
        AsyncClient(REVOKED, base_url=server.url, cache=SearchCache(backend=two)) as revoked,
        AsyncClient(VALID, base_url=server.url, cache=SearchCache(backend=two)) as same_key,
    ):
        assert (await valid.search("night drive", limit=3)).cache_status == "miss"
        with pytest.raises(AuthenticationError):
            await revoked.search("night drive", limit=3)
        # The same key in another process shares the entry: the fleet still works.
        assert (await same_key.search("night drive", limit=3)).cache_status == "hit"
    assert statuses(server, REVOKED) == [401]


@asyncio_only
@pytest.mark.anyio
async def test_a_fleet_secret_names_its_entries(
    server: EmulatorServer, redis_server: RedisServer
) -> None:
    """`key_secret` changes every name the SDK writes; processes with one secret still meet."""
    async with (
        RedisBackend(redis_server.url, key_secret="fleet-a") as one,
        RedisBackend(redis_server.url, key_secret="fleet-b") as other,
        RedisBackend(redis_server.url, key_secret=b"fleet-a") as same,
        AsyncClient(VALID, base_url=server.url, cache=SearchCache(backend=one)) as first,
        AsyncClient(VALID, base_url=server.url, cache=SearchCache(backend=other)) as second,
        AsyncClient(VALID, base_url=server.url, cache=SearchCache(backend=same)) as third,
    ):
        assert (await first.search("rain", limit=2)).cache_status == "miss"
        assert (await second.search("rain", limit=2)).cache_status == "miss"
        assert (await third.search("rain", limit=2)).cache_status == "hit"
    assert "fleet-a" not in repr(one)


def test_backends_of_one_client_must_agree_on_the_secret() -> None:
    """A cache and a rate limit whose backends have different secrets are refused at once."""
    from audioscape_async import RateLimit

    one = RedisBackend("redis://127.0.0.1:1/0", key_secret="a")
    two = RedisBackend("redis://127.0.0.1:1/0", key_secret="b")
    with pytest.raises(InvalidParameterError, match="key_secret"):
        AsyncClient(
            VALID,
            base_url="http://127.0.0.1:1/developer/v1",
            cache=SearchCache(backend=one),
            rate_limit=RateLimit(requests_per_second=5, backend=two),
        )
    with pytest.raises(InvalidParameterError, match="key_secret") as caught:
        RedisBackend("redis://127.0.0.1:1/0", key_secret="")
    assert "must be a non-empty" in str(caught.value)


@pytest.mark.anyio
async def test_a_429_pause_holds_its_own_key_only(sdk_transport: str) -> None:
    """Key A's Retry-After pauses A's calls; a copy with key B goes to the server at once."""
    limit = ServerRateLimit(rate=0.5, burst=1, retry_after="seconds")
    with EmulatorServer(tracks=300, api_keys=[VALID, OTHER], rate_limit=limit) as tier:
        async with AsyncClient(
            VALID,
            base_url=tier.url,
            transport=sdk_transport,
            retry=RetryPolicy(max_retries=0),
        ) as client:
            await client.search("one", limit=1)
            with pytest.raises(RateLimitError):
                await client.search("two", limit=1)  # Retry-After: 2, not retried
            began = time.monotonic()
            await client.with_options(api_key=OTHER).search("three", limit=1)
            other_took = time.monotonic() - began
            began = time.monotonic()
            await client.search("four", limit=1)  # waits out its own pause, then goes
            own_took = time.monotonic() - began
    assert other_took < 0.5
    assert own_took > 1.0
    assert statuses(tier, OTHER) == [200]
    assert statuses(tier, VALID) == [200, 429, 200]
