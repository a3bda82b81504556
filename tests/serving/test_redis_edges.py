"""Redis failures and foreign data never fail a call whose answer arrived or can arrive.

Against real `redis-server`s: one that refuses writes (``maxmemory``), one
frozen with SIGSTOP (it accepts connections and answers nothing), and foreign
values planted with redis-py directly under the keys the SDK uses. The API is
the emulator.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import orjson
import pytest
import redis

from audioscape_async import (
    AsyncClient,
    Client,
    DeadlineExceededError,
    InvalidParameterError,
    RateLimit,
    SearchCache,
    SearchResponse,
)
from audioscape_async import _cache as cache_module
from audioscape_async._cache import cache_key
from audioscape_async._decode import decode_search_response
from audioscape_async._redis import RedisBackend
from audioscape_async._validation import MAX_STORE_SECONDS
from audioscape_async.emulator import EmulatorServer, Faults
from tests.helpers import page_json
from tests.serving.redis_server import RedisServer

#: redis-py runs on asyncio only (its trio error is tested in test_redis.py).
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])

KEY = cache_key("http://api.test/developer/v1", "dark boss", 5, 0, None)

#: How far past its deadline a call may end on a loaded machine.
SLACK = 0.25


@pytest.fixture
def api() -> Iterator[EmulatorServer]:
    """The emulator, with no rate limit of its own."""
    with EmulatorServer(tracks=300) as running:
        yield running


def plain(server: RedisServer) -> redis.Redis:
    """A redis-py client of the test's own, to plant and inspect keys."""
    return redis.Redis(port=server.port, socket_timeout=5)


def make_page() -> SearchResponse:
    return decode_search_response(orjson.dumps(page_json(["1837070127"])), "req-7")


async def make_call() -> SearchResponse:
    return make_page()


# -- lifetimes -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ttl", "stale_if_error", "parameter"),
    [
        (1e300, 0.0, "cache.ttl"),
        (1e308, 1e308, "cache.ttl"),
        (MAX_STORE_SECONDS / 2, MAX_STORE_SECONDS, "cache.stale_if_error"),
    ],
    ids=["ttl-1e300", "both-1e308", "stale-window"],
)
def test_a_lifetime_past_ten_years_is_refused_at_construction(
    ttl: float, stale_if_error: float, parameter: str
) -> None:
    """`ttl + stale_if_error` over ten years is an InvalidParameterError naming the culprit,
    with a backend or without (never a store that fails after the API answered)."""
    for backend in (None, RedisBackend()):
        with pytest.raises(InvalidParameterError) as caught:
            SearchCache(ttl=ttl, stale_if_error=stale_if_error, backend=backend)
        assert caught.value.parameter == parameter
        assert "ten years" in str(caught.value)
    SearchCache(ttl=MAX_STORE_SECONDS / 2, stale_if_error=MAX_STORE_SECONDS / 2)  # the bound


@asyncio_only
@pytest.mark.anyio
@pytest.mark.parametrize("ttl", [1e300, 1e308, float("inf"), -1.0])
async def test_backend_set_checks_its_ttl(redis_server: RedisServer, ttl: float) -> None:
    """`RedisBackend.set` refuses a ttl it cannot store with InvalidParameterError, not a
    raw OverflowError or a refused command."""
    async with RedisBackend(redis_server.url) as backend:
        with pytest.raises(InvalidParameterError) as caught:
            await backend.set("k", b"v", ttl)
    assert caught.value.parameter == "backend.ttl"


# -- a store that fails --------------------------------------------------------------------


@asyncio_only
@pytest.mark.anyio
async def test_a_failed_store_returns_the_page_and_warns_once(
    own_redis_server: RedisServer, api: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis refusing writes (out of memory) costs the pages their sharing, not their calls:
    each call returns its page, and one WARNING says so (without the API key)."""
    writer = plain(own_redis_server)
    writer.config_set("maxmemory-policy", "noeviction")
    writer.config_set("maxmemory", 1)  # every write is refused from now on
    with caplog.at_level(logging.DEBUG, logger="audioscape_async"):
        async with (
            RedisBackend(own_redis_server.url) as backend,
            AsyncClient(
                api.api_key, base_url=api.url, cache=SearchCache(backend=backend)
            ) as client,
        ):
            pages = [await client.search(f"storm {n}", limit=1) for n in range(3)]
    assert [page.cache_status for page in pages] == ["miss"] * 3
    assert all(page.tracks for page in pages)
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "not stored in Redis" in warnings[0]
    assert "maxmemory" in warnings[0]
    assert api.api_key not in caplog.text


# -- foreign data under the SDK's keys -----------------------------------------------------


@asyncio_only
@pytest.mark.anyio
@pytest.mark.parametrize("kind", ["list", "hash", "set"])
async def test_a_foreign_type_under_a_cache_key_is_a_miss_and_overwritten(
    redis_server: RedisServer, kind: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A value of another Redis type under a cache key (WRONGTYPE) reads as a miss, logged;
    the call's page replaces it, and the next call hits."""
    async with RedisBackend(redis_server.url) as backend:
        name = backend._key("", cache_module._shared_key(KEY))
        planter = plain(redis_server)
        {"list": lambda: planter.rpush(name, "x"), "hash": lambda: planter.hset(name, "a", "b"),
         "set": lambda: planter.sadd(name, "x")}[kind]()  # fmt: skip
        cache = SearchCache(ttl=60, backend=backend)
        with caplog.at_level(logging.WARNING, logger="audioscape_async"):
            first = await cache.fetch(KEY, make_call, deadline=None)
        second = await cache.fetch(KEY, make_call, deadline=None)
    assert (first.cache_status, second.cache_status) == ("miss", "hit")
    assert planter.type(name) == b"string"
    assert "another type" in caplog.text


@asyncio_only
@pytest.mark.anyio
@pytest.mark.parametrize("stored_at", ["inf", "-inf", "nan"])
async def test_an_entry_of_no_real_age_is_a_miss_and_overwritten(
    redis_server: RedisServer, stored_at: str
) -> None:
    """An entry whose header says it was stored at no real instant is foreign: a miss (an
    infinite one would otherwise be fresh for ever), replaced by the call's page."""
    async with RedisBackend(redis_server.url) as backend:
        header = orjson.dumps({"format": 1, "stored_at": stored_at, "request_id": "foreign"})
        body = orjson.dumps(page_json(["999"]))
        await backend.set(cache_module._shared_key(KEY), header + b"\n" + body, 60)
        cache = SearchCache(ttl=60, backend=backend)
        first = await cache.fetch(KEY, make_call, deadline=None)
        second = await cache.fetch(KEY, make_call, deadline=None)
    assert (first.cache_status, first.request_id) == ("miss", "req-7")
    assert (second.cache_status, second.request_id) == ("hit", "req-7")


def _plant_rate_state(client: redis.Redis, rate_key: str, pause_key: str, kind: str) -> str:
    """Plant foreign data under the rate or pause key; return the key planted."""
    if kind == "rate-not-a-number":
        client.set(rate_key, "not a number", px=60_000)
        return rate_key
    if kind == "rate-list":
        client.rpush(rate_key, "1")
        return rate_key
    if kind == "rate-far-future-no-expiry":
        client.set(rate_key, "1e30")
        return rate_key
    if kind == "pause-not-a-number":
        client.set(pause_key, "soon", px=60_000)
        return pause_key
    if kind == "pause-hash":
        client.hset(pause_key, "a", "b")
        return pause_key
    assert kind == "pause-past-its-expiry"
    seconds, micros = client.time()
    client.set(pause_key, str((seconds + 3_600) * 1_000_000 + micros), px=60_000)
    return pause_key


@asyncio_only
@pytest.mark.anyio
@pytest.mark.parametrize(
    "kind",
    [
        "rate-not-a-number",
        "rate-list",
        "rate-far-future-no-expiry",
        "pause-not-a-number",
        "pause-hash",
        "pause-past-its-expiry",
    ],
)
async def test_foreign_rate_state_repairs_itself(redis_server: RedisServer, kind: str) -> None:
    """Anything but an instant the SDK could have written under the shared rate or pause key
    counts as absent and is deleted: the limit goes on (burst, then the rate), and a pause
    can be set again."""
    async with RedisBackend(redis_server.url) as backend:
        planter = plain(redis_server)
        planted = _plant_rate_state(
            planter, backend._key("rate:", "n"), backend._key("pause:", "n"), kind
        )
        assert await backend.paused("n") == 0.0
        waits = [await backend.acquire("n", 10, 2) for _ in range(3)]
        assert waits[:2] == [0.0, 0.0]
        assert waits[2] == pytest.approx(0.1, abs=0.02)
        assert await backend.pause("n", 0.5) == pytest.approx(0.5, abs=0.05)
        assert await backend.acquire("n", 10, 2) == pytest.approx(0.5, abs=0.05)
    assert planter.type(planted) == b"string"
    assert float(planter.get(planted) or b"nan") < 1e17  # an instant, in µs


# -- a stalled Redis and the call's deadline -----------------------------------------------


def _client_options(backend: RedisBackend, uses: str) -> dict[str, object]:
    options: dict[str, object] = {}
    if uses in ("cache", "both"):
        options["cache"] = SearchCache(backend=backend)
    if uses in ("rate_limit", "both"):
        options["rate_limit"] = RateLimit(requests_per_second=100, burst=10, backend=backend)
    return options


@asyncio_only
@pytest.mark.anyio
@pytest.mark.parametrize("uses", ["cache", "rate_limit", "both"])
@pytest.mark.parametrize("fallback", [False, True], ids=["no-fallback", "fallback"])
async def test_a_stalled_redis_never_holds_a_call_past_its_deadline(
    own_redis_server: RedisServer,
    api: EmulatorServer,
    uses: str,
    fallback: bool,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """With Redis frozen (SIGSTOP) and a 0.5 s deadline, a search ends by its deadline (the
    backend's own timeouts are 1 s each): without fallback in DeadlineExceededError, with
    fallback with its page, got without Redis. The API key is in no message."""
    backend = RedisBackend(own_redis_server.url, fallback=fallback)
    async with AsyncClient(
        api.api_key, base_url=api.url, **_client_options(backend, uses)
    ) as client:
        await client.search("warm up", limit=1)  # connected before the stall
        outcomes: list[tuple[str, float]] = []
        messages: list[str] = []
        with own_redis_server.stalled(), caplog.at_level(logging.DEBUG, logger="audioscape_async"):
            for query in ("first", "second"):
                began = time.monotonic()
                try:
                    page = await client.search(query, limit=1, deadline=0.5)
                    outcomes.append((page.cache_status or "no cache", time.monotonic() - began))
                except DeadlineExceededError as error:
                    outcomes.append(("deadline", time.monotonic() - began))
                    messages.append(str(error))
        await backend.aclose()
    print(f"\n{uses}, fallback={fallback}: {outcomes}")
    assert not any(api.api_key in message for message in messages)
    for status, took in outcomes:
        assert took <= 0.5 + SLACK
        if fallback:
            assert status in ("miss", "no cache")
        else:
            assert status == "deadline"
    assert api.api_key not in caplog.text


def test_a_stalled_redis_and_a_sync_client(
    own_redis_server: RedisServer, api: EmulatorServer
) -> None:
    """The sync Client ends by its deadline too, in DeadlineExceededError, with Redis frozen."""
    backend = RedisBackend(own_redis_server.url)
    with Client(api.api_key, base_url=api.url, **_client_options(backend, "both")) as client:
        client.search("warm up", limit=1)
        with own_redis_server.stalled():
            began = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                client.search("frozen", limit=1, deadline=0.5)
            took = time.monotonic() - began
    assert took <= 0.5 + SLACK


@asyncio_only
@pytest.mark.anyio
async def test_a_store_after_the_answer_fits_in_the_deadline(
    own_redis_server: RedisServer, api: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """Redis freezing between the read and the store (after the API answered): the page comes
    back by the deadline, not stored, with one WARNING."""
    backend = RedisBackend(own_redis_server.url)
    freeze = own_redis_server.stalled()
    # Every answer held 0.3 s: Redis freezes while the API is still answering.
    api.emulator.set_faults(Faults({"latency": 1.0}, latency=0.3))

    def freeze_soon() -> None:
        time.sleep(0.1)
        freeze.__enter__()

    try:
        async with AsyncClient(
            api.api_key, base_url=api.url, cache=SearchCache(backend=backend)
        ) as client:
            await backend.get("warm up")
            thread = threading.Thread(target=freeze_soon)
            thread.start()
            began = time.monotonic()
            with caplog.at_level(logging.WARNING, logger="audioscape_async"):
                page = await client.search("slow answer", limit=1, deadline=0.6)
            took = time.monotonic() - began
            thread.join(5)
    finally:
        freeze.__exit__(None, None, None)
        await backend.aclose()
    assert page.cache_status == "miss"
    assert took <= 0.6 + SLACK
    assert "not stored in Redis" in caplog.text


@asyncio_only
@pytest.mark.anyio
async def test_the_shared_gates_pause_check_fits_in_the_deadline(
    own_redis_server: RedisServer, api: EmulatorServer
) -> None:
    """A call waiting for its shared slot when Redis freezes: the check that follows the wait
    ends by the deadline, in DeadlineExceededError (not a BackendUnavailableError later)."""
    backend = RedisBackend(own_redis_server.url)
    limit = RateLimit(requests_per_second=2, burst=1, backend=backend)
    freeze = own_redis_server.stalled()

    def freeze_soon() -> None:
        time.sleep(0.15)
        freeze.__enter__()

    try:
        async with AsyncClient(api.api_key, base_url=api.url, rate_limit=limit) as client:
            await client.search("first", limit=1)  # takes the slot: the next waits 0.5 s
            thread = threading.Thread(target=freeze_soon)
            thread.start()
            began = time.monotonic()
            with pytest.raises(DeadlineExceededError):
                await client.search("second", limit=1, deadline=0.9)
            took = time.monotonic() - began
            thread.join(5)
    finally:
        freeze.__exit__(None, None, None)
        await backend.aclose()
    assert took <= 0.9 + SLACK
