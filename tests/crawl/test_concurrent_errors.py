"""A concurrent walk fails the way a sequential one does: same pages first, then the SDK's error.

Stepped and streaming, async and sync; never an ExceptionGroup.
"""

from __future__ import annotations

import httpx
import orjson
import pytest

from audioscape_async import AsyncClient, BadRequestError, Client, SearchResponse
from audioscape_async._crawl._pagination import WalkOptions, stream_pages
from tests.crawl.test_pagination import PagingServer
from tests.helpers import API_KEY

TOTAL = 1_000
BROKEN_OFFSET = 300


def _handler(request: httpx.Request) -> httpx.Response:
    body = orjson.loads(request.content)
    offset, limit = body["offset"], body["limit"]
    if offset == BROKEN_OFFSET:
        return httpx.Response(400, json={"error": "offset 300 is cursed"})
    tracks = [
        {
            "asset_id": str(100_000 + i),
            "name": f"Track {i}",
            "artist": "Artist",
            "album": "Album",
            "duration": 90,
            "genre": "lo-fi",
            "bpm": 80,
            "score": 1 - i / TOTAL,
        }
        for i in range(offset, min(TOTAL, offset + limit))
    ]
    meta = {
        "total": TOTAL,
        "limit": limit,
        "offset": offset,
        "search_method": "semantic",
        "matched_artist": None,
    }
    return httpx.Response(200, json={"tracks": tracks, "artists": [], "albums": [], "meta": meta})


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [1, 2, 8])
async def test_failed_page_raises_its_own_error_after_the_pages_before_it(
    concurrency: int,
) -> None:
    """Pages before the failed one arrive, then its BadRequestError: never an ExceptionGroup."""
    http = httpx.AsyncClient(transport=httpx.MockTransport(_handler))
    offsets: list[int] = []

    async def walk() -> None:
        async for page in client.iter_pages("q", page_size=100, concurrency=concurrency):
            offsets.append(page.meta.offset)

    async with http, AsyncClient("key", base_url="http://127.0.0.1/v1", http_client=http) as client:
        with pytest.raises(BadRequestError, match="offset 300 is cursed"):
            await walk()
    assert offsets == [0, 100, 200]


def _cursed(offset: int, limit: int, _n: int) -> tuple[list[int], int] | int:
    if offset == BROKEN_OFFSET:
        return 400
    return list(range(offset, min(TOTAL, offset + limit))), TOTAL


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [1, 2, 8])
async def test_streaming_window_fails_like_a_sequential_walk(concurrency: int) -> None:
    """In a streaming crawl, the pages before the failed one arrive, then its BadRequestError."""
    batches: list[int] = []
    offsets: list[int] = []
    with PagingServer(_cursed) as server:
        async with AsyncClient(API_KEY, base_url=server.url) as client:

            async def crawl_all() -> None:
                async with client.crawl("q", page_size=100, concurrency=concurrency) as crawl:
                    async for batch in crawl.batches():
                        batches.append(len(batch))

            async def fetch(offset: int, limit: int, *, fresh: bool = False) -> SearchResponse:
                return await client.search("q", limit=limit, offset=offset, cache=not fresh)

            async def pages_all() -> None:
                options = WalkOptions(page_size=100, concurrency=concurrency)
                async with stream_pages(fetch, options) as pages:
                    async for offset, _ in pages:
                        offsets.append(offset)

            with pytest.raises(BadRequestError, match="offset 300 failed"):
                await crawl_all()
            with pytest.raises(BadRequestError, match="offset 300 failed"):
                await pages_all()
        # The window holds at most 4 pages per request in flight: nothing further was asked.
        assert max(offset for offset, _ in server.asked) < BROKEN_OFFSET + 100 * 4 * concurrency
    assert batches == [100, 100, 100]
    assert offsets == [0, 100, 200]


def test_sync_crawl_fails_like_a_sequential_walk() -> None:
    """Through the sync Client, a crawl delivers the pages before the failed one, then raises."""
    got: list[str] = []
    server = PagingServer(_cursed)
    with server, Client(API_KEY, base_url=server.url) as client:
        crawl = client.crawl("q", page_size=100, concurrency=8)
        with pytest.raises(BadRequestError, match="offset 300 failed"):
            got.extend(track.asset_id for track in crawl)
    assert len(got) == 300
    assert crawl.stats.end_reason == "error"
    assert crawl.stats.complete is False
