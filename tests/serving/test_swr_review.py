"""Stale-while-revalidate under a hostile review: loops that end, forks, failing refreshes."""

from __future__ import annotations

import contextvars
import gc
import os
import subprocess
import sys
import warnings

import anyio
import httpx
import pytest

from audioscape_async import AsyncClient, DeadlineExceededError, SearchCache
from audioscape_async import _cache as cache_module
from audioscape_async.emulator import EmulatorServer, Faults
from tests.helpers import eventually
from tests.serving.cache_support import CacheClock, client_for, searches

QUERY = "dark cinematic boss tension"


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_refresh_whose_loop_ended_before_it_began_does_not_block_the_key(
    emulator: EmulatorServer, cache_clock: CacheClock, backend: str
) -> None:
    """A loop that ends right after finding a stale page leaves the key refreshable by the next."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)

    async def find_stale_and_end() -> None:
        # A script that never closes its client (its own pool keeps no connection, so
        # nothing leaks): the loop ends right after the stale page, before the refresh
        # begins.
        http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))
        client = AsyncClient(emulator.api_key, base_url=emulator.url, cache=cache, http_client=http)
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        assert (await client.search(QUERY, limit=3)).cache_status == "stale"

    anyio.run(find_stale_and_end, backend=backend)

    async def look_again() -> None:
        async with client_for(emulator, cache) as client:
            assert (await client.search(QUERY, limit=3)).cache_status == "stale"
            await eventually(lambda: cache.stats()["refreshes"] >= 1)
            assert (await client.search(QUERY, limit=3)).cache_status == "hit"

    anyio.run(look_again, backend=backend)
    assert searches(emulator) == 2


@pytest.mark.parametrize("backend", ["asyncio", "trio"])
def test_a_loop_ending_with_a_refresh_pending_warns_nothing(
    emulator: EmulatorServer, cache_clock: CacheClock, backend: str
) -> None:
    """A loop that ends before its refresh begins leaves no unawaited coroutine behind."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)

    async def find_stale_and_end() -> None:
        http = httpx.AsyncClient(limits=httpx.Limits(max_keepalive_connections=0))
        client = AsyncClient(emulator.api_key, base_url=emulator.url, cache=cache, http_client=http)
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        assert (await client.search(QUERY, limit=3)).cache_status == "stale"

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        anyio.run(find_stale_and_end, backend=backend)
        gc.collect()
    assert [str(warning.message) for warning in caught] == []


FORKED = """
import os, sys, time
import anyio
from audioscape_async import AsyncClient, Client, SearchCache
from audioscape_async import _cache as cache_module

url, key = sys.argv[1], sys.argv[2]
now = [10_000.0]
cache_module.clock = lambda: now[0]
cache = SearchCache(ttl=2, stale_while_revalidate=10)
QUERY = "dark cinematic boss tension"

async def child():
    async with AsyncClient(key, base_url=url, cache=cache, transport="httpx") as client:
        assert (await client.search(QUERY, limit=3)).cache_status == "stale"
        with anyio.fail_after(10):
            while cache.stats()["refreshes"] < 1:
                await anyio.sleep(0.02)

with Client(key, base_url=url, cache=cache, transport="httpx") as client:
    client.search(QUERY, limit=3)
    now[0] += 3
    assert client.search(QUERY, limit=3).cache_status == "stale"  # its refresh is slow
    pid = os.fork()
    if pid == 0:
        try:
            anyio.run(child)
        except BaseException as error:
            print("child failed:", repr(error), flush=True)
            os._exit(1)
        print("child refreshed", flush=True)
        os._exit(0)
    _, status = os.waitpid(pid, 0)
    print("child exit", os.waitstatus_to_exitcode(status), flush=True)
"""


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_a_child_forked_during_a_refresh_refreshes_the_key_itself(
    emulator: EmulatorServer,
) -> None:
    """A fork while the parent refreshes a key: the child's lookups start a refresh of its own."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=1.0))
    done = subprocess.run(
        [sys.executable, "-c", FORKED, emulator.url, emulator.api_key],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
        check=False,
    )
    assert "child refreshed" in done.stdout, done.stdout + done.stderr
    assert "child exit 0" in done.stdout, done.stdout + done.stderr


@pytest.mark.anyio
async def test_a_failing_refresh_is_not_tried_again_at_every_lookup(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """The API failing: 50 stale lookups make one refresh call, not 50; one more after a pause."""
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with client_for(emulator, cache, max_retries=0) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        emulator.emulator.set_faults(Faults({"500": 1.0}))
        for _ in range(50):
            assert (await client.search(QUERY, limit=3)).cache_status == "stale"
            await anyio.sleep(0.005)  # time for a refresh to fail and let go
        await eventually(lambda: cache.stats()["refresh_failures"] >= 1)
        assert searches(emulator) == 2  # the first miss, and one refresh
        cache_clock.now += cache_module.REFRESH_PAUSE
        assert (await client.search(QUERY, limit=3)).cache_status == "stale"
        await eventually(lambda: cache.stats()["refresh_failures"] >= 2)
    assert searches(emulator) == 3


@pytest.mark.anyio
async def test_a_leaders_deadline_is_its_own_not_its_followers(emulator: EmulatorServer) -> None:
    """A leader out of time fails alone: a follower with time left leads a call of its own."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.5))
    outcomes: dict[str, object] = {}
    async with client_for(emulator, SearchCache()) as client:

        async def one(name: str, deadline: float | None, delay: float) -> None:
            await anyio.sleep(delay)
            try:
                page = await client.search(QUERY, limit=3, deadline=deadline)
            except DeadlineExceededError as error:
                outcomes[name] = type(error)
            else:
                outcomes[name] = page.cache_status

        async with anyio.create_task_group() as group:
            group.start_soon(one, "hurried leader", 0.2, 0)
            group.start_soon(one, "patient follower", None, 0.05)
    assert outcomes == {"hurried leader": DeadlineExceededError, "patient follower": "miss"}


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_refreshes_go_on_after_the_app_cancels_every_task(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """An app that cancels every task it did not make (a reload) and goes on: the next stale
    lookups are still refreshed, and no refresh slot stays taken."""
    import asyncio

    cache = SearchCache(ttl=2, stale_while_revalidate=10, max_refreshes=1)
    runner = asyncio.all_tasks()  # the test runner's: the app does not own them
    async with client_for(emulator, cache) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        assert (await client.search(QUERY, limit=3)).cache_status == "stale"
        await eventually(lambda: cache.stats()["refreshes"] >= 1)
        for task in asyncio.all_tasks() - runner:
            task.cancel()
        await anyio.sleep(0.05)
        cache_clock.now += 3
        for count in (2, 3):
            assert (await client.search(QUERY, limit=3)).cache_status == "stale"
            await eventually(lambda: cache.stats()["refreshes"] >= count)  # noqa: B023
            cache_clock.now += 3


CALLER = contextvars.ContextVar("CALLER", default="none")


@pytest.mark.anyio
async def test_a_refresh_started_while_the_group_runs_inherits_nothing_of_its_caller(
    emulator: EmulatorServer, cache_clock: CacheClock
) -> None:
    """Context variables of a caller (its span, its hooks' call) do not reach a refresh it
    starts once the group already runs (not only the first, which starts the group)."""
    seen: list[str] = []
    cache = SearchCache(ttl=2, stale_while_revalidate=10)
    async with client_for(emulator, cache) as client:
        await client.search(QUERY, limit=3)
        cache_clock.now += 3
        assert (await client.search(QUERY, limit=3)).cache_status == "stale"
        await eventually(lambda: cache.stats()["refreshes"] >= 1)  # the group runs now
        background = client._pipeline.shared.background
        assert background is not None
        CALLER.set("player 2")

        async def peek() -> None:
            seen.append(CALLER.get())

        assert background.start(peek)
        await eventually(lambda: bool(seen))
    assert seen == ["none"]
