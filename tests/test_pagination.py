"""`iter_pages` and `iter_tracks`: walking offset/limit pages up to `meta.total`."""

from __future__ import annotations

import logging
from contextlib import aclosing
from typing import Any

import httpx
import pytest

from audioscape_async import BadRequestError, SearchFilters
from tests.helpers import (
    MockAPI,
    catalog,
    error,
    ids,
    ok,
    open_client,
    page_json,
    record_sleeps,
    suspended_sdk_generators,
)


@pytest.fixture(autouse=True)
def sleeps(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """No test here waits out a retry backoff."""
    return record_sleeps(monkeypatch)


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
