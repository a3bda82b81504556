"""Stale-while-revalidate: a stale page at once, one background refresh per key, owned by
the client whose call found it."""

from __future__ import annotations

import contextvars
import logging
import threading
import time

import anyio
import pytest

from audioscape_async import (
    AsyncClient,
    AuthenticationError,
    Client,
    InvalidParameterError,
    SearchCache,
    SearchResponse,
)
from audioscape_async import _cache as cache_module
from audioscape_async.emulator import EmulatorServer, Faults
from tests.helpers import eventually
from tests.serving.cache_support import CacheClock, client_for, searches

QUERY = "dark cinematic boss tension"


async def settle(cache: SearchCache, count: int, key: str = "refreshes") -> None:
    """Wait (bounded) until the cache counted `count` refreshes (or failures)."""
    await eventually(lambda: cache.stats()[key] >= count)


def test_stale_while_revalidate_is_checked() -> None:
    """A negative or non-number window, or a zero max_refreshes, is refused by name."""
    with pytest.raises(InvalidParameterError, match="stale_while_revalidate"):
        SearchCache(stale_while_revalidate=-1)
    with pytest.raises(InvalidParameterError, match="max_refreshes"):
        SearchCache(max_refreshes=0)
    with pytest.raises(InvalidParameterError, match="stale_while_revalidate"):
        SearchCache(ttl=10, stale_while_revalidate=10 * 366 * 86_400)
    cache = SearchCache(ttl=2, stale_while_revalidate=10, stale_if_error=5)
    assert cache.lifetime == 12
    assert "stale_while_revalidate=10" in repr(cache)


@pytest.mark.anyio
async def test_a_stale_page_comes_at_once_and_one_refresh_runs(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """Past the TTL, 20 callers get the stale page at once; one call goes upstream."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with client_for(emulator, cache) as client:
        first = await client.search(QUERY, limit=3)
        assert first.cache_status == "miss"
        cache_clock.now += 3  # past the TTL, inside the window
        emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
        results: list[SearchResponse] = []

        async def player() -> None:
            results.append(await client.search(QUERY, limit=3))

        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(player)
        waited = time.perf_counter() - started
        assert {page.cache_status for page in results} == {"stale"}
        assert {page.request_id for page in results} == {first.request_id}
        assert waited < 0.25  # nobody waited for the 300 ms upstream
        await settle(cache, 1)
        assert searches(emulator) == 2  # the first miss, and one refresh
        fresh = await client.search(QUERY, limit=3)
        assert fresh.cache_status == "hit"
        assert fresh.request_id != first.request_id
        assert cache.stats()["stale"] == 20


@pytest.mark.anyio
async def test_past_the_window_a_lookup_waits_for_the_api(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """Older than ttl + stale_while_revalidate, the page is not served: a miss."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with client_for(emulator, cache) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 12.5
        page = await client.search(QUERY, limit=3)
        assert page.cache_status == "miss"
        assert cache.stats()["refreshes"] == 0


@pytest.mark.anyio
async def test_closing_the_client_cancels_its_refresh(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """A refresh in flight is cancelled by its client's close; another client starts anew."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    one = client_for(emulator, cache)
    async with one:
        await one.search(QUERY, limit=3)
        cache_clock.now += 3
        emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=30))
        assert (await one.search(QUERY, limit=3)).cache_status == "stale"
        await eventually(lambda: emulator.emulator.in_flight > 0)
    # Closed: the refresh was cancelled within the close, and left no count behind.
    assert cache.stats()["refreshes"] == 0
    assert cache.stats()["refresh_failures"] == 0
    emulator.emulator.set_faults(None)
    async with client_for(emulator, cache) as two:
        assert (await two.search(QUERY, limit=3)).cache_status == "stale"
        await settle(cache, 1)
        assert (await two.search(QUERY, limit=3)).cache_status == "hit"


@pytest.mark.anyio
async def test_a_failed_refresh_is_logged_and_counted_never_raised(
    emulator: EmulatorServer, cache_clock: CacheClock, caplog: pytest.LogCaptureFixture
) -> None:
    """The API down: callers keep the stale page; one WARNING per key; failures counted."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with AsyncClient(
        emulator.api_key, base_url=emulator.url, cache=cache, transport="httpx", max_retries=0
    ) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        emulator.emulator.set_faults(Faults({"500": 1.0}))
        with caplog.at_level(logging.DEBUG, logger="audioscape_async"):
            for count in (1, 2):
                assert (await client.search(QUERY, limit=3)).cache_status == "stale"
                await settle(cache, count, "refresh_failures")
                cache_clock.now += cache_module.REFRESH_PAUSE  # tried again after the pause
        warnings = [r for r in caplog.records if "could not refresh" in r.getMessage()]
        assert [r.levelno for r in warnings] == [logging.WARNING, logging.DEBUG]
        assert emulator.api_key not in caplog.text


@pytest.mark.anyio
async def test_at_most_max_refreshes_run_per_client(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """With max_refreshes=2, five stale keys start two refreshes; the rest wait for a lookup."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10, max_refreshes=2)
    async with client_for(emulator, cache) as client:
        for limit in range(1, 6):
            await client.search(QUERY, limit=limit)
        cache_clock.now += 3
        emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.5))
        for limit in range(1, 6):
            assert (await client.search(QUERY, limit=limit)).cache_status == "stale"
        await eventually(lambda: emulator.emulator.in_flight >= 2)
        await anyio.sleep(0.1)
        assert emulator.emulator.in_flight == 2
        await settle(cache, 2)


@pytest.mark.anyio
async def test_without_the_window_an_expired_page_is_a_miss(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """stale_while_revalidate=0 (the default): past the TTL the caller waits, as before."""
    cache = SearchCache(ttl=2, stale_if_error=60)
    async with client_for(emulator, cache) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        assert (await client.search(QUERY, limit=3)).cache_status == "miss"


def test_the_sync_client_refreshes_in_its_loop_between_calls(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """A `Client`'s refresh runs in its loop thread while the caller's thread does nothing."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    with Client(emulator.api_key, base_url=emulator.url, cache=cache) as client:
        first = client.search(QUERY, limit=3)
        cache_clock.now += 3
        assert client.search(QUERY, limit=3).cache_status == "stale"
        deadline = time.monotonic() + 10
        while cache.stats()["refreshes"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        again = client.search(QUERY, limit=3)
        assert again.cache_status == "hit"
        assert again.request_id != first.request_id


def test_two_threads_share_one_refresh(emulator: EmulatorServer, cache_clock: CacheClock) -> None:
    """Two sync Clients in two threads, one cache: a stale key is refreshed once."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
    with (
        Client(emulator.api_key, base_url=emulator.url, cache=cache) as one,
        Client(emulator.api_key, base_url=emulator.url, cache=cache) as two,
    ):
        one.search(QUERY, limit=3)
        cache_clock.now += 3
        statuses: list[str | None] = []
        threads = [
            threading.Thread(
                target=lambda c=c: statuses.append(c.search(QUERY, limit=3).cache_status)
            )
            for c in (one, two, one, two)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert statuses == ["stale"] * 4
        deadline = time.monotonic() + 10
        while cache.stats()["refreshes"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)
        assert searches(emulator) == 2


@pytest.mark.anyio
async def test_a_refresh_runs_under_the_clients_options_not_the_callers_deadline(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """A player with a 50 ms deadline gets the stale page; the 300 ms refresh still lands."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with client_for(emulator, cache) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))
        page = await client.search(QUERY, limit=3, deadline=0.05)
        assert page.cache_status == "stale"
        await settle(cache, 1)
        assert cache.stats()["refresh_failures"] == 0


@pytest.mark.anyio
async def test_walks_never_get_a_stale_page(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """A walk with cache=True past the TTL asks the API: its pages must agree with each other."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with client_for(emulator, cache) as client:
        [first] = [page async for page in client.iter_pages(QUERY, max_items=5, cache=True)]
        cache_clock.now += 3
        [again] = [page async for page in client.iter_pages(QUERY, max_items=5, cache=True)]
    assert again.cache_status == "miss"
    assert again.request_id != first.request_id


CALLER = contextvars.ContextVar("CALLER", default="none")


@pytest.mark.anyio
async def test_a_refresh_inherits_nothing_of_the_caller_that_started_it(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """Context variables of the caller (its span, its hooks' call) do not reach the refresh."""
    seen: list[str] = []
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with client_for(emulator, cache) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        background = client._pipeline.shared.background
        assert background is not None
        CALLER.set("player 1")
        assert (await client.search(QUERY, limit=3)).cache_status == "stale"

        async def peek() -> None:
            seen.append(CALLER.get())

        assert background.start(peek)
        await eventually(lambda: bool(seen))
    assert seen == ["none"]


@pytest.mark.anyio
async def test_a_refresh_reports_to_the_clients_cache_hooks(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """The hooks see the stale page served, then the refresh storing its page."""
    results: list[str] = []
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with AsyncClient(
        emulator.api_key,
        base_url=emulator.url,
        cache=cache,
        transport="httpx",
        event_hooks={"cache": [lambda event: results.append(event.result)]},
    ) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        await client.search(QUERY, limit=3)
        await eventually(lambda: "refreshed" in results)
    assert results == ["stored", "miss", "stale", "stored", "refreshed"]


@pytest.mark.anyio
async def test_a_stale_page_of_one_key_is_never_served_to_another(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """Two keys on one cache: the second key's search is the server's (a 401), not the first
    key's stale page, and no refresh is made under the first key for it."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with (
        client_for(emulator, cache) as one,
        AsyncClient(
            "sk-another-key", base_url=emulator.url, cache=cache, transport="httpx"
        ) as other,
    ):
        await one.search(QUERY, limit=3)
        cache_clock.now += 3
        with pytest.raises(AuthenticationError):
            await other.search(QUERY, limit=3)
        assert cache.stats()["stale"] == 0
        assert cache.stats()["refreshes"] == 0
