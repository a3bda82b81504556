"""The cache, coalescing, stale-if-error and breaker stages, end to end through the real client.

Every test talks to the emulator over a real socket; the stages under test are
the ones the client wires in (`AsyncClient(cache=..., circuit_breaker=...)`).
Time is driven through the modules' clocks (`_cache.clock`, `_breaker.clock`).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import anyio
import pytest

from audioscape_async import (
    AsyncClient,
    AuthenticationError,
    CircuitBreaker,
    CircuitOpenError,
    Client,
    InternalServerError,
    SearchCache,
    SearchResponse,
)
from audioscape_async import _breaker as breaker_module
from audioscape_async import _cache as cache_module
from audioscape_async.emulator import EmulatorServer, Faults
from tests.reliability.resources import wait_until

QUERY = "dark cinematic boss tension"


class Clock:
    """A monotonic clock the test moves forward."""

    def __init__(self) -> None:
        self.skew = 0.0

    def __call__(self) -> float:
        return time.monotonic() + self.skew


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """The cache's and the breaker's clock, which the test moves forward."""
    clock = Clock()
    monkeypatch.setattr(cache_module, "clock", clock)
    monkeypatch.setattr(breaker_module, "clock", clock)
    return clock


@pytest.fixture
def own_emulator() -> Iterator[EmulatorServer]:
    """An emulator of this test's own, which the test may stop."""
    with EmulatorServer(tracks=1_000) as server:
        yield server


def client_for(server: EmulatorServer, **options: object) -> AsyncClient:
    return AsyncClient(server.api_key, base_url=server.url, **options)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_a_thousand_identical_searches_make_one_request(
    audioscape_emulator: EmulatorServer,
) -> None:
    """1,000 concurrent identical searches: one request, 1 miss and 999 coalesced; then a hit."""
    pages: list[SearchResponse] = []
    async with client_for(audioscape_emulator, cache=SearchCache(ttl=60)) as client:

        async def search() -> None:
            pages.append(await client.search(QUERY, limit=5))

        async with anyio.create_task_group() as group:
            for _ in range(1_000):
                group.start_soon(search)
        assert Counter(page.cache_status for page in pages) == {"miss": 1, "coalesced": 999}
        assert len({tuple(track.asset_id for track in page.tracks) for page in pages}) == 1
        assert (await client.search(QUERY, limit=5)).cache_status == "hit"
    assert len(audioscape_emulator.emulator.requests) == 1


@pytest.mark.anyio
async def test_cache_false_neither_reads_nor_writes(audioscape_emulator: EmulatorServer) -> None:
    """`cache=False` sends every time, stores nothing and ignores what is stored."""
    async with client_for(audioscape_emulator, cache=SearchCache(ttl=60)) as client:
        bypass = await client.search(QUERY, limit=5, cache=False)
        assert bypass.cache_status is None
        assert (await client.search(QUERY, limit=5)).cache_status == "miss"  # nothing written
        assert (await client.search(QUERY, limit=5, cache=False)).cache_status is None
    assert len(audioscape_emulator.emulator.requests) == 3


@pytest.mark.anyio
async def test_no_cache_no_status(audioscape_emulator: EmulatorServer) -> None:
    """Without a cache every search is sent and `cache_status` is None."""
    async with client_for(audioscape_emulator) as client:
        assert (await client.search(QUERY)).cache_status is None
        assert (await client.search(QUERY)).cache_status is None
    assert len(audioscape_emulator.emulator.requests) == 2


@pytest.mark.anyio
async def test_errors_are_not_cached(audioscape_emulator: EmulatorServer) -> None:
    """A 503 is raised, and the next identical search asks the API again."""
    audioscape_emulator.emulator.force_fault("503")
    async with client_for(audioscape_emulator, cache=SearchCache(ttl=60), max_retries=0) as client:
        with pytest.raises(InternalServerError):
            await client.search(QUERY)
        assert (await client.search(QUERY)).cache_status == "miss"
    assert [r.status for r in audioscape_emulator.emulator.requests] == [503, 200]


@pytest.mark.anyio
async def test_stale_on_503_and_on_a_stopped_api(
    own_emulator: EmulatorServer, clock: Clock
) -> None:
    """An expired page is served stale when the API answers 503 or is gone."""
    cache = SearchCache(ttl=60, stale_if_error=3_600)
    async with client_for(own_emulator, cache=cache, max_retries=0) as client:
        fresh = await client.search(QUERY, limit=5)
        clock.skew = 61
        own_emulator.emulator.force_fault("503")
        on_503 = await client.search(QUERY, limit=5)
        own_emulator.stop()
        on_outage = await client.search(QUERY, limit=5)
    assert (on_503.cache_status, on_outage.cache_status) == ("stale", "stale")
    assert on_503.tracks == on_outage.tracks == fresh.tracks
    assert cache.stale == 2


@pytest.mark.anyio
async def test_a_401_is_raised_not_hidden_by_stale(
    audioscape_emulator: EmulatorServer, clock: Clock
) -> None:
    """A refused key is raised even when a stale page is at hand."""
    cache = SearchCache(ttl=60, stale_if_error=3_600)
    async with client_for(audioscape_emulator, cache=cache) as client:
        await client.search(QUERY)
    clock.skew = 61
    async with AsyncClient("wrong-key", base_url=audioscape_emulator.url, cache=cache) as client:
        with pytest.raises(AuthenticationError):
            await client.search(QUERY)


@pytest.mark.anyio
async def test_breaker_opens_fails_fast_and_probes(
    audioscape_emulator: EmulatorServer, clock: Clock
) -> None:
    """After 3 failures calls fail in well under 1 ms with no request; a probe closes it."""
    emulator = audioscape_emulator.emulator
    emulator.set_faults({"503": 1.0})
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=30)
    async with client_for(audioscape_emulator, circuit_breaker=breaker, max_retries=0) as client:
        for _ in range(3):
            with pytest.raises(InternalServerError):
                await client.search(QUERY)
        assert breaker.state == "open"
        emulator.set_faults(None)
        fastest = float("inf")
        for _ in range(20):
            started = time.perf_counter()
            with pytest.raises(CircuitOpenError) as caught:
                await client.search(QUERY)
            fastest = min(fastest, time.perf_counter() - started)
        assert fastest < 1e-3
        assert 0 < caught.value.retry_in <= 30
        assert len(emulator.requests) == 3
        clock.skew = 31
        probe = await client.search(QUERY)
        assert breaker.state == "closed"
        assert probe.status_code == 200
    assert len(emulator.requests) == 4


@pytest.mark.anyio
async def test_open_circuit_serves_stale(audioscape_emulator: EmulatorServer, clock: Clock) -> None:
    """With the circuit open, an expired page is served stale without a request."""
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=600)
    cache = SearchCache(ttl=60, stale_if_error=3_600)
    async with client_for(
        audioscape_emulator, cache=cache, circuit_breaker=breaker, max_retries=0
    ) as client:
        await client.search(QUERY)
        audioscape_emulator.emulator.force_fault("503")
        with pytest.raises(InternalServerError):
            await client.search("another query")
        assert breaker.state == "open"
        clock.skew = 61
        assert (await client.search(QUERY)).cache_status == "stale"
    assert len(audioscape_emulator.emulator.requests) == 2


@pytest.mark.anyio
async def test_with_options_copies_share_cache_and_breaker(
    audioscape_emulator: EmulatorServer,
) -> None:
    """A `with_options` copy hits the original's cache and sees its open circuit."""
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=30)
    async with client_for(
        audioscape_emulator, cache=SearchCache(ttl=60), circuit_breaker=breaker, max_retries=0
    ) as client:
        await client.search(QUERY)
        copy = client.with_options(timeout=30, max_retries=0)
        assert (await copy.search(QUERY)).cache_status == "hit"
        audioscape_emulator.emulator.force_fault("503")
        with pytest.raises(InternalServerError):
            await copy.search("another query")
        with pytest.raises(CircuitOpenError):
            await client.search("a third query")
    assert len(audioscape_emulator.emulator.requests) == 2


@pytest.mark.anyio
async def test_cancelled_leader_does_not_cancel_followers(
    audioscape_emulator: EmulatorServer,
) -> None:
    """Cancelling the caller whose request is in flight leaves the others their page."""
    audioscape_emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
    pages: list[SearchResponse] = []
    async with client_for(audioscape_emulator, cache=SearchCache(ttl=60)) as client:

        async def follower() -> None:
            pages.append(await client.search(QUERY))

        async def cancel_once_sent(leader: anyio.CancelScope) -> None:
            # Cancel the leader while its request is at the server (on a slow machine a
            # fixed delay may cancel it before it was sent, and then there is nothing to share).
            def sent() -> bool:
                return emulator.in_flight > 0

            assert await anyio.to_thread.run_sync(wait_until, sent), "the request was never sent"
            leader.cancel()

        emulator = audioscape_emulator.emulator
        async with anyio.create_task_group() as group:
            with anyio.CancelScope() as leader:
                group.start_soon(follower)  # started after the leader below
                group.start_soon(follower)
                group.start_soon(cancel_once_sent, leader)
                await client.search(QUERY)
        assert leader.cancelled_caught
    assert len(pages) == 2
    assert {page.cache_status for page in pages} <= {"miss", "coalesced"}
    # The leader's request (the client left it) and the one a follower made in its place.
    assert await anyio.to_thread.run_sync(wait_until, lambda: emulator.in_flight == 0)
    assert len(emulator.requests) == 2


def test_sync_client_coalesces_threads(audioscape_emulator: EmulatorServer) -> None:
    """The blocking client shares one request among 100 threads, then answers from the cache."""
    audioscape_emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
    server = audioscape_emulator
    with (
        Client(server.api_key, base_url=server.url, cache=SearchCache(ttl=60)) as client,
        ThreadPoolExecutor(32) as pool,
    ):
        pages = list(pool.map(lambda _: client.search(QUERY, limit=5), range(100)))
        assert client.search(QUERY, limit=5).cache_status == "hit"
    statuses = Counter(page.cache_status for page in pages)
    assert statuses["miss"] == 1
    assert statuses["coalesced"] >= 16  # the threads of the pool that met the request in flight
    assert statuses["coalesced"] + statuses["hit"] == 99
    assert len(server.emulator.requests) == 1


def test_sync_client_stale_and_breaker(own_emulator: EmulatorServer, clock: Clock) -> None:
    """The blocking client serves stale when the API is gone, and its breaker opens."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    with Client(
        own_emulator.api_key,
        base_url=own_emulator.url,
        cache=SearchCache(ttl=60, stale_if_error=3_600),
        circuit_breaker=breaker,
        max_retries=0,
    ) as client:
        client.search(QUERY)
        own_emulator.stop()
        clock.skew = 61
        statuses = [client.search(QUERY).cache_status for _ in range(4)]
        assert breaker.state == "open"
    assert statuses == ["stale"] * 4
