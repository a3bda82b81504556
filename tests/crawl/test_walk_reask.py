"""A walk's second look goes to the server, never to the cache (`_crawl._walk`).

The emulator's catalog for QUERY: 340 tracks (`generate_catalog(800)`). A
page left in the cache by an earlier search, from a smaller catalog or an
answer that came back empty, must not end or shorten a walk with
``cache=True``: the walk asks the server again, delivers every track, and the
server's page replaces the cached one.
"""

from __future__ import annotations

from collections.abc import Iterator

import orjson
import pytest

from audioscape_async import AsyncClient, Client, SearchCache, SearchResponse
from audioscape_async._cache import cache_key
from audioscape_async._crawl._pagination import WalkOptions, walk_pages
from audioscape_async._decode import decode_search_response
from audioscape_async._fingerprint import fingerprint
from audioscape_async.emulator import EmulatorServer, generate_catalog
from tests.crawl.support import QUERY, client_for
from tests.helpers import ids, page_json

#: The catalog of the walks, and how many of its tracks QUERY matches.
FULL, TOTAL = 800, 340
#: Smaller catalogs: QUERY matches 115 of 300 (a short second page), 70 of 200 (an empty one).
SHORT_CATALOG, EMPTY_CATALOG = 300, 200
PAGE = 100


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """The emulator with the full catalog."""
    with EmulatorServer(tracks=FULL) as running:
        yield running


def all_ids(server: EmulatorServer) -> list[str]:
    """QUERY's tracks in the full catalog, in order, as the API ranks them."""
    found: list[str] = []
    for offset in range(0, TOTAL, PAGE):
        answer = server.emulator.search(QUERY, limit=PAGE, offset=offset)
        assert answer["meta"]["total"] == TOTAL
        found += [track["asset_id"] for track in answer["tracks"]]
    return found


def asked_at(server: EmulatorServer, offset: int) -> int:
    """How many requests for the page at `offset` reached the server."""
    return sum(record.offset == offset for record in server.emulator.requests)


async def cache_an_old_page(server: EmulatorServer, client: AsyncClient, catalog: int) -> None:
    """Search the second page with the cache while the catalog is smaller, then restore it."""
    server.emulator.replace_catalog(generate_catalog(catalog))
    old = await client.search(QUERY, limit=PAGE, offset=PAGE)
    assert old.cache_status == "miss"
    assert len(old.tracks) < PAGE
    assert old.meta.total < TOTAL
    server.emulator.replace_catalog(generate_catalog(FULL))


async def assert_cache_holds_the_servers_page(server: EmulatorServer, client: AsyncClient) -> None:
    requests = len(server.emulator.requests)
    page = await client.search(QUERY, limit=PAGE, offset=PAGE)
    assert page.cache_status == "hit"
    assert len(page.tracks) == PAGE
    assert page.meta.total == TOTAL
    assert len(server.emulator.requests) == requests


@pytest.mark.anyio
async def test_an_empty_page_in_the_cache_is_asked_again_from_the_server(
    server: EmulatorServer, sdk_transport: str
) -> None:
    """A cached empty page before meta.total (an answer that came back empty) ends no walk."""
    cache = SearchCache(ttl=60)
    async with client_for(server, cache=cache, transport=sdk_transport) as client:
        # The server's empty answer for the second page, as an index still filling up
        # gives it: a real page of the emulator (asked past the end), meta.total 340.
        empty = await client.search(QUERY, limit=PAGE, offset=TOTAL, cache=False)
        assert (len(empty.tracks), empty.meta.total) == (0, TOTAL)

        async def answered_empty() -> SearchResponse:
            return empty

        owner = fingerprint(str(client.base_url), server.api_key)
        await cache.fetch(cache_key(owner, QUERY, PAGE, PAGE, None), answered_empty, deadline=None)

        tracks = [
            track.asset_id async for track in client.iter_tracks(QUERY, page_size=PAGE, cache=True)
        ]
        assert tracks == all_ids(server)
        assert asked_at(server, PAGE) == 1  # the second look reached the server
        await assert_cache_holds_the_servers_page(server, client)


@pytest.mark.anyio
@pytest.mark.parametrize("catalog", [SHORT_CATALOG, EMPTY_CATALOG], ids=["short", "empty"])
async def test_a_page_cached_from_an_older_catalog_is_asked_again(
    server: EmulatorServer, sdk_transport: str, catalog: int
) -> None:
    """A short or empty page cached before the catalog grew: every page, in order."""
    cache = SearchCache(ttl=60)
    async with client_for(server, cache=cache, transport=sdk_transport) as client:
        await cache_an_old_page(server, client, catalog)
        pages = [page async for page in client.iter_pages(QUERY, page_size=PAGE, cache=True)]
        assert [len(page.tracks) for page in pages] == [100, 100, 100, 40]
        assert [t.asset_id for page in pages for t in page.tracks] == all_ids(server)
        assert asked_at(server, PAGE) == 2  # the old search, then the second look
        await assert_cache_holds_the_servers_page(server, client)


@pytest.mark.anyio
async def test_a_streaming_crawl_asks_a_doubtful_cached_page_again(
    server: EmulatorServer, sdk_transport: str
) -> None:
    """The streaming window (concurrency 4) does the same, and counts it in its statistics."""
    cache = SearchCache(ttl=60)
    async with client_for(server, cache=cache, transport=sdk_transport) as client:
        await cache_an_old_page(server, client, SHORT_CATALOG)
        async with client.crawl(QUERY, page_size=PAGE, concurrency=4, cache=True) as crawl:
            tracks = [track.asset_id async for track in crawl]
        assert tracks == all_ids(server)
        assert crawl.stats.complete
        assert crawl.stats.retries.get("cached_page") == 1
        assert crawl.stats.drift.get("total_changed") is None  # the old total was never believed
        await assert_cache_holds_the_servers_page(server, client)


def test_the_sync_client_walk_asks_a_doubtful_cached_page_again(server: EmulatorServer) -> None:
    """Through the sync Client: every track, the second look at the server."""
    cache = SearchCache(ttl=60)
    with Client(server.api_key, base_url=server.url, cache=cache) as client:
        server.emulator.replace_catalog(generate_catalog(SHORT_CATALOG))
        assert len(client.search(QUERY, limit=PAGE, offset=PAGE).tracks) == 15
        server.emulator.replace_catalog(generate_catalog(FULL))
        tracks = [t.asset_id for t in client.iter_tracks(QUERY, page_size=PAGE, cache=True)]
        assert tracks == all_ids(server)
        assert asked_at(server, PAGE) == 2
        again = client.search(QUERY, limit=PAGE, offset=PAGE)
        assert (again.cache_status, len(again.tracks)) == ("hit", PAGE)


@pytest.mark.anyio
async def test_second_looks_are_sent_fresh() -> None:
    """The walk asks its fetcher for a fresh page when it re-asks an empty page or fills a gap."""
    catalog = ids(300)
    asked: list[tuple[int, int, bool]] = []

    async def fetch(offset: int, limit: int, *, fresh: bool) -> SearchResponse:
        asked.append((offset, limit, fresh))
        served = catalog[offset : offset + limit]
        if offset == 100 and not fresh:
            served = []  # the first look at the second page comes back empty
        elif offset == 200 and not fresh:
            served = served[:50]  # the third, short
        body = page_json(served, total=300, offset=offset, limit=limit)
        return decode_search_response(orjson.dumps(body))

    options = WalkOptions(page_size=100, empty_page_backoff=0.0)
    got = [track.asset_id async for _, page in walk_pages(fetch, options) for track in page.tracks]
    assert got == catalog
    assert asked == [
        (0, 100, False),
        (100, 100, False),
        (100, 100, True),  # the empty page's re-ask
        (200, 100, False),
        (250, 100, True),  # the short page's missing part (planned from its end)
    ]
