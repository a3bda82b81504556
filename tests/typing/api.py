"""How the public API reads to a type checker. Type-checked by mypy, never run.

Each `assert_type` pins a type a user relies on; each ``# type: ignore[...]``
pins a mistake the checker must catch (mypy's strict mode reports an ignore
that is no longer needed, so a loosened signature fails here too).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator

import httpx
from typing_extensions import assert_type

from audioscape_async import (
    DEFAULT_BASE_URL,
    AlbumSummary,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    ArtistSummary,
    AsyncClient,
    AudioScapeError,
    Client,
    DeadlineExceededError,
    DurationRange,
    InvalidParameterError,
    RateLimitError,
    RetryPolicy,
    SearchFilters,
    SearchMeta,
    SearchResponse,
    Track,
)


async def async_usage() -> None:
    policy = RetryPolicy(max_retries=5, initial_backoff=0.25, max_backoff=4.0)
    async with AsyncClient(
        "key",
        base_url=DEFAULT_BASE_URL,
        timeout=10.0,
        max_retries=2,
        retry=policy,
        http_client=httpx.AsyncClient(),
        default_headers={"x-game": "zone-7"},
    ) as client:
        assert_type(client, AsyncClient)
        assert_type(client.base_url, httpx.URL)
        assert_type(client.retry_policy, RetryPolicy)
        assert_type(client.is_closed, bool)

        page = await client.search("dark cinematic boss tension", limit=1, offset=0)
        assert_type(page, SearchResponse)
        assert_type(page.tracks, tuple[Track, ...])
        assert_type(page.artists, tuple[ArtistSummary, ...])
        assert_type(page.albums, tuple[AlbumSummary, ...])
        assert_type(page.meta, SearchMeta)
        assert_type(page.request_id, str | None)

        track = page.tracks[0]
        assert_type(track.asset_id, str)
        assert_type(track.name, str)
        assert_type(track.duration, float)
        assert_type(track.bpm, float)
        assert_type(track.score, float)
        assert_type(page.meta.total, int)
        assert_type(page.meta.search_method, str)
        assert_type(page.meta.matched_artist, str | None)
        assert_type(page.artists[0].track_count, int)

        filters = SearchFilters(
            genres=["electronic"],
            duration=DurationRange(min=60, max=180),
            min_play_count=1000,
            min_likes=10,
            created_after=dt.date(2024, 1, 1),
        )
        await client.search("chill", filters=filters)
        await client.search("chill", filters={"genres": ["pop"], "created_after": "2024-01-01"})

        async for found in client.iter_tracks("chill lo-fi beats", page_size=100, max_items=None):
            assert_type(found, Track)
        async for each in client.iter_pages("upbeat summer vibes", filters=filters, page_size=50):
            assert_type(each, SearchResponse)

        timed = await client.search(
            "chill",
            timeout=httpx.Timeout(2.0),
            max_retries=0,
            extra_headers={"x-trace": "1"},
            deadline=1.5,
        )
        assert_type(timed.status_code, int | None)
        assert_type(timed.headers, httpx.Headers | None)
        assert_type(timed.elapsed, float | None)
        assert_type(timed.attempts, int)
        assert_type(timed.cache_status, str | None)
        copy = client.with_options(timeout=None, max_retries=5, default_headers={"x": "y"})
        assert_type(copy, AsyncClient)
        assert_type(client.max_response_bytes, int)
        assert_type(client.timeout, httpx.Timeout)
        await client.search("q", deadline="1")  # type: ignore[arg-type]
        client.with_options(http_client=httpx.AsyncClient())  # type: ignore[call-arg]
        await client.search("q", 5)  # type: ignore[call-arg]
        await client.search(query=["not", "a", "string"])  # type: ignore[arg-type]
        await client.search("q", limit="10")  # type: ignore[arg-type]
        client.search_tracks("q")  # type: ignore[attr-defined]


def sync_usage() -> None:
    with Client(max_retries=1) as client:
        assert_type(client, Client)
        page = client.search("chill lo-fi beats", limit=5)
        assert_type(page, SearchResponse)
        assert_type(client.iter_tracks("chill lo-fi beats"), Iterator[Track])
        assert_type(client.iter_pages("chill lo-fi beats"), Iterator[SearchResponse])
        for track in client.iter_tracks("chill lo-fi beats", max_items=50, deadline=30):
            assert_type(track, Track)
        assert_type(client.with_options(max_retries=0), Client)
        assert_type(client.timeout, httpx.Timeout)
        client.close()


def error_handling(client: Client) -> None:
    try:
        client.search("q")
    except DeadlineExceededError as error:
        assert_type(error.message, str)
    except RateLimitError as error:
        assert_type(error.retry_after, float | None)
        assert_type(error.status_code, int)
    except APIStatusError as error:
        assert_type(error.status_code, int)
        assert_type(error.message, str)
        assert_type(error.body, object)
        assert_type(error.request_id, str | None)
        assert_type(error.response, httpx.Response | None)
    except APIResponseValidationError as error:
        assert_type(error.body, object)
    except APIConnectionError as error:
        assert_type(error.request, httpx.Request | None)
    except InvalidParameterError as error:
        assert_type(error.parameter, str)
        bad_value: ValueError = error
        del bad_value
    except AudioScapeError as error:
        assert_type(error.message, str)
