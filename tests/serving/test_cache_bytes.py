"""`SearchCache(max_bytes=...)`: the in-process store bounded in bytes, expired entries swept."""

from __future__ import annotations

import logging

import orjson
import pytest

from audioscape_async import AsyncClient, InvalidParameterError, SearchCache, SearchResponse
from audioscape_async import _cache as cache_module
from audioscape_async._cache import cache_key
from audioscape_async._decode import decode_search_response
from audioscape_async.emulator import EmulatorServer
from tests.helpers import ids, page_json


class FakeClock:
    """The in-process store's clock, moved by the test."""

    def __init__(self) -> None:
        self.now = 5_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    """Drive the cache's clock from the test."""
    fake = FakeClock()
    monkeypatch.setattr(cache_module, "clock", fake)
    return fake


def body_of(count: int) -> bytes:
    """A page's JSON body with `count` tracks, compact, as the API sends it."""
    return orjson.dumps(page_json(ids(count)))


def key(n: int) -> str:
    return cache_key("owner", f"query {n}", 5, 0, None)


async def store(cache: SearchCache, n: int, body: bytes) -> SearchResponse:
    """Fetch key `n` through the cache, answered by `body` decoded."""

    async def call() -> SearchResponse:
        return decode_search_response(body, f"req-{n}")

    return await cache.fetch(key(n), call, deadline=None)


def test_max_bytes_defaults_to_64_mib_and_shows() -> None:
    """max_bytes is 64 MiB by default; repr and stats() show it and the bytes held."""
    cache = SearchCache()
    assert cache.max_bytes == 64 * 2**20
    assert "max_bytes=67108864" in repr(cache)
    assert cache.stats()["bytes"] == 0


@pytest.mark.parametrize("value", [0, -1, 1.5, True, "64MB", None])
def test_invalid_max_bytes(value: object) -> None:
    """A max_bytes that is not an integer >= 1 is an InvalidParameterError naming it."""
    with pytest.raises(InvalidParameterError) as caught:
        SearchCache(max_bytes=value)  # type: ignore[arg-type]
    assert caught.value.parameter == "cache.max_bytes"


@pytest.mark.anyio
async def test_bytes_count_the_json_body_and_bound_the_store() -> None:
    """Each page counts its JSON body's length; past max_bytes the least recently used go."""
    body = body_of(10)
    size = len(body)
    cache = SearchCache(ttl=60, max_bytes=size * 5 // 2)  # room for two pages
    await store(cache, 1, body)
    assert cache.stats()["bytes"] == pytest.approx(size, rel=0.02)  # msgspec writes it again
    held = cache.stats()["bytes"]
    await store(cache, 2, body)
    assert (await store(cache, 1, body)).cache_status == "hit"  # 1 is now the most recent
    await store(cache, 3, body)  # evicts 2
    assert cache.stats()["entries"] == 2
    assert cache.stats()["bytes"] == 2 * held
    assert (await store(cache, 1, body)).cache_status == "hit"
    assert (await store(cache, 3, body)).cache_status == "hit"
    assert (await store(cache, 2, body)).cache_status == "miss"


@pytest.mark.anyio
async def test_a_page_larger_than_max_bytes_is_served_not_kept(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A page past max_bytes alone is served ("miss"), never stored, and nothing is logged."""
    cache = SearchCache(ttl=60, max_bytes=len(body_of(20)))
    await store(cache, 1, body_of(5))
    with caplog.at_level(logging.DEBUG, logger="audioscape_async"):
        big = await store(cache, 2, body_of(40))
        again = await store(cache, 2, body_of(40))
    assert (big.cache_status, again.cache_status) == ("miss", "miss")
    assert len(big.tracks) == 40
    assert cache.stats()["entries"] == 1  # the small page stayed
    assert (await store(cache, 1, body_of(5))).cache_status == "hit"
    assert caplog.records == []


@pytest.mark.anyio
async def test_expired_entries_are_swept_on_store(clock: FakeClock) -> None:
    """Entries past ttl + stale_if_error are dropped at the next store, read or not."""
    cache = SearchCache(ttl=10, stale_if_error=5)
    for n in range(100):
        await store(cache, n, body_of(3))
    each = cache.stats()["bytes"] // 100
    clock.now += 14.9
    await store(cache, 100, body_of(3))
    assert cache.stats()["entries"] == 101  # still servable as stale
    clock.now += 0.1  # the first 100 are now past the stale window
    await store(cache, 101, body_of(3))
    assert cache.stats()["entries"] == 2
    assert cache.stats()["bytes"] == 2 * each


@pytest.mark.anyio
async def test_a_refreshed_page_replaces_the_entry_and_its_bytes() -> None:
    """A refresh stores its page in place of the old one: entries and bytes count it once."""
    cache = SearchCache(ttl=60)
    await store(cache, 1, body_of(2))
    small = cache.stats()["bytes"]

    async def bigger() -> SearchResponse:
        return decode_search_response(body_of(30), "req-new")

    page = await cache.fetch(key(1), bigger, deadline=None, refresh=True)
    assert page.cache_status == "miss"
    stats = cache.stats()
    assert stats["entries"] == 1
    assert stats["bytes"] > small * 5
    assert len((await store(cache, 1, body_of(2))).tracks) == 30  # a hit of the new page


@pytest.mark.anyio
async def test_bytes_of_a_real_answer_are_its_content_length(
    audioscape_emulator: EmulatorServer, sdk_transport: str
) -> None:
    """Through the emulator, a page counts exactly the body the server sent."""
    cache = SearchCache(ttl=60)
    server = audioscape_emulator
    async with AsyncClient(
        server.api_key, base_url=server.url, cache=cache, transport=sdk_transport
    ) as client:
        page = await client.search("dark cinematic", limit=50)
    assert page.headers is not None
    assert cache.stats()["bytes"] == int(page.headers["content-length"]) > 1_000
