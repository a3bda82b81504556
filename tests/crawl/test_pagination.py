"""`iter_pages` and `iter_tracks`: walking offset/limit pages up to `meta.total`."""

from __future__ import annotations

import logging
import random
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import aclosing
from typing import Any

import anyio
import httpx
import orjson
import pytest

from audioscape_async import (
    AsyncClient,
    AudioScapeError,
    BadRequestError,
    Client,
    CrawlStats,
    InvalidParameterError,
    PaginationError,
    RetryPolicy,
    SearchFilters,
    SearchResponse,
)
from audioscape_async._crawl._pagination import WalkOptions, stream_pages
from audioscape_async.emulator import EmulatorServer, Faults
from tests.helpers import (
    API_KEY,
    MockAPI,
    catalog,
    error,
    ids,
    ok,
    open_client,
    page_json,
    suspended_sdk_generators,
)
from tests.reliability.servers import RawRequest, RawServer, read_request, response_bytes

#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


def _flat(pages: list[list[str]]) -> list[str]:
    return [asset_id for page in pages for asset_id in page]


def _asked(api: MockAPI) -> list[tuple[int, int]]:
    return [(body["offset"], body["limit"]) for body in api.bodies]


async def _all_pages(api: MockAPI, **options: Any) -> list[list[str]]:
    async with open_client(api) as client:
        return [
            [track.asset_id for track in page.tracks]
            async for page in client.iter_pages("calm piano", **options)
        ]


async def _all_tracks(api: MockAPI, **options: Any) -> list[str]:
    async with open_client(api) as client:
        return [track.asset_id async for track in client.iter_tracks("calm piano", **options)]


# -- iter_pages ----------------------------------------------------------------


@pytest.mark.anyio
async def test_total_not_a_multiple_of_page_size() -> None:
    """25 tracks in pages of 10: three requests, the last page short, then the walk stops."""
    api = MockAPI(respond=catalog(ids(25)))
    pages = await _all_pages(api, page_size=10)
    assert [len(page) for page in pages] == [10, 10, 5]
    assert _asked(api) == [(0, 10), (10, 10), (20, 10)]
    assert _flat(pages) == ids(25)


@pytest.mark.anyio
async def test_total_a_multiple_of_page_size_asks_no_extra_page() -> None:
    """30 tracks in pages of 10: exactly three requests, none past meta.total."""
    api = MockAPI(respond=catalog(ids(30)))
    pages = await _all_pages(api, page_size=10)
    assert [len(page) for page in pages] == [10, 10, 10]
    assert _asked(api) == [(0, 10), (10, 10), (20, 10)]


@pytest.mark.anyio
async def test_default_page_size_is_the_maximum() -> None:
    """Without page_size the walk asks for 100 tracks a page, the API's maximum."""
    api = MockAPI(respond=catalog(ids(150)))
    await _all_pages(api)
    assert _asked(api) == [(0, 100), (100, 100)]


@pytest.mark.anyio
async def test_walk_starts_at_the_given_offset() -> None:
    """offset= starts the walk there."""
    api = MockAPI(respond=catalog(ids(25)))
    pages = await _all_pages(api, page_size=10, offset=5)
    assert _asked(api) == [(5, 10), (15, 10)]
    assert _flat(pages) == ids(20, start=5)


@pytest.mark.anyio
async def test_empty_result_is_one_empty_page() -> None:
    """A search with no match yields one empty page and asks nothing more."""
    api = MockAPI(respond=catalog([]))
    pages = await _all_pages(api, page_size=10)
    assert pages == [[]]
    assert api.calls == 1


@pytest.mark.anyio
async def test_total_shrinking_mid_walk_stops_at_the_new_total() -> None:
    """When meta.total drops between pages, the walk ends at the new total."""
    api = MockAPI(respond=catalog(ids(40), total=lambda n: 40 if n == 1 else 15))
    pages = await _all_pages(api, page_size=10)
    assert _asked(api) == [(0, 10), (10, 10)]
    assert _flat(pages) == ids(20)


@pytest.mark.anyio
async def test_total_growing_mid_walk_follows_the_new_total() -> None:
    """When meta.total grows between pages, the walk goes on to the new total."""
    catalog_ids = ids(35)
    api = MockAPI(
        respond=catalog(lambda n: catalog_ids[:20] if n == 1 else catalog_ids, total=None)
    )
    pages = await _all_pages(api, page_size=10)
    assert _asked(api) == [(0, 10), (10, 10), (20, 10), (30, 10)]
    assert _flat(pages) == catalog_ids


@pytest.mark.anyio
async def test_empty_page_before_total_is_asked_again_then_ends_the_walk(
    caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    """An empty page although meta.total says more: asked twice more with backoff, then the end."""
    catalog_ids = ids(20)
    api = MockAPI(respond=catalog(catalog_ids, total=50))
    caplog.set_level(logging.WARNING, logger="audioscape_async")
    pages = await _all_pages(api, page_size=10)
    assert _asked(api) == [(0, 10), (10, 10), (20, 10), (20, 10), (20, 10)]
    assert sleeps == [0.5, 1.0]
    assert _flat(pages) == catalog_ids
    assert any("the result set ends there" in record.getMessage() for record in caplog.records)


@pytest.mark.anyio
async def test_short_page_moves_the_offset_by_what_was_received() -> None:
    """A page shorter than asked, before the end, moves the offset by its length only."""
    catalog_ids = ids(20)

    def respond(request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        offset, limit = body["offset"], body["limit"]
        served = catalog_ids[offset : offset + min(limit, 7)]
        return ok(page_json(served, total=len(catalog_ids), offset=offset, limit=limit))

    api = MockAPI(respond=respond)
    pages = await _all_pages(api, page_size=10)
    assert [offset for offset, _ in _asked(api)] == [0, 7, 14]
    assert _flat(pages) == catalog_ids


@pytest.mark.anyio
async def test_max_items_last_request_asks_only_for_what_is_left() -> None:
    """max_items=25 in pages of 10 asks 10, 10, then 5, and stops."""
    api = MockAPI(respond=catalog(ids(100)))
    pages = await _all_pages(api, page_size=10, max_items=25)
    assert _asked(api) == [(0, 10), (10, 10), (20, 5)]
    assert _flat(pages) == ids(25)


@pytest.mark.anyio
async def test_max_items_smaller_than_a_page_is_one_small_request() -> None:
    """max_items below page_size makes one request with limit=max_items."""
    api = MockAPI(respond=catalog(ids(100)))
    pages = await _all_pages(api, page_size=50, max_items=3)
    assert _asked(api) == [(0, 3)]
    assert pages == [ids(3)]


@pytest.mark.anyio
async def test_max_items_beyond_total_stops_at_total() -> None:
    """max_items larger than the result set stops at meta.total."""
    api = MockAPI(respond=catalog(ids(12)))
    pages = await _all_pages(api, page_size=10, max_items=500)
    assert _asked(api) == [(0, 10), (10, 10)]
    assert _flat(pages) == ids(12)


@pytest.mark.anyio
async def test_every_page_request_carries_query_and_filters() -> None:
    """Each page request repeats the query and the filters."""
    api = MockAPI(respond=catalog(ids(25)))
    filters = SearchFilters(genres=["electronic"], min_likes=10)
    async with open_client(api) as client:
        async for _ in client.iter_pages("calm piano", page_size=10, filters=filters):
            pass
    assert len(api.bodies) == 3
    for body in api.bodies:
        assert body["query"] == "calm piano"
        assert body["filters"] == {"genres": ["electronic"], "min_likes": 10}


@pytest.mark.anyio
async def test_error_mid_walk_propagates_with_its_class() -> None:
    """An error answer on a later page raises its own class out of the loop."""
    api = MockAPI(ok(page_json(ids(10), total=30, limit=10)), error(400, {"error": "bad offset"}))
    seen: list[int] = []
    async with open_client(api) as client:

        async def walk() -> None:
            async for page in client.iter_pages("calm piano", page_size=10):
                seen.append(len(page.tracks))

        with pytest.raises(BadRequestError, match="bad offset"):
            await walk()
    assert seen == [10]


@pytest.mark.anyio
async def test_breaking_out_of_iter_pages_sends_nothing_more() -> None:
    """Leaving the page loop early sends no further request and leaves no walk suspended."""
    api = MockAPI(respond=catalog(ids(100)))
    before = suspended_sdk_generators()
    async with open_client(api) as client:
        async with aclosing(client.iter_pages("calm piano", page_size=10)) as pages:
            async for _ in pages:
                break
        assert api.calls == 1
        assert suspended_sdk_generators() - before == set()
    assert api.calls == 1


# -- iter_tracks ---------------------------------------------------------------


@pytest.mark.anyio
async def test_iter_tracks_yields_every_track_in_order() -> None:
    """iter_tracks yields each track of each page, in order."""
    api = MockAPI(respond=catalog(ids(25)))
    assert await _all_tracks(api, page_size=10) == ids(25)


@pytest.mark.anyio
async def test_iter_tracks_yields_each_asset_id_once() -> None:
    """Tracks repeated on a later page (the catalog shifted) are yielded once."""
    first, second = ids(10), ids(8, start=5) + ids(2, start=50)
    api = MockAPI(
        ok(page_json(first, total=20, limit=10)),
        ok(page_json(second, total=20, offset=10, limit=10)),
    )
    tracks = await _all_tracks(api, page_size=10)
    assert tracks == first + ids(3, start=10) + ids(2, start=50)
    assert len(tracks) == len(set(tracks))


@pytest.mark.anyio
async def test_iter_tracks_max_items_counts_unique_tracks() -> None:
    """max_items counts tracks yielded, so duplicates do not use up the budget."""
    # After the first page, five tracks slide in at the top: the next page repeats five.
    api = MockAPI(respond=catalog(lambda n: ids(100) if n == 1 else ids(5) + ids(100)))
    tracks = await _all_tracks(api, page_size=10, max_items=17)
    assert tracks == ids(17)
    assert _asked(api) == [(0, 10), (10, 7), (17, 5)]


@pytest.mark.anyio
async def test_iter_tracks_max_items() -> None:
    """iter_tracks stops after max_items tracks, the last request asking only for what is left."""
    api = MockAPI(respond=catalog(ids(100)))
    assert await _all_tracks(api, page_size=10, max_items=15) == ids(15)
    assert _asked(api) == [(0, 10), (10, 5)]


@pytest.mark.anyio
async def test_breaking_out_of_iter_tracks_sends_nothing_more() -> None:
    """Leaving the track loop mid-page sends no further request and leaves nothing suspended."""
    api = MockAPI(respond=catalog(ids(100)))
    before = suspended_sdk_generators()
    got: list[str] = []
    async with open_client(api) as client:
        async with aclosing(client.iter_tracks("calm piano", page_size=10)) as tracks:
            async for track in tracks:
                got.append(track.asset_id)
                if len(got) == 13:
                    break
        assert suspended_sdk_generators() - before == set()
    assert got == ids(13)
    assert api.calls == 2


@pytest.mark.anyio
async def test_concurrent_walk_yields_what_a_sequential_one_does() -> None:
    """concurrency > 1 fetches pages at once but yields the same tracks in the same order."""
    sequential = await _all_tracks(MockAPI(respond=catalog(ids(95))), page_size=10)
    api = MockAPI(respond=catalog(ids(95)))
    concurrent = await _all_tracks(api, page_size=10, concurrency=4)
    assert concurrent == sequential == ids(95)
    assert sorted(offset for offset, _ in _asked(api)) == list(range(0, 100, 10))


# -- against real servers: the streaming window and the rules that end a walk ------------------

#: Fast retries: the faults here are meant to be retried, not waited for.
QUICK = RetryPolicy(max_retries=8, initial_backoff=0.001, max_backoff=0.01)
QUERY = "chill lo-fi beats"

#: What a paging server answers for ``(offset, limit, request number from 1)``: the numbers
#: of the tracks on the page and meta.total, or an HTTP status to fail with.
Serve = Callable[[int, int, int], "tuple[list[int], int] | int"]


class PagingServer:
    """A loopback server that pages a catalog of numbered tracks the way `serve` says."""

    def __init__(self, serve: Serve) -> None:
        self._serve = serve
        self._lock = threading.Lock()
        #: Every ``(offset, limit)`` asked, in arrival order.
        self.asked: list[tuple[int, int]] = []
        self._raw = RawServer(self._handle, lifetime=60.0)
        self.url = self._raw.url()

    def _handle(
        self, conn: socket.socket, request: RawRequest | None, stop: threading.Event
    ) -> None:
        while request is not None and not stop.is_set():
            try:
                body = orjson.loads(request.body)
            except orjson.JSONDecodeError:
                return  # a request cancelled half-sent: the client has left
            offset, limit = body["offset"], body["limit"]
            with self._lock:
                self.asked.append((offset, limit))
                number = len(self.asked)
            answer = self._serve(offset, limit, number)
            if isinstance(answer, int):
                data = response_bytes(answer, orjson.dumps({"error": f"offset {offset} failed"}))
            else:
                numbers, total = answer
                page = page_json(
                    [str(1_000_000 + n) for n in numbers], total=total, offset=offset, limit=limit
                )
                data = response_bytes(200, orjson.dumps(page))
            conn.sendall(data)
            request = read_request(conn)

    def __enter__(self) -> PagingServer:
        return self

    def __exit__(self, *_: object) -> None:
        self._raw.close()


def straight(size: int, total: int | None = None) -> Serve:
    """A well-behaved catalog of `size` tracks."""
    return lambda offset, limit, _n: (
        list(range(offset, min(size, offset + limit))),
        size if total is None else total,
    )


def _loopback(server: PagingServer) -> AsyncClient:
    return AsyncClient(API_KEY, base_url=server.url, retry=QUICK, timeout=5.0)


async def _crawl_ids(client: AsyncClient, **walk: Any) -> tuple[list[str], CrawlStats]:
    """Every track of a streaming crawl (``async with client.crawl(...)``), and its stats."""
    async with client.crawl(QUERY, **walk) as crawl:
        got = [track.asset_id async for track in crawl]
    return got, crawl.stats


@pytest.fixture(scope="module")
def emulator() -> Iterator[EmulatorServer]:
    """An emulator whose catalog matches 2,659 tracks for QUERY."""
    with EmulatorServer(tracks=5_000, seed=3) as server:
        yield server


@pytest.fixture
def clean(emulator: EmulatorServer) -> Iterator[EmulatorServer]:
    """The emulator for one test, reset before and after."""
    emulator.emulator.reset()
    yield emulator
    emulator.emulator.reset()


def _client(server: EmulatorServer) -> AsyncClient:
    return AsyncClient(server.api_key, base_url=server.url, retry=QUICK, timeout=5.0)


@pytest.mark.anyio
async def test_window_delivers_each_page_as_soon_as_the_pages_before_it(
    clean: EmulatorServer,
) -> None:
    """With 0.2 s per answer, page 2 arrives one answer after page 1, not after a whole step."""
    latency = 0.2
    clean.emulator.set_faults(Faults({"latency": 1.0}, latency=latency))
    arrived_by_page: list[int] = []
    times: list[float] = []
    async with _client(clean) as client:
        start = time.monotonic()
        async with client.crawl(QUERY, page_size=100, max_items=1_700, concurrency=4) as crawl:
            async for _ in crawl.batches():
                times.append(time.monotonic() - start)
                arrived_by_page.append(len(clean.emulator.requests))
    assert len(times) == 17
    # A step of 16 pages would deliver page 2 four rounds of answers after page 1, once
    # all 17 requests were answered; the window delivers it one answer after page 1.
    assert times[1] - times[0] < 2 * latency
    # Pages 1 and 2 were delivered before the later pages were even asked for.
    assert arrived_by_page[0] <= 5
    assert arrived_by_page[1] <= 9
    assert crawl.stats.complete
    assert crawl.stats.end_reason == "max_items"


@pytest.mark.anyio
async def test_window_keeps_concurrency_requests_in_flight(clean: EmulatorServer) -> None:
    """A streaming crawl at concurrency 4 keeps the server busy with 4 requests, never more."""
    clean.emulator.set_faults(Faults({"latency": 1.0}, latency=0.03))
    async with _client(clean) as client:
        got, _ = await _crawl_ids(client, page_size=50, max_items=1_000, concurrency=4)
    assert len(got) == 1_000
    arrivals = sorted(record.time for record in clean.emulator.requests)
    overlaps = [sum(1 for t in arrivals if now - 0.03 < t <= now) for now in arrivals]
    assert max(overlaps) <= 4
    # 20 pages in 5 rounds of 4, not 20 rounds of 1: the whole walk takes about 6 latencies.
    assert arrivals[-1] - arrivals[0] < 12 * 0.03


@pytest.mark.anyio
async def test_a_slow_page_holds_back_a_bounded_window() -> None:
    """While page 2 takes 1 s, the window asks at most concurrency x depth pages past it."""
    catalog_walk = straight(10_000)
    asked_meanwhile: list[int] = []

    def serve(offset: int, limit: int, n: int) -> tuple[list[int], int] | int:
        if offset == 100 and not asked_meanwhile:
            time.sleep(1.0)
            asked_meanwhile.append(max(o for o, _ in server.asked))
        return catalog_walk(offset, limit, n)

    with PagingServer(serve) as server:
        async with _loopback(server) as client:
            got, _ = await _crawl_ids(client, page_size=100, max_items=3_000, concurrency=2)
    assert got == [str(1_000_000 + n) for n in range(3_000)]
    # Two in flight, four pages per request: the plan held offsets 100..800 at most.
    assert len(asked_meanwhile) == 1
    assert asked_meanwhile[0] <= 800


@pytest.mark.anyio
@pytest.mark.parametrize("trials", [6, pytest.param(100, marks=pytest.mark.soak)])
async def test_window_and_steps_equal_a_sequential_walk_under_random_faults(
    clean: EmulatorServer, trials: int
) -> None:
    """Over random fault draws, page sizes and concurrencies, every walk yields the same."""
    async with _client(clean) as client:
        expected = [track.asset_id async for track in client.iter_tracks(QUERY)]
        assert len(expected) == 2_659
        clean.emulator.set_faults(
            Faults(
                {"500": 0.08, "503": 0.04, "429": 0.04, "drop": 0.02, "latency": 0.3},
                latency=0.002,
                retry_after=0,
            )
        )
        rng = random.Random(11)
        for _ in range(trials):  # the emulator's fault draws go on from trial to trial
            page_size, concurrency = rng.randint(7, 100), rng.randint(1, 16)
            max_items = rng.choice([None, rng.randint(1, 2_659)])
            want = expected[:max_items]
            got, stats = await _crawl_ids(
                client, page_size=page_size, max_items=max_items, concurrency=concurrency
            )
            assert got == want, (page_size, concurrency, max_items)
            assert stats.complete
            plain = [
                track.asset_id
                async for track in client.iter_tracks(
                    QUERY, page_size=page_size, max_items=max_items, concurrency=concurrency
                )
            ]
            assert plain == want
            options = WalkOptions(page_size=page_size, max_items=max_items, concurrency=concurrency)
            offsets: list[int] = []

            async def fetch(offset: int, limit: int, *, fresh: bool = False) -> SearchResponse:
                return await client.search(QUERY, limit=limit, offset=offset, cache=not fresh)

            async with stream_pages(fetch, options) as pages:
                async for offset, page in pages:
                    offsets.append(offset)
                    served = [track.asset_id for track in page.tracks]
                    assert served == expected[offset : offset + len(served)]
            assert offsets == list(range(0, len(want), page_size))
    assert any(record.faults for record in clean.emulator.requests)


@pytest.mark.anyio
async def test_leaving_the_window_cancels_everything_in_flight(clean: EmulatorServer) -> None:
    """A break, a cancellation or an error in the loop leaves no task running, error unwrapped."""
    clean.emulator.set_faults(Faults({"latency": 1.0}, latency=0.5))
    async with _client(clean) as client:
        await client.search(QUERY, limit=1)  # the connection pool is warm
        before = {task.id for task in anyio.get_running_tasks()}

        async with client.crawl(QUERY, concurrency=8) as crawl:
            async for _ in crawl:
                break
        assert {task.id for task in anyio.get_running_tasks()} == before

        with anyio.move_on_after(0.7) as scope:
            async with client.crawl(QUERY, concurrency=8) as crawl:
                async for _ in crawl:
                    pass
        assert scope.cancelled_caught
        assert {task.id for task in anyio.get_running_tasks()} == before

        class Stop(Exception):
            pass

        async def fail_in_the_loop() -> None:
            async with client.crawl(QUERY, concurrency=8) as crawl:
                async for _ in crawl:
                    raise Stop

        with pytest.raises(Stop):  # the exception itself, not an ExceptionGroup
            await fail_in_the_loop()
        assert {task.id for task in anyio.get_running_tasks()} == before
        assert crawl.stats.complete is False
        assert crawl.stats.end_reason is None


@pytest.mark.anyio
async def test_plain_crawl_still_iterates_without_async_with(clean: EmulatorServer) -> None:
    """`async for track in client.crawl(...)` without a block walks every track, in order."""
    async with _client(clean) as client:
        expected = [track.asset_id async for track in client.iter_tracks(QUERY, max_items=555)]
        crawl = client.crawl(QUERY, max_items=555, concurrency=4)
        got = [track.asset_id async for track in crawl]
    assert got == expected
    assert crawl.stats.complete
    assert crawl.stats.end_reason == "max_items"


@pytest.mark.anyio
async def test_a_crawl_opens_once() -> None:
    """Entering a crawl twice, or iterating it after its block, is a clear AudioScapeError."""
    with PagingServer(straight(300)) as server:
        async with _loopback(server) as client:
            crawl = client.crawl(QUERY)
            async with crawl:
                with pytest.raises(AudioScapeError, match="started already"):
                    async with crawl:
                        pass
            with pytest.raises(AudioScapeError, match="block has ended"):
                async for _ in crawl.batches():
                    pass
            assert len(server.asked) <= 1  # opened, never read: at most the first page


# -- the rules that end a walk ------------------------------------------------------------


async def _walk_both_ways(server: PagingServer, **walk: Any) -> list[BaseException | list[str]]:
    """The outcome of a plain sequential walk and of a streaming window at concurrency 4."""
    outcomes: list[BaseException | list[str]] = []
    async with _loopback(server) as client:
        try:
            outcomes.append(
                [t.asset_id async for t in client.iter_tracks(QUERY, page_size=100, **walk)]
            )
        except AudioScapeError as error:
            outcomes.append(error)
        try:
            outcomes.append((await _crawl_ids(client, page_size=100, concurrency=4, **walk))[0])
        except AudioScapeError as error:
            outcomes.append(error)
    return outcomes


@pytest.mark.anyio
async def test_a_server_that_ignores_offset_stops_the_walk() -> None:
    """The same page for every offset is a PaginationError, not a walk to meta.total."""
    with PagingServer(lambda _o, limit, _n: (list(range(limit)), 1_000_000)) as server:
        outcomes = await _walk_both_ways(server)
        assert server.asked[:2] == [(0, 100), (100, 100)]
        assert len(server.asked) <= 2 + 1 + 16  # sequential, then the first page and a window
    for outcome in outcomes:
        assert isinstance(outcome, PaginationError)
        assert outcome.reason == "offset_ignored"
        assert "ignores the offset" in str(outcome)


@pytest.mark.anyio
async def test_pages_of_only_seen_tracks_stop_the_walk() -> None:
    """A server cycling through two pages fails after max_stale_pages stale pages in a row."""
    with PagingServer(
        lambda o, limit, _n: (list(range(o % 200, o % 200 + limit)), 10**6)
    ) as server:
        outcomes = await _walk_both_ways(server)
    for outcome in outcomes:
        assert isinstance(outcome, PaginationError)
        assert outcome.reason == "stale_pages"
        assert outcome.offset == 400  # pages 200, 300, 400: three stale in a row


@pytest.mark.anyio
async def test_a_total_that_grows_on_every_page_stops_the_walk() -> None:
    """meta.total always a page ahead of the walk ends it past twice the first total."""
    with PagingServer(lambda o, limit, _n: (list(range(o, o + limit)), 1_100 + o)) as server:
        outcomes = await _walk_both_ways(server)
    for outcome in outcomes:
        assert isinstance(outcome, PaginationError)
        assert outcome.reason == "total_unstable"
        assert "grew from 1100 to 2300 at offset 1200" in str(outcome)


@pytest.mark.anyio
async def test_a_total_that_keeps_changing_stops_the_walk() -> None:
    """meta.total taking a new value on every page fails after max_total_changes new values."""
    with PagingServer(lambda o, limit, n: (list(range(o, o + limit)), 100_000 - n)) as server:
        outcomes = await _walk_both_ways(server)
    for outcome in outcomes:
        assert isinstance(outcome, PaginationError)
        assert outcome.reason == "total_unstable"
        assert "21 different values" in str(outcome)


@pytest.mark.anyio
async def test_a_transient_empty_page_is_asked_again_and_the_walk_goes_on(
    sleeps: list[float],
) -> None:
    """An empty page at offset 300 the first time is asked again; every track arrives, complete."""
    catalog_walk = straight(1_000)

    def serve(offset: int, limit: int, n: int) -> tuple[list[int], int] | int:
        if offset == 300 and (offset, limit) not in server.asked[: n - 1]:
            return [], 1_000
        return catalog_walk(offset, limit, n)

    with PagingServer(serve) as server:
        async with _loopback(server) as client:
            got, stats = await _crawl_ids(client, page_size=100, concurrency=4)
            plain = [t.asset_id async for t in client.iter_tracks(QUERY, page_size=100)]
    assert got == plain == [str(1_000_000 + n) for n in range(1_000)]
    assert stats.retries == {"empty_page": 1}
    assert stats.complete
    assert stats.end_reason == "end_of_results"
    assert sleeps == [0.5]  # the window's re-ask; the plain walk's page 300 was not empty


@pytest.mark.anyio
async def test_a_transient_short_page_is_filled_in_and_the_walk_goes_on() -> None:
    """A page of 30 of 100 tracks before the end: its missing 70 are asked for, none lost."""
    catalog_walk = straight(1_000)
    shortened: set[int] = set()

    def serve(offset: int, limit: int, n: int) -> tuple[list[int], int] | int:
        numbers, total = catalog_walk(offset, limit, n)  # type: ignore[misc]
        if offset == 200 and 200 not in shortened:
            shortened.add(200)
            return numbers[:30], total
        return numbers, total

    with PagingServer(serve) as server:
        async with _loopback(server) as client:
            got, stats = await _crawl_ids(client, page_size=100, concurrency=4)
        assert (230, 70) in server.asked  # the gap alone; the pages after it stand
    assert got == [str(1_000_000 + n) for n in range(1_000)]
    assert stats.drift == {"short_page": 1}
    assert stats.complete


@pytest.mark.anyio
async def test_an_empty_page_that_stays_empty_ends_the_walk_incomplete(
    sleeps: list[float],
) -> None:
    """An empty page before meta.total, three times: the walk ends there, not complete."""
    with PagingServer(straight(450, total=1_000)) as server:
        async with _loopback(server) as client:
            got, stats = await _crawl_ids(client, page_size=100, concurrency=4)
    assert got == [str(1_000_000 + n) for n in range(450)]
    assert sleeps == [0.5, 1.0]
    assert stats.complete is False
    assert stats.end_reason == "empty_page"
    assert stats.to_dict()["complete"] is False


@pytest.mark.anyio
async def test_a_walk_to_the_total_is_complete() -> None:
    """A walk that reaches meta.total says so: complete, "end_of_results"."""
    with PagingServer(straight(250)) as server:
        async with _loopback(server) as client:
            got, stats = await _crawl_ids(client, page_size=100, concurrency=2)
    assert len(got) == 250
    assert stats.complete
    assert stats.end_reason == "end_of_results"
    assert stats.to_dict()["end_reason"] == "end_of_results"


def test_sync_client_stops_a_walk_that_makes_no_progress() -> None:
    """Through the sync Client, an ignored offset is a PaginationError too."""
    server = PagingServer(lambda _o, limit, _n: (list(range(limit)), 10**6))
    with server, Client(API_KEY, base_url=server.url, retry=QUICK) as client:
        with pytest.raises(PaginationError, match="ignores the offset"):
            list(client.iter_tracks(QUERY))
        crawl = client.crawl(QUERY, concurrency=4)
        with pytest.raises(PaginationError):
            list(crawl)
        assert crawl.stats.end_reason == "offset_ignored"


def test_walk_options_check_their_bounds() -> None:
    """A WalkOptions bound out of range is an InvalidParameterError naming it."""
    with pytest.raises(InvalidParameterError, match="max_stale_pages"):
        WalkOptions(max_stale_pages=0)
    with pytest.raises(InvalidParameterError, match="max_total_growth"):
        WalkOptions(max_total_growth=0.5)
    with pytest.raises(InvalidParameterError, match="concurrency"):
        WalkOptions(concurrency=0)


async def _never_fetch(offset: int, limit: int, *, fresh: bool) -> SearchResponse:
    raise AssertionError(f"asked for offset {offset}: max_items was already reached")


@pytest.mark.anyio
@pytest.mark.timeout(20)  # the bug this guards against was a loop with no await in it
@pytest.mark.parametrize("concurrency", [1, 4])
async def test_a_walk_resumed_at_max_items_ends_at_once(concurrency: int) -> None:
    """A crawl killed after writing its last page, then resumed: no request, no hang.

    The walk starts with `delivered` equal to `max_items`: nothing may be asked, and it ends
    with end_reason "max_items" (the streaming window asserted, the stepped one spun).
    """
    from audioscape_async._crawl._pagination import stream_tracks, walk_tracks

    options = WalkOptions(start=400, page_size=50, max_items=400, concurrency=concurrency)
    stats = CrawlStats()
    with anyio.fail_after(10):
        async with aclosing(
            walk_tracks(_never_fetch, options, stats=stats, seen={"a"}, delivered=400)
        ) as batches:
            assert [batch async for batch in batches] == []
        assert (stats.end_reason, stats.complete) == ("max_items", True)
        stats = CrawlStats()
        async with stream_tracks(
            _never_fetch, options, stats=stats, seen={"a"}, delivered=400
        ) as stream:
            assert [batch async for batch in stream] == []
    assert (stats.end_reason, stats.complete) == ("max_items", True)
