"""Cancellation, clean-up and load: nothing keeps running, nothing stays open, nothing grows.

Against the emulator over real loopback sockets. "Nothing left" is read from
the outside: the tasks of the event loop, the connections of the client's own
pool (httpx's or aiohttp's), the process's TCP sockets to the server and its
file descriptors, the sync Client's thread, and memory (RSS and tracemalloc).
Long variants are marked `soak`.
"""

from __future__ import annotations

import asyncio
import gc
import os
import time
import tracemalloc
from collections.abc import AsyncIterator, Generator
from contextlib import aclosing, asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import anyio
import anyio.from_thread
import anyio.to_thread
import httpx
import pytest

from audioscape_async import AsyncClient, AudioScapeError, Client, RetryPolicy
from audioscape_async.emulator import FAULT_HEADER, EmulatorServer, Faults
from tests.helpers import suspended_sdk_generators
from tests.reliability.resources import (
    HAVE_PROC,
    client_threads,
    collect,
    open_fds,
    pool_state,
    rss_bytes,
    running_tasks,
    sockets_to,
    wait_until,
)

pytestmark = pytest.mark.skipif(not HAVE_PROC, reason="reads /proc (Linux)")

QUERY = "chill lo-fi beats"
QUICK = RetryPolicy(max_retries=3, initial_backoff=0.02, max_backoff=0.02, max_retry_after=1.0)

WAYS = {
    "asyncio": ("asyncio", "auto"),
    "asyncio-httpx": ("asyncio", "httpx"),
    "trio": ("trio", "auto"),
}


#: The heavy tests run httpx's own transport on asyncio only in the soak run
#: (trio exercises the same httpcore pool by default).
HEAVY_WAYS = ["asyncio", pytest.param("asyncio-httpx", marks=pytest.mark.soak), "trio"]


@pytest.fixture(params=list(WAYS))
def way(request: pytest.FixtureRequest) -> str:
    """Which event loop and transport an async test runs on."""
    return request.param  # type: ignore[no-any-return]


@pytest.fixture
def anyio_backend(way: str) -> tuple[str, dict[str, object]]:
    """The event loop of `way`."""
    return (WAYS[way][0], {})


@pytest.fixture
def server(audioscape_emulator: EmulatorServer) -> EmulatorServer:
    """The session's emulator, reset, with QUERY ranked already (no cold first search)."""
    audioscape_emulator.emulator.search(QUERY, limit=1)
    return audioscape_emulator


def _options(server: EmulatorServer, way: str | None = None, **extra: Any) -> dict[str, Any]:
    options: dict[str, Any] = {
        "api_key": server.api_key,
        "base_url": server.url,
        "timeout": 10.0,
        "retry": QUICK,
    }
    if way is not None:
        options["transport"] = WAYS[way][1]
    return options | extra


async def _settled(server: EmulatorServer) -> None:
    """The emulator has seen every connection of a cancelled request end."""
    ended = await anyio.to_thread.run_sync(
        lambda: wait_until(lambda: server.emulator.in_flight == 0, timeout=3.0)
    )
    assert ended, f"{server.emulator.in_flight} request(s) still open on the server"


async def _nothing_checked_out(client: AsyncClient) -> None:
    # aiohttp hands a connection back in a callback of the loop: give it a few turns.
    for _ in range(20):
        if pool_state(client).busy == 0:
            return
        await anyio.sleep(0.005)
    raise AssertionError(f"connections still checked out: {pool_state(client)}")


@asynccontextmanager
async def _watched(server: EmulatorServer, options: dict[str, Any]) -> AsyncIterator[AsyncClient]:
    """A client whose closing must leave no task, no SDK generator and no socket behind."""
    port = server.port
    tasks = running_tasks()
    generators = suspended_sdk_generators()
    async with AsyncClient(**options) as client:
        yield client
        await _nothing_checked_out(client)
    assert pool_state(client).open == 0
    assert sockets_to(port) == 0, "aclose() left sockets open"
    assert running_tasks() == tasks
    collect()
    assert suspended_sdk_generators() <= generators


# -- cancellation ------------------------------------------------------------------------

#: When to cancel, in seconds after the call starts: before the connection, while
#: sending, while the server holds the answer, during a retry's backoff, after.
DELAYS = [0.0, 0.0005, 0.002, 0.005, 0.01, 0.02, 0.035, 0.06]


@pytest.mark.anyio
@pytest.mark.parametrize("fault", [None, "latency", "500", "hang", "drop"])
async def test_cancelling_a_search_at_any_point_leaves_nothing(
    server: EmulatorServer, way: str, fault: str | None
) -> None:
    """A search cancelled at any moment (cancel scope) leaves no task and no busy connection."""
    server.emulator.set_faults(Faults(latency=0.03))
    headers = {FAULT_HEADER: fault} if fault else {}
    async with _watched(server, _options(server, way, default_headers=headers)) as client:
        tasks = running_tasks()
        for delay in DELAYS:
            with anyio.move_on_after(delay), suppress(AudioScapeError):
                await client.search(QUERY, limit=5)  # a fault's error, once retries are spent
            assert running_tasks() == tasks
            await _nothing_checked_out(client)
        await _settled(server)  # each cancelled request's connection really ended
        if fault is None:
            assert (await client.search(QUERY, limit=5)).tracks


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [("asyncio", {})], ids=["asyncio"])
@pytest.mark.parametrize("transport", ["auto", "httpx"])
async def test_asyncio_task_cancel_leaves_nothing(server: EmulatorServer, transport: str) -> None:
    """asyncio's own Task.cancel() on a running search leaves no task and no busy connection."""
    server.emulator.set_faults(Faults(latency=0.03))
    options = _options(server, transport=transport, default_headers={FAULT_HEADER: "latency"})
    async with _watched(server, options) as client:
        tasks = len(asyncio.all_tasks())
        # Fine steps over the first few milliseconds: connect, then the first write,
        # where httpcore can orphan a connection (encode/httpcore#1093).
        for step in range(60):
            delay = (step % 15) * 0.0004 if step < 45 else 0.005 * (step - 44)
            task = asyncio.create_task(client.search(QUERY))
            await asyncio.sleep(delay)
            task.cancel()
            with suppress(asyncio.CancelledError):  # the late ones may have finished
                await task
            assert len(asyncio.all_tasks()) == tasks
            await _nothing_checked_out(client)
        await _settled(server)


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", [("trio", {})], ids=["trio"])
async def test_trio_cancel_scope_leaves_nothing(server: EmulatorServer) -> None:
    """trio's own move_on_after and nursery cancellation leave no task and no busy connection."""
    import trio

    server.emulator.set_faults(Faults(latency=0.03))
    options = _options(server, default_headers={FAULT_HEADER: "latency"})
    async with _watched(server, options) as client:
        for delay in (0.0, 0.002, 0.01, 0.02):
            with trio.move_on_after(delay):
                await client.search(QUERY)
            async with trio.open_nursery() as nursery:
                for _ in range(5):
                    nursery.start_soon(client.search, QUERY)
                await trio.sleep(delay)
                nursery.cancel_scope.cancel()
            await _nothing_checked_out(client)
        await _settled(server)


@pytest.mark.anyio
async def test_cancelling_a_crowd_of_searches_frees_every_slot(
    server: EmulatorServer, way: str
) -> None:
    """300 slow searches at once (100 in the pool, 200 queued), cancelled: every slot comes back."""
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.05))
    async with _watched(server, _options(server, way, retry=RetryPolicy(max_retries=0))) as client:
        with anyio.move_on_after(0.03):
            await _concurrent(client, 300)
        await _nothing_checked_out(client)
        server.emulator.set_faults(None)
        with anyio.fail_after(10):
            assert await _concurrent(client, 250) == [5] * 250
    await _settled(server)


@pytest.mark.anyio
@pytest.mark.parametrize("walk", ["iter_tracks", "iter_pages", "crawl"])
async def test_cancelling_a_concurrent_walk_leaves_nothing(
    server: EmulatorServer, way: str, walk: str
) -> None:
    """A walk with concurrency 4, cancelled at any point: no fetch task, no busy connection."""
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.01))
    async with _watched(server, _options(server, way)) as client:
        tasks = running_tasks()
        for delay in (0.0, 0.008, 0.02, 0.045):
            seen = 0
            with anyio.move_on_after(delay):
                made = getattr(client, walk)(QUERY, page_size=20, max_items=400, concurrency=4)
                async for _ in made:
                    seen += 1
            assert seen < 400 or delay >= 0.035
            assert running_tasks() == tasks
            await _nothing_checked_out(client)
        await _settled(server)


@pytest.mark.anyio
async def test_leaving_a_walk_early_leaves_nothing(server: EmulatorServer, way: str) -> None:
    """Breaking out of a concurrent walk (closed, or just dropped) leaves nothing running."""
    async with _watched(server, _options(server, way)) as client:
        tasks = running_tasks()
        async with aclosing(client.iter_tracks(QUERY, page_size=10, concurrency=8)) as tracks:
            async for _ in tracks:
                break
        dropped = client.iter_pages(QUERY, page_size=10, concurrency=8)
        async for _ in dropped:
            break  # not closed: suspended at a yield, where nothing of the walk runs
        assert running_tasks() == tasks
        await _nothing_checked_out(client)
        await dropped.aclose()
        crawl = client.crawl(QUERY, page_size=10, concurrency=8)
        async for _ in crawl:
            break
        await crawl.aclose()
        assert running_tasks() == tasks


@pytest.mark.anyio
async def test_cancelling_a_file_crawl_closes_its_files(
    server: EmulatorServer, way: str, tmp_path: Path
) -> None:
    """A crawl to a file cancelled mid-way closes its file descriptors and stays resumable."""
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.01))
    out = tmp_path / "tracks.jsonl"
    fds = open_fds()
    async with _watched(server, _options(server, way)) as client:
        with anyio.move_on_after(0.08):
            await client.crawl_to_file(QUERY, out, page_size=20, max_items=2_000, concurrency=2)
        assert not _open_files_under(tmp_path), "the crawl left its files open"
        server.emulator.set_faults(None)
        stats = await client.crawl_to_file(QUERY, out, page_size=20, max_items=2_000, resume=True)
    assert stats.tracks + (stats.resumed_at or 0) >= 0
    assert len(out.read_bytes().splitlines()) == 2_000
    assert open_fds() == fds


def _open_files_under(directory: Path) -> list[str]:
    found = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            found.append(target)
    return found


# -- closing releases everything -------------------------------------------------------


@pytest.mark.anyio
async def test_aclose_closes_every_socket(server: EmulatorServer, way: str) -> None:
    """After concurrent searches the pool holds sockets; aclose() closes every one of them."""
    async with _watched(server, _options(server, way)) as client:
        async with anyio.create_task_group() as tg:
            for _ in range(10):
                tg.start_soon(client.search, QUERY)
        assert sockets_to(server.port) >= 1
    with pytest.raises(AudioScapeError, match="closed"):
        await client.search(QUERY)


def test_sync_client_thread_ends_with_close(server: EmulatorServer) -> None:
    """The sync Client's loop thread is gone after close(), even with a walk left open."""
    before = client_threads()
    fds = open_fds()
    client = Client(**_options(server))
    try:
        client.search(QUERY, limit=3)  # the first call starts the client's loop thread
        assert len(client_threads()) == len(before) + 1
        tracks = client.iter_tracks(QUERY, page_size=10, concurrency=4)
        next(iter(tracks))  # a walk left suspended in the loop thread, one step ahead
        assert len(client_threads()) == len(before) + 1
        # Once its step ahead is fetched, the suspended walk holds no connection.
        assert wait_until(lambda: pool_state(client).busy == 0, timeout=5.0)
        pages = client.iter_pages(QUERY, page_size=10)
        assert isinstance(pages, Generator)
        next(pages)
        pages.close()  # ... and one closed early
        assert wait_until(lambda: pool_state(client).busy == 0, timeout=5.0)
    finally:
        client.close()
    assert client_threads() == before
    assert sockets_to(server.port) == 0
    assert open_fds() <= fds
    with pytest.raises(AudioScapeError, match="closed"):
        client.search(QUERY)


def test_sync_client_closes_the_http_client_it_runs_on(server: EmulatorServer) -> None:
    """A sync Client closes a given httpx.AsyncClient with itself: its sockets live in its loop."""
    http = httpx.AsyncClient()
    with Client(**_options(server), http_client=http) as client:
        client.search(QUERY, limit=2)
        assert sockets_to(server.port) >= 1
    assert http.is_closed
    assert sockets_to(server.port) == 0


def test_forgotten_sync_client_is_cleaned_up(server: EmulatorServer) -> None:
    """A sync Client dropped without close() takes its thread and sockets with it."""
    before = client_threads()
    client = Client(**_options(server))
    client.search(QUERY, limit=3)
    del client
    collect()
    assert wait_until(lambda: client_threads() == before, timeout=5.0)
    assert sockets_to(server.port) == 0


# -- many clients, much load ------------------------------------------------------------


async def _open_search_close(server: EmulatorServer, way: str, rounds: int) -> None:
    for _ in range(rounds):
        async with AsyncClient(**_options(server, way)) as client:
            await client.search(QUERY, limit=2)


def _growth_check(
    server: EmulatorServer, run: Any, *, rounds: int, fd_slack: int, rss_mb: float
) -> None:
    # Warm up with up to 50 rounds: imports, caches, and the allocator's arenas (the
    # first SSL contexts raise RSS by megabytes once; a leak raises it every round).
    run(min(rounds, 50))
    server.emulator.reset()
    collect()
    fds, rss, objects = open_fds(), rss_bytes(), len(gc.get_objects())
    run(rounds)
    # The emulator's own request log grows with every request, whoever sent it.
    server.emulator.reset()
    collect()
    assert open_fds() <= fds + fd_slack, f"file descriptors grew from {fds} to {open_fds()}"
    grown = (rss_bytes() - rss) / 2**20
    assert grown < rss_mb, f"RSS grew by {grown:.1f} MB over {rounds} clients"
    # A client left alive would hold dozens of objects, in every round. The rest of
    # the process (the suite's other threads, a library's lazy caches) may add a few
    # once: a count over the line is measured again, and a leak is over it both times.
    more = len(gc.get_objects()) - objects
    if more >= 3 * rounds + 100:
        objects = len(gc.get_objects())
        run(rounds)
        server.emulator.reset()
        collect()
        more = len(gc.get_objects()) - objects
    assert more < 3 * rounds + 100, f"{more} more live objects after {rounds} clients"
    assert sockets_to(server.port) == 0


@pytest.mark.parametrize("way", HEAVY_WAYS)
@pytest.mark.anyio
async def test_many_clients_do_not_grow_fds_or_memory(server: EmulatorServer, way: str) -> None:
    """20 clients opened, used and closed in a row: file descriptors and memory stay flat."""

    def run(rounds: int) -> None:
        anyio.from_thread.run(_open_search_close, server, way, rounds)

    await anyio.to_thread.run_sync(
        lambda: _growth_check(server, run, rounds=20, fd_slack=0, rss_mb=4)
    )


def test_many_sync_clients_do_not_grow_threads_fds_or_memory(server: EmulatorServer) -> None:
    """15 sync Clients opened, used and closed: threads, file descriptors and memory stay flat."""
    threads = client_threads()

    def run(rounds: int) -> None:
        for _ in range(rounds):
            with Client(**_options(server)) as client:
                client.search(QUERY, limit=2)

    _growth_check(server, run, rounds=15, fd_slack=0, rss_mb=4)
    assert client_threads() == threads


@pytest.mark.soak
@pytest.mark.anyio
async def test_many_clients_soak(server: EmulatorServer, way: str) -> None:
    """Soak: 500 clients in a row, file descriptors and memory flat."""

    def run(rounds: int) -> None:
        anyio.from_thread.run(_open_search_close, server, way, rounds)

    await anyio.to_thread.run_sync(
        lambda: _growth_check(server, run, rounds=500, fd_slack=0, rss_mb=16)
    )


async def _concurrent(client: AsyncClient, count: int) -> list[int]:
    totals: list[int] = []

    async def one(n: int) -> None:
        page = await client.search(QUERY, limit=5, offset=n % 50)
        totals.append(len(page.tracks))

    async with anyio.create_task_group() as tg:
        for n in range(count):
            tg.start_soon(one, n)
    return totals


@pytest.mark.parametrize("way", HEAVY_WAYS)
@pytest.mark.anyio
async def test_a_thousand_concurrent_searches_through_one_client(
    server: EmulatorServer, way: str
) -> None:
    """1,000 searches at once through one client: all succeed, none waits out the pool."""
    start = time.monotonic()
    async with _watched(server, _options(server, way, retry=RetryPolicy(max_retries=0))) as client:
        totals = await _concurrent(client, 1_000)
        assert pool_state(client).open <= 100  # the pool's limit held
    assert totals == [5] * 1_000
    assert len(server.emulator.requests) == 1_000  # no retry was needed
    assert time.monotonic() - start < 30


@pytest.mark.soak
@pytest.mark.anyio
async def test_concurrent_searches_soak(server: EmulatorServer, way: str) -> None:
    """Soak: 10 waves of 1,000 concurrent searches through one client, all succeed."""
    async with _watched(server, _options(server, way, retry=RetryPolicy(max_retries=0))) as client:
        for _ in range(10):
            assert await _concurrent(client, 1_000) == [5] * 1_000


# tracemalloc sees Python's allocations of the SDK and the HTTP stack; the
# emulator (same process) keeps a log of every request, which is not ours.
_NOT_OURS = [
    tracemalloc.Filter(False, "*/audioscape_async/emulator/*"),
    tracemalloc.Filter(False, "<*"),  # attrs' generated __init__ of the emulator's records
    tracemalloc.Filter(False, tracemalloc.__file__),
    tracemalloc.Filter(False, "*/_pytest/*"),
    tracemalloc.Filter(False, "*/logging/*"),
]


def _traced() -> int:
    snapshot = tracemalloc.take_snapshot().filter_traces(_NOT_OURS)
    return sum(stat.size for stat in snapshot.statistics("filename"))


async def _sequential_growth(server: EmulatorServer, way: str, count: int) -> tuple[int, float]:
    async with _watched(server, _options(server, way)) as client:
        for _ in range(60):  # warm up: pool, caches, interned strings
            await client.search(QUERY, limit=5)
        collect()
        tracemalloc.start()
        try:
            before, rss = _traced(), rss_bytes()
            for n in range(count):
                page = await client.search(QUERY, limit=5, offset=n % 20)
                assert len(page.tracks) == 5
            del page
            collect()
            after = _traced()
        finally:
            tracemalloc.stop()
    return after - before, (rss_bytes() - rss) / 2**20


@pytest.mark.parametrize("way", HEAVY_WAYS)
@pytest.mark.anyio
async def test_sequential_searches_do_not_grow_memory(server: EmulatorServer, way: str) -> None:
    """200 searches in a row through one client: the SDK and HTTP stack hold no more memory."""
    grown, _ = await _sequential_growth(server, way, 200)
    assert grown < 48_000, f"{grown} bytes more after 200 searches"


@pytest.mark.soak
@pytest.mark.anyio
async def test_sequential_searches_soak(server: EmulatorServer, way: str) -> None:
    """Soak: 10,000 searches in a row through one client, memory flat."""
    grown, rss_mb = await _sequential_growth(server, way, 10_000)
    assert grown < 200_000, f"{grown} bytes more after 10,000 searches"
    assert rss_mb < 24, f"RSS grew by {rss_mb:.1f} MB (the emulator's own log included)"
