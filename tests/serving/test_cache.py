"""`SearchCache`: hits, TTL and LRU bounds, coalescing, stale-if-error."""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

import anyio
import anyio.lowlevel
import orjson
import pytest

from audioscape_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidParameterError,
    RateLimitError,
    SearchResponse,
)
from audioscape_async import _cache as cache_module
from audioscape_async._cache import SearchCache, cache_key
from audioscape_async._decode import decode_search_response
from audioscape_async._exceptions import CircuitOpenError
from audioscape_async.emulator import EmulatorServer
from tests.helpers import page_json

KEY = cache_key("http://api.test/developer/v1", "dark boss", 5, 0, None)


def make_page(asset_id: str = "1837070127") -> SearchResponse:
    return decode_search_response(orjson.dumps(page_json([asset_id])), "req-1")


class Calls:
    """A `call` for `fetch` that counts its calls and answers from a script."""

    def __init__(self, *answers: SearchResponse | Exception) -> None:
        self.answers = list(answers) or [make_page()]
        self.count = 0

    async def __call__(self) -> SearchResponse:
        self.count += 1
        answer = self.answers[min(self.count, len(self.answers)) - 1]
        await anyio.lowlevel.checkpoint()
        if isinstance(answer, Exception):
            raise answer
        return answer


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


def test_cache_key_trims_the_query_and_nothing_else() -> None:
    """The key trims the query's ends but keeps its case and inner spaces."""
    base = "http://api.test"
    assert cache_key(base, "  dark boss \n", 5, 0, None) == cache_key(base, "dark boss", 5, 0, None)
    assert cache_key(base, "Dark boss", 5, 0, None) != cache_key(base, "dark boss", 5, 0, None)
    assert cache_key(base, "dark  boss", 5, 0, None) != cache_key(base, "dark boss", 5, 0, None)


def test_cache_key_covers_the_whole_request() -> None:
    """Base URL, limit, offset and filters each change the key; filter key order does not."""
    key = cache_key("http://a", "q", 5, 0, {"genres": ["pop"], "min_likes": 3})
    assert key == cache_key("http://a", "q", 5, 0, {"min_likes": 3, "genres": ["pop"]})
    others = {
        cache_key("http://b", "q", 5, 0, {"genres": ["pop"], "min_likes": 3}),
        cache_key("http://a", "q", 6, 0, {"genres": ["pop"], "min_likes": 3}),
        cache_key("http://a", "q", 5, 5, {"genres": ["pop"], "min_likes": 3}),
        cache_key("http://a", "q", 5, 0, {"genres": ["rock"], "min_likes": 3}),
        cache_key("http://a", "q", 5, 0, None),
    }
    assert key not in others
    assert len(others) == 5


@pytest.mark.anyio
async def test_second_fetch_is_a_hit_without_a_call() -> None:
    """A fresh entry is served as a copy marked "hit", without calling again."""
    cache = SearchCache(ttl=60)
    calls = Calls()
    first = await cache.fetch(KEY, calls, deadline=None)
    second = await cache.fetch(KEY, calls, deadline=None)
    assert calls.count == 1
    assert (first.cache_status, second.cache_status) == ("miss", "hit")
    assert second == first
    assert second is not first
    assert second.request_id == "req-1"
    assert second.tracks is first.tracks  # a shallow copy
    assert (cache.hits, cache.misses) == (1, 1)
    stats = cache.stats()
    assert stats.pop("bytes") > 0
    assert stats == {
        "hits": 1,
        "misses": 1,
        "coalesced": 0,
        "stale": 0,
        "refreshes": 0,
        "refresh_failures": 0,
        "entries": 1,
    }


@pytest.mark.anyio
async def test_ttl_expiry(clock: FakeClock) -> None:
    """An entry is fresh until `ttl` has passed, then the next fetch calls again."""
    cache = SearchCache(ttl=10)
    calls = Calls()
    await cache.fetch(KEY, calls, deadline=None)
    clock.now += 9.99
    assert (await cache.fetch(KEY, calls, deadline=None)).cache_status == "hit"
    clock.now += 0.01
    assert (await cache.fetch(KEY, calls, deadline=None)).cache_status == "miss"
    assert calls.count == 2


@pytest.mark.anyio
async def test_lru_bound() -> None:
    """At most `max_entries` stay; the least recently used goes first."""
    cache = SearchCache(ttl=60, max_entries=3)
    calls = Calls()
    keys = [cache_key("http://a", f"q{n}", 5, 0, None) for n in range(4)]
    for key in keys[:3]:
        await cache.fetch(key, calls, deadline=None)
    await cache.fetch(keys[0], calls, deadline=None)  # q0 is now the most recent
    await cache.fetch(keys[3], calls, deadline=None)  # evicts q1
    assert cache.stats()["entries"] == 3
    assert calls.count == 4
    for key in (keys[0], keys[2], keys[3]):
        assert (await cache.fetch(key, calls, deadline=None)).cache_status == "hit"
    assert (await cache.fetch(keys[1], calls, deadline=None)).cache_status == "miss"
    assert calls.count == 5


@pytest.mark.anyio
async def test_thousand_concurrent_identical_fetches_make_one_call() -> None:
    """1,000 concurrent identical fetches share one call and all get the page."""
    cache = SearchCache(ttl=60)
    calls = Calls()
    results: list[SearchResponse] = []

    async def one() -> None:
        results.append(await cache.fetch(KEY, calls, deadline=None))

    async with anyio.create_task_group() as group:
        for _ in range(1_000):
            group.start_soon(one)
    assert calls.count == 1
    assert len(results) == 1_000
    statuses = [page.cache_status for page in results]
    assert statuses.count("miss") == 1
    assert statuses.count("coalesced") == 999
    assert all(page.tracks[0].asset_id == "1837070127" for page in results)
    assert (cache.misses, cache.coalesced) == (1, 999)


@pytest.mark.anyio
async def test_concurrent_fetches_share_the_error_and_it_is_not_cached() -> None:
    """All followers get the leader's error; the next fetch calls again."""
    cache = SearchCache(ttl=60)
    failure = BadRequestError("bad query", status_code=400)
    calls = Calls(failure, make_page())
    errors: list[BaseException] = []

    async def one() -> None:
        try:
            await cache.fetch(KEY, calls, deadline=None)
        except BadRequestError as error:
            errors.append(error)

    async with anyio.create_task_group() as group:
        for _ in range(100):
            group.start_soon(one)
    assert calls.count == 1
    assert len(errors) == 100
    assert all(error is failure for error in errors)
    depth = 0
    tb = failure.__traceback__
    while tb is not None:
        depth, tb = depth + 1, tb.tb_next
    assert depth < 20  # each follower's raise starts from the leader's traceback
    assert (await cache.fetch(KEY, calls, deadline=None)).cache_status == "miss"
    assert calls.count == 2


@pytest.mark.anyio
async def test_cancelled_leader_hands_the_call_to_a_follower() -> None:
    """Cancelling the caller that started the call does not take the page from the others."""
    cache = SearchCache(ttl=60)
    started = anyio.Event()
    count = 0

    async def call() -> SearchResponse:
        nonlocal count
        count += 1
        if count == 1:
            started.set()
            await anyio.sleep_forever()
        await anyio.sleep(0.01)
        return make_page()

    results: list[SearchResponse] = []
    leader_scope = anyio.CancelScope()

    async def leader() -> None:
        with leader_scope:
            await cache.fetch(KEY, call, deadline=None)
        assert leader_scope.cancelled_caught

    async def follower() -> None:
        results.append(await cache.fetch(KEY, call, deadline=None))

    async with anyio.create_task_group() as group:
        group.start_soon(leader)
        await started.wait()
        for _ in range(10):
            group.start_soon(follower)
        await anyio.sleep(0.05)  # every follower is waiting on the leader's call
        assert results == []
        leader_scope.cancel()
    assert count == 2
    assert len(results) == 10
    statuses = sorted(page.cache_status or "" for page in results)
    assert statuses == ["coalesced"] * 9 + ["miss"]


@pytest.mark.anyio
async def test_follower_deadline_applies_to_its_wait() -> None:
    """A follower waits no longer than its own deadline; the leader still gets the page."""
    cache = SearchCache(ttl=60)
    started = anyio.Event()
    release = anyio.Event()
    count = 0

    async def call() -> SearchResponse:
        nonlocal count
        count += 1
        started.set()
        await release.wait()
        return make_page()

    got: list[SearchResponse] = []

    async def leader() -> None:
        got.append(await cache.fetch(KEY, call, deadline=None))

    async with anyio.create_task_group() as group:
        group.start_soon(leader)
        await started.wait()
        began = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline was reached"):
            await cache.fetch(KEY, call, deadline=time.monotonic() + 0.05)
        waited = time.monotonic() - began
        release.set()
    assert 0.04 <= waited < 1.0
    assert count == 1
    assert [page.cache_status for page in got] == ["miss"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        InternalServerError("unavailable", status_code=503),
        RateLimitError("slow down", status_code=429),
        APIConnectionError("connection refused"),
        APITimeoutError("timed out"),
        CircuitOpenError("the circuit breaker is open", retry_in=3.0),
    ],
    ids=["503", "429", "connection", "timeout", "circuit-open"],
)
async def test_stale_served_on_transient_error(
    clock: FakeClock, failure: Exception, caplog: pytest.LogCaptureFixture
) -> None:
    """An expired entry within stale_if_error is served on a transient error, logged once."""
    cache = SearchCache(ttl=10, stale_if_error=100)
    calls = Calls(make_page(), failure)
    await cache.fetch(KEY, calls, deadline=None)
    clock.now += 50
    with caplog.at_level(logging.WARNING, logger="audioscape_async"):
        first = await cache.fetch(KEY, calls, deadline=None)
        second = await cache.fetch(KEY, calls, deadline=None)
    assert (first.cache_status, second.cache_status) == ("stale", "stale")
    assert first.tracks[0].asset_id == "1837070127"
    assert calls.count == 3  # every stale serve tried a refresh first
    assert cache.stale == 2
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "stale" in warnings[0].getMessage()
    assert "dark boss" in warnings[0].getMessage()


@pytest.mark.anyio
async def test_stale_warning_again_after_a_refresh(
    clock: FakeClock, caplog: pytest.LogCaptureFixture
) -> None:
    """After a successful refresh, a later outage of the same key is logged again."""
    cache = SearchCache(ttl=10, stale_if_error=100)
    outage = InternalServerError("unavailable", status_code=503)
    calls = Calls(make_page(), outage, outage, make_page(), outage)
    statuses = []
    with caplog.at_level(logging.WARNING, logger="audioscape_async"):
        for _ in range(5):
            statuses.append((await cache.fetch(KEY, calls, deadline=None)).cache_status)
            clock.now += 20
    assert statuses == ["miss", "stale", "stale", "miss", "stale"]
    assert len([r for r in caplog.records if "stale" in r.getMessage()]) == 2


@pytest.mark.anyio
@pytest.mark.parametrize(
    "failure",
    [
        AuthenticationError("no key", status_code=401),
        BadRequestError("bad", status_code=400),
    ],
    ids=["401", "400"],
)
async def test_no_stale_on_non_retryable_error(clock: FakeClock, failure: Exception) -> None:
    """A 400 or 401 is raised even when a stale page is at hand."""
    cache = SearchCache(ttl=10, stale_if_error=100)
    calls = Calls(make_page(), failure)
    await cache.fetch(KEY, calls, deadline=None)
    clock.now += 50
    with pytest.raises(type(failure)):
        await cache.fetch(KEY, calls, deadline=None)
    assert cache.stale == 0


@pytest.mark.anyio
async def test_no_stale_past_the_window(clock: FakeClock) -> None:
    """An entry older than ttl + stale_if_error is gone: the error is raised."""
    cache = SearchCache(ttl=10, stale_if_error=100)
    outage = InternalServerError("unavailable", status_code=503)
    calls = Calls(make_page(), outage)
    await cache.fetch(KEY, calls, deadline=None)
    clock.now += 109.9
    assert (await cache.fetch(KEY, calls, deadline=None)).cache_status == "stale"
    clock.now += 0.1
    with pytest.raises(InternalServerError):
        await cache.fetch(KEY, calls, deadline=None)
    assert cache.stats()["entries"] == 0


@pytest.mark.anyio
async def test_no_stale_by_default(clock: FakeClock) -> None:
    """With the default stale_if_error of 0, an expired entry is never served."""
    cache = SearchCache(ttl=10)
    calls = Calls(make_page(), APIConnectionError("refused"))
    await cache.fetch(KEY, calls, deadline=None)
    clock.now += 10
    with pytest.raises(APIConnectionError):
        await cache.fetch(KEY, calls, deadline=None)


@pytest.mark.anyio
async def test_followers_get_stale_too(clock: FakeClock) -> None:
    """When the shared refresh fails transiently, every waiting caller gets the stale page."""
    cache = SearchCache(ttl=10, stale_if_error=100)
    calls = Calls(make_page(), InternalServerError("unavailable", status_code=502))
    await cache.fetch(KEY, calls, deadline=None)
    clock.now += 30
    results: list[SearchResponse] = []

    async def one() -> None:
        results.append(await cache.fetch(KEY, calls, deadline=None))

    async with anyio.create_task_group() as group:
        for _ in range(50):
            group.start_soon(one)
    assert calls.count == 2
    assert {page.cache_status for page in results} == {"stale"}
    assert cache.stale == 50


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"ttl": 0}, "cache.ttl"),
        ({"ttl": -1}, "cache.ttl"),
        ({"ttl": float("nan")}, "cache.ttl"),
        ({"ttl": True}, "cache.ttl"),
        ({"max_entries": 0}, "cache.max_entries"),
        ({"max_entries": 1.5}, "cache.max_entries"),
        ({"stale_if_error": -1}, "cache.stale_if_error"),
        ({"stale_if_error": "1h"}, "cache.stale_if_error"),
        ({"backend": "redis://127.0.0.1"}, "cache.backend"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], parameter: str) -> None:
    """Bad arguments are an InvalidParameterError naming the parameter."""
    with pytest.raises(InvalidParameterError) as caught:
        SearchCache(**kwargs)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


def test_repr_and_counters_are_public() -> None:
    """The cache's settings show in its repr and its counters start at zero."""
    cache = SearchCache(ttl=300, max_entries=10_000, stale_if_error=3_600)
    assert repr(cache) == (
        "SearchCache(ttl=300, max_entries=10000, max_bytes=67108864, "
        "stale_while_revalidate=0, stale_if_error=3600, backend=None)"
    )
    assert (cache.hits, cache.misses, cache.coalesced, cache.stale) == (0, 0, 0, 0)


@pytest.mark.anyio
async def test_with_the_real_client_a_hit_sends_no_request(
    audioscape_emulator: EmulatorServer,
) -> None:
    """Through a real client and the emulator, only the miss reaches the server."""
    cache = SearchCache(ttl=60)
    server = audioscape_emulator
    async with AsyncClient(server.api_key, base_url=server.url) as client:
        key = cache_key(server.url, "dark cinematic", 5, 0, None)

        def call() -> Awaitable[SearchResponse]:
            return client.search("dark cinematic", limit=5)

        fetch: Callable[[], Awaitable[SearchResponse]] = call
        pages = [await cache.fetch(key, fetch, deadline=None) for _ in range(20)]
    assert len(server.emulator.requests) == 1
    assert [page.cache_status for page in pages] == ["miss"] + ["hit"] * 19
    assert len({tuple(track.asset_id for track in page.tracks) for page in pages}) == 1
