"""A concurrent walk fails the way a sequential one does: same pages first, then the SDK's error."""

from __future__ import annotations

import httpx
import orjson
import pytest

from audioscape_async import AsyncClient, BadRequestError

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
