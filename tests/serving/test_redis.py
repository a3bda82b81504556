"""`RedisBackend` against a real `redis-server`: shared limit, pause, cache store, failures."""

from __future__ import annotations

import bisect
import json
import logging
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import anyio
import orjson
import pytest

from audioscape_async import (
    AudioScapeError,
    InternalServerError,
    InvalidParameterError,
    RateLimit,
    RateLimitError,
    SearchResponse,
)
from audioscape_async import _cache as cache_module
from audioscape_async._cache import SearchCache, cache_key
from audioscape_async._decode import decode_search_response
from audioscape_async._exceptions import BackendUnavailableError
from audioscape_async._fingerprint import fingerprint
from audioscape_async._redis import RedisBackend, SharedGate, safe_url
from tests.helpers import page_json
from tests.serving.redis_server import RedisServer, free_port

#: redis-py runs on asyncio only; these tests run there (trio has its own test below).
asyncio_only = pytest.mark.parametrize("anyio_backend", ["asyncio"])

KEY = cache_key("http://api.test/developer/v1", "dark boss", 5, 0, None)


def make_page(asset_id: str = "1837070127") -> SearchResponse:
    return decode_search_response(orjson.dumps(page_json([asset_id])), "req-7")


def dead_url(password: str = "") -> str:
    auth = f":{password}@" if password else ""
    return f"redis://{auth}127.0.0.1:{free_port()}/0"


@pytest.fixture
def silent_server() -> Iterator[str]:
    """A URL whose server accepts connections and never answers."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield f"redis://127.0.0.1:{sock.getsockname()[1]}/0"


@asyncio_only
@pytest.mark.anyio
async def test_acquire_allows_the_burst_then_spaces_by_the_rate(redis_server: RedisServer) -> None:
    """The first `burst` acquisitions may send now; the next wait 1/rate more each."""
    async with RedisBackend(redis_server.url) as backend:
        waits = [await backend.acquire("one", 10, 3) for _ in range(6)]
    assert waits[:3] == [0.0, 0.0, 0.0]
    for index, expected in ((3, 0.1), (4, 0.2), (5, 0.3)):
        assert waits[index] == pytest.approx(expected, abs=0.02)


@asyncio_only
@pytest.mark.anyio
async def test_limits_are_independent_by_name(redis_server: RedisServer) -> None:
    """Two names are two limits: one's queue does not delay the other."""
    async with RedisBackend(redis_server.url) as backend:
        for _ in range(5):
            await backend.acquire("a", 1, 1)
        assert await backend.acquire("b", 1, 1) == 0.0


@asyncio_only
@pytest.mark.anyio
async def test_pause_extends_and_never_shortens(redis_server: RedisServer) -> None:
    """A pause holds every acquisition; a shorter pause later does not shorten it."""
    async with RedisBackend(redis_server.url) as backend:
        assert await backend.pause("p", 2.0) == pytest.approx(2.0, abs=0.05)
        assert await backend.pause("p", 0.5) == pytest.approx(2.0, abs=0.05)
        assert await backend.acquire("p", 100, 10) == pytest.approx(2.0, abs=0.05)
        assert await backend.pause("p", 3.0) == pytest.approx(3.0, abs=0.05)


@asyncio_only
@pytest.mark.anyio
async def test_pause_longer_than_max_pause_raises_and_reserves_nothing(
    redis_server: RedisServer,
) -> None:
    """A shared pause past `max_pause` is a RateLimitError with retry_after; no slot is taken."""
    async with RedisBackend(redis_server.url) as backend:
        await backend.pause("m", 0.3)
        for _ in range(3):
            with pytest.raises(RateLimitError) as caught:
                await backend.acquire("m", 10, 1, max_pause=0.1)
            assert caught.value.retry_after == pytest.approx(0.3, abs=0.05)
        await anyio.sleep(0.35)
        assert await backend.acquire("m", 10, 1, max_pause=0.1) == 0.0


@asyncio_only
@pytest.mark.anyio
async def test_a_wait_past_max_wait_reserves_nothing(redis_server: RedisServer) -> None:
    """An acquisition that could not wait long enough is told its wait and takes no slot."""
    async with RedisBackend(redis_server.url) as backend:
        assert await backend.acquire("w", 1, 1) == 0.0
        for _ in range(5):
            refused = await backend.acquire("w", 1, 1, max_wait=0.2)
            assert refused == pytest.approx(-1.0, abs=0.05)
        assert await backend.acquire("w", 1, 1) == pytest.approx(1.0, abs=0.05)


@asyncio_only
@pytest.mark.anyio
async def test_a_deadline_refused_by_the_shared_limit_gives_its_slot_back(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Calls whose deadline cannot fit the shared wait fail at once and leave the rate alone."""
    from audioscape_async import AsyncClient, DeadlineExceededError, RateLimit
    from tests.helpers import MockAPI, ok, open_client, record_sleeps

    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(ok(), ok())
    async with RedisBackend(redis_server.url, prefix="dl:") as backend:
        limit = RateLimit(requests_per_second=1, burst=1, backend=backend)
        async with open_client(api, rate_limit=limit) as client:
            assert isinstance(client, AsyncClient)
            await client.search("calm piano")
            for _ in range(20):
                with pytest.raises(DeadlineExceededError, match="shared rate limit"):
                    await client.search("calm piano", deadline=0.3)
            await client.search("calm piano")
    assert len(api.requests) == 2
    assert len(sleeps) == 1
    assert sleeps[0] == pytest.approx(1.0, abs=0.1)


@asyncio_only
@pytest.mark.anyio
async def test_store_get_set_with_ttl(redis_server: RedisServer) -> None:
    """`set` stores bytes under the prefix for `ttl` seconds; `get` reads them back."""
    async with RedisBackend(redis_server.url, prefix="t1:") as backend:
        assert await backend.get("k") is None
        await backend.set("k", b"\x00value", 0.2)
        assert await backend.get("k") == b"\x00value"
        async with RedisBackend(redis_server.url, prefix="t2:") as other:
            assert await other.get("k") is None
        await anyio.sleep(0.3)
        assert await backend.get("k") is None


@asyncio_only
@pytest.mark.anyio
async def test_cache_entries_are_shared_between_caches(redis_server: RedisServer) -> None:
    """A page one process stored is a hit for another process's cache on the same Redis."""
    calls = 0

    async def call() -> SearchResponse:
        nonlocal calls
        calls += 1
        return make_page()

    async with RedisBackend(redis_server.url) as first, RedisBackend(redis_server.url) as second:
        one = SearchCache(ttl=60, backend=first)
        two = SearchCache(ttl=60, backend=second)
        miss = await one.fetch(KEY, call, deadline=None)
        hit = await two.fetch(KEY, call, deadline=None)
    assert calls == 1
    assert (miss.cache_status, hit.cache_status) == ("miss", "hit")
    assert hit == miss
    assert hit.request_id == "req-7"
    assert two.stats()["entries"] == 0  # nothing kept in process


@asyncio_only
@pytest.mark.anyio
async def test_concurrent_fetches_with_a_backend_make_one_read_and_one_call(
    redis_server: RedisServer,
) -> None:
    """With a backend, 500 identical concurrent fetches make one call, and later ones hit."""
    calls = 0

    async def call() -> SearchResponse:
        nonlocal calls
        calls += 1
        await anyio.sleep(0.01)
        return make_page()

    async def burst(cache: SearchCache) -> list[str | None]:
        statuses: list[str | None] = []

        async def one() -> None:
            statuses.append((await cache.fetch(KEY, call, deadline=None)).cache_status)

        async with anyio.create_task_group() as group:
            for _ in range(500):
                group.start_soon(one)
        return statuses

    async with RedisBackend(redis_server.url) as first, RedisBackend(redis_server.url) as second:
        misses = await burst(SearchCache(ttl=60, backend=first))
        other = SearchCache(ttl=60, backend=second)
        hits = await burst(other)
    assert calls == 1
    assert sorted(misses, key=str) == ["coalesced"] * 499 + ["miss"]
    assert hits == ["hit"] * 500
    assert other.hits == 500


@asyncio_only
@pytest.mark.anyio
async def test_shared_entry_serves_stale_and_expires(
    redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A shared entry ages by wall time: fresh, then stale on a 503, and kept ttl+stale long."""
    now = [1_700_000_000.0]
    monkeypatch.setattr(cache_module, "wall_clock", lambda: now[0])
    answers: list[SearchResponse | Exception] = [
        make_page(),
        InternalServerError("down", status_code=503),
    ]

    async def call() -> SearchResponse:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    async with RedisBackend(redis_server.url) as backend:
        cache = SearchCache(ttl=10, stale_if_error=20, backend=backend)
        await cache.fetch(KEY, call, deadline=None)
        now[0] += 15
        assert (await cache.fetch(KEY, call, deadline=None)).cache_status == "stale"
        ttl_ms = await backend._run(  # the entry's own time to live in Redis
            lambda client: client.pttl(backend._key("", cache_module._shared_key(KEY)))
        )
    assert 29_000 < ttl_ms <= 30_000


@asyncio_only
@pytest.mark.anyio
async def test_unreadable_shared_entry_is_a_miss(redis_server: RedisServer) -> None:
    """An entry this version cannot read is a miss, not an error."""
    async with RedisBackend(redis_server.url) as backend:
        await backend.set(cache_module._shared_key(KEY), b'{"format":99}\n{}', 60)
        cache = SearchCache(ttl=60, backend=backend)

        async def call() -> SearchResponse:
            return make_page()

        assert (await cache.fetch(KEY, call, deadline=None)).cache_status == "miss"


@asyncio_only
@pytest.mark.anyio
async def test_shared_gate_spaces_and_pauses_across_gates(redis_server: RedisServer) -> None:
    """Two SharedGates of one name share one limit and one 429 pause."""
    limit = RateLimit(requests_per_second=20, burst=2)
    async with RedisBackend(redis_server.url) as one, RedisBackend(redis_server.url) as two:
        name = fingerprint("http://api.test", "sk-secret")
        first, second = SharedGate(limit, one, name), SharedGate(limit, two, name)
        began = time.monotonic()
        for _ in range(3):
            await first.wait()
            await second.wait()
        spaced = time.monotonic() - began  # 6 sends: 2 at once, then 4 at 50 ms each
        await first.pause(0.3)
        began = time.monotonic()
        await second.wait()
        paused = time.monotonic() - began
    assert 0.17 <= spaced < 0.6
    assert 0.25 <= paused < 0.8
    assert "sk-secret" not in name


@asyncio_only
@pytest.mark.anyio
async def test_killed_redis_is_a_clear_error(own_redis_server: RedisServer) -> None:
    """Redis going away is a BackendUnavailableError naming the URL, at once, not a hang."""
    async with RedisBackend(own_redis_server.url, connect_timeout=0.5, timeout=0.5) as backend:
        cache = SearchCache(ttl=60, backend=backend)
        await backend.set("k", b"v", 60)
        own_redis_server.stop()
        began = time.monotonic()
        with pytest.raises(BackendUnavailableError) as caught:
            await backend.get("k")
        assert time.monotonic() - began < 1.5
        assert own_redis_server.url in str(caught.value)
        assert caught.value.url == own_redis_server.url
        assert "unreachable" in str(caught.value)

        async def call() -> SearchResponse:
            raise AssertionError("not called: the cache fails first")

        with pytest.raises(BackendUnavailableError):
            await cache.fetch(KEY, call, deadline=None)
        with pytest.raises(BackendUnavailableError):
            await SharedGate(RateLimit(10), backend, "n").wait()


@asyncio_only
@pytest.mark.anyio
async def test_unreachable_at_first_use_hides_the_password() -> None:
    """An unreachable URL is named in the error without its password."""
    url = dead_url(password="hunter2-secret")
    backend = RedisBackend(url, connect_timeout=0.5)
    assert "hunter2" not in repr(backend)
    with pytest.raises(BackendUnavailableError) as caught:
        await backend.acquire("n", 10, 1)
    await backend.aclose()
    assert "hunter2" not in str(caught.value)
    assert "127.0.0.1" in str(caught.value)


@asyncio_only
@pytest.mark.anyio
async def test_silent_server_times_out_instead_of_hanging(silent_server: str) -> None:
    """A server that accepts but never answers fails within the timeouts."""
    async with RedisBackend(silent_server, connect_timeout=0.3, timeout=0.3) as backend:
        began = time.monotonic()
        with pytest.raises(BackendUnavailableError):
            await backend.get("k")
        elapsed = time.monotonic() - began
    assert elapsed < 1.5


@asyncio_only
@pytest.mark.anyio
async def test_fallback_warns_once_and_works_in_process(caplog: pytest.LogCaptureFixture) -> None:
    """With fallback=True an unreachable Redis is one WARNING; cache and gate work in process."""
    calls = 0

    async def call() -> SearchResponse:
        nonlocal calls
        calls += 1
        return make_page()

    with caplog.at_level(logging.WARNING, logger="audioscape_async"):
        async with RedisBackend(dead_url(), fallback=True, connect_timeout=0.5) as backend:
            cache = SearchCache(ttl=60, backend=backend)
            statuses = [
                (await cache.fetch(KEY, call, deadline=None)).cache_status for _ in range(3)
            ]
            gate = SharedGate(RateLimit(requests_per_second=1000, burst=5), backend, "n")
            for _ in range(5):
                assert await gate.wait() == 0.0
    assert statuses == ["miss", "hit", "hit"]
    assert calls == 1
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1
    assert "falling back" in warnings[0]
    # redis-py's reason ends in a full stop; mid-sentence it is dropped (no stray ".;").
    assert re.fullmatch(
        r"Redis at \S+ is unreachable: [^;]*[^.]; falling back to the in-process rate gate "
        r"and cache",
        warnings[0],
    ), warnings[0]


@asyncio_only
@pytest.mark.anyio
async def test_fallback_returns_to_redis_when_it_answers(
    own_redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    """After recheck_interval a fallen-back backend uses Redis again."""
    url = own_redis_server.url
    own_redis_server.stop()
    backend = RedisBackend(url, fallback=True, recheck_interval=0.2, connect_timeout=0.5)
    cache = SearchCache(ttl=60, backend=backend)

    async def call() -> SearchResponse:
        return make_page()

    await cache.fetch(KEY, call, deadline=None)  # stored in process
    assert backend.use_local_store()
    with RedisServer(port=own_redis_server.port):  # the same Redis, back again
        await anyio.sleep(0.25)
        assert not backend.use_local_store()
        with caplog.at_level(logging.WARNING, logger="audioscape_async"):
            assert (await cache.fetch(KEY, call, deadline=None)).cache_status == "miss"
        await backend.aclose()
    assert [r.getMessage() for r in caplog.records][-1].endswith("answers again")


@pytest.mark.anyio
async def test_trio_is_a_clear_error(anyio_backend_name: str, redis_server: RedisServer) -> None:
    """On trio the backend raises an AudioScapeError naming the limitation; asyncio works."""
    backend = RedisBackend(redis_server.url, fallback=True)
    if anyio_backend_name == "trio":
        with pytest.raises(AudioScapeError, match=r"asyncio only.*trio"):
            await backend.get("k")
        cache = SearchCache(backend=backend)

        async def call() -> SearchResponse:
            return make_page()

        with pytest.raises(AudioScapeError, match="trio"):
            await cache.fetch(KEY, call, deadline=None)
    else:
        assert await backend.get("k") is None
        await backend.aclose()


@asyncio_only
@pytest.mark.anyio
async def test_url_redis_py_refuses_is_invalid_parameter() -> None:
    """A URL redis-py cannot read is an InvalidParameterError at first use, not a ValueError."""
    backend = RedisBackend("redis://127.0.0.1:6379/0?health_check_interval=soon")
    with pytest.raises(InvalidParameterError) as caught:
        await backend.get("k")
    assert caught.value.parameter == "backend.url"


def test_safe_url_drops_credentials() -> None:
    """URLs in messages never carry a user or password."""
    assert safe_url("redis://user:pw@redis.example:6380/2") == "redis://redis.example:6380/2"
    assert safe_url("rediss://:pw@[::1]:6379/0") == "rediss://[::1]:6379/0"


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"url": "http://127.0.0.1"}, "backend.url"),
        ({"url": "redis://127.0.0.1:port/0"}, "backend.url"),
        ({"url": b"redis://127.0.0.1"}, "backend.url"),
        ({"prefix": 3}, "backend.prefix"),
        ({"fallback": "yes"}, "backend.fallback"),
        ({"connect_timeout": 0}, "backend.connect_timeout"),
        ({"timeout": float("inf")}, "backend.timeout"),
        ({"max_connections": 0}, "backend.max_connections"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], parameter: str) -> None:
    """Bad arguments are an InvalidParameterError naming the parameter."""
    with pytest.raises(InvalidParameterError) as caught:
        RedisBackend(**kwargs)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


@asyncio_only
@pytest.mark.anyio
@pytest.mark.parametrize(
    ("rate", "burst", "parameter"),
    [(0, 1, "backend.rate"), (float("inf"), 1, "backend.rate"), (10, 0, "backend.burst")],
)
async def test_acquire_checks_its_limit(
    redis_server: RedisServer, rate: float, burst: int, parameter: str
) -> None:
    """A rate that is not > 0 or a burst < 1 is refused before Redis is asked."""
    async with RedisBackend(redis_server.url) as backend:
        with pytest.raises(InvalidParameterError) as caught:
            await backend.acquire("n", rate, burst)
    assert caught.value.parameter == parameter


#: One worker process: acquire slots of the shared limit from `start` to `end`
#: (both `time.monotonic()` instants, which all processes of a host share),
#: and print the instant of each send.
_WORKER = """
import asyncio, json, sys, time
from audioscape_async._redis import RedisBackend

async def main(url, start, end):
    sends = []
    async with RedisBackend(url) as backend:
        await backend.get("warm-up")
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        while True:
            wait = await backend.acquire("fleet", 10, 20)
            if time.monotonic() + wait >= end:
                break
            if wait > 0:
                await asyncio.sleep(wait)
            sends.append(time.monotonic())
    print(json.dumps(sends))

asyncio.run(main(sys.argv[1], float(sys.argv[2]), float(sys.argv[3])))
"""


def largest_window(times: list[float], width: float = 1.0) -> int:
    """The most of `times` in any half-open window of `width` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)), default=0
    )


def test_four_processes_share_one_limit(redis_server: RedisServer) -> None:
    """Four processes at 10 rps, burst 20, never send more than 30 in any one second."""
    start = time.monotonic() + 2.0  # time for the workers to start and connect
    end = start + 2.0
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, redis_server.url, repr(start), repr(end)],
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    sends: list[float] = []
    per_worker = []
    for worker in workers:
        output, _ = worker.communicate(timeout=30)
        assert worker.returncode == 0
        mine = json.loads(output)
        per_worker.append(len(mine))
        sends.extend(mine)
    assert largest_window(sends) <= 30
    # At most burst + rate * 2 s; at least the burst and then the rate from the first send
    # (a loaded machine may start every worker late).
    assert len(sends) <= 41
    assert len(sends) >= 20 + int(10 * (end - min(sends))) - 2
    assert all(count > 0 for count in per_worker)
    assert min(sends) >= start


@pytest.mark.parametrize("missing", ["sniffio", "redis"])
def test_a_backend_works_without_optional_modules(missing: str) -> None:
    """Without sniffio or redis-py installed, a backend raises an SDK error, not ImportError."""
    script = f"""
import sys
sys.modules[{missing!r}] = None  # import fails, as where it is not installed
import asyncio
from audioscape_async import AsyncClient, AudioScapeError, RateLimit, RedisBackend

async def main():
    try:
        backend = RedisBackend("redis://127.0.0.1:9/0", connect_timeout=0.5, timeout=0.5)
        limit = RateLimit(requests_per_second=5, backend=backend)
        async with AsyncClient("k", base_url="http://127.0.0.1:9/v1", max_retries=0,
                               rate_limit=limit) as client:
            await client.search("x")
    except AudioScapeError as error:
        print("sdk error:", type(error).__name__, error)

asyncio.run(main())
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "sdk error:" in done.stdout
    if missing == "redis":
        assert "RedisBackend needs the 'redis' extra" in done.stdout


# -- a rate learned by the fleet -----------------------------------------------------


@asyncio_only
@pytest.mark.anyio
async def test_a_learned_rate_is_one_for_every_process(redis_server: RedisServer) -> None:
    """Successes reported by two processes, one 429: both then send at ~0.97 of what got
    through; a 429 to a turn of the old rate (an older generation) changes nothing."""
    async with (
        RedisBackend(redis_server.url) as one,
        RedisBackend(redis_server.url) as two,
    ):
        assert await one.acquire_learned("k", successes=0) == (0.0, 0)  # no 429 yet: no limit
        started = time.monotonic()
        while time.monotonic() - started < 1.0:
            await one.acquire_learned("k", successes=1)  # 20 a second from each
            await two.acquire_learned("k", successes=1)
            await anyio.sleep(0.05)
        assert await two.cut_learned("k", 0, successes=0) == 1
        assert await one.cut_learned("k", 0, successes=0) == 1  # the same overshoot: no cut
        waits = [await one.acquire_learned("k", successes=0) for _ in range(3)]
        waits += [await two.acquire_learned("k", successes=0)]
    assert {generation for _, generation in waits} == {1}
    interval = waits[1][0] - waits[0][0]
    assert interval == pytest.approx(1 / (0.97 * 40), rel=0.25)
    assert waits[3][0] == pytest.approx(waits[2][0] + interval, abs=0.01)


@asyncio_only
@pytest.mark.anyio
async def test_a_learned_key_of_another_type_is_replaced(redis_server: RedisServer) -> None:
    """Something else at the learned rate's key is not a crash: the rate starts over."""
    async with RedisBackend(redis_server.url) as backend:
        name = backend._key("tier:", "k")
        await backend._run(lambda redis: redis.set(name, "junk"))
        assert await backend.acquire_learned("k", successes=3) == (0.0, 0)
        assert await backend.cut_learned("k", 0, successes=0) == 1


@asyncio_only
@pytest.mark.anyio
async def test_a_learned_rate_with_nothing_through_halves_what_was_sent(
    redis_server: RedisServer,
) -> None:
    """The first 429s with no success: the fleet's rate is half what it sent (as in one
    process), not a fixed crawl; a ceiling Redis holds that is no rate is ignored."""
    async with RedisBackend(redis_server.url) as backend:
        started = time.monotonic()
        while time.monotonic() - started < 0.5:
            await backend.acquire_learned("k", successes=0)
            await anyio.sleep(0.02)  # about 40 turns a second, all refused
        assert await backend.cut_learned("k", 0, successes=0) == 1
        first, _ = await backend.acquire_learned("k", successes=0)
        second, _ = await backend.acquire_learned("k", successes=0)
        assert first is not None
        assert second is not None
        assert 1 / (second - first) > 10  # about 20 a second, not 1
        name = backend._key("tier:", "k")
        await backend._run(lambda redis: redis.hset(name, "ceiling", "-1"))
        assert (await backend.acquire_learned("k", successes=0))[0] is not None
