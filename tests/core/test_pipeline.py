"""The request pipeline: per-call options, deadlines, `with_options`, an answer's story.

How an answer's body is read within the hard limits is `test_bodies.py`.
"""

from __future__ import annotations

import socket
import threading
import time

import httpx
import pytest

from audioscape_async import (
    APITimeoutError,
    AsyncClient,
    Client,
    InternalServerError,
    InvalidParameterError,
    RateLimit,
    RetryPolicy,
)
from tests.helpers import API_KEY, MockAPI, error, ok, open_client, page_json, record_sleeps
from tests.reliability.servers import (
    RawRequest,
    RawServer,
    read_request,
    response_bytes,
    silent,
    trickle,
)

QUERY = "chill lo-fi beats"


def _raw_client(server: RawServer, sdk_transport: str, **options: object) -> AsyncClient:
    options.setdefault("max_retries", 0)
    return AsyncClient(API_KEY, base_url=server.url(), transport=sdk_transport, **options)  # type: ignore[arg-type]


# ---------------------------------------------------------------- per-call options


@pytest.mark.anyio
async def test_per_call_max_retries_overrides_the_client() -> None:
    """`max_retries=0` on one call makes one attempt, whatever the client's policy."""
    api = MockAPI(error(500), error(500), ok())
    async with open_client(api, max_retries=5) as client:
        with pytest.raises(InternalServerError):
            await client.search(QUERY, max_retries=0)
    assert len(api.requests) == 1


@pytest.mark.anyio
async def test_per_call_retry_policy_and_extra_headers(monkeypatch: pytest.MonkeyPatch) -> None:
    """`retry=` and `extra_headers=` apply to that call only."""
    record_sleeps(monkeypatch)
    api = MockAPI(error(503), ok(), ok())
    async with open_client(api, max_retries=0) as client:
        page = await client.search(
            QUERY, retry=RetryPolicy(max_retries=1), extra_headers={"x-trace": "zone-7"}
        )
        await client.search(QUERY)
    assert page.attempts == 2
    assert api.requests[1].headers["x-trace"] == "zone-7"
    assert "x-trace" not in api.requests[2].headers


@pytest.mark.anyio
async def test_extra_headers_may_not_carry_the_key() -> None:
    """The key goes in `api_key`; an `extra_headers` that sets it is refused before sending."""
    api = MockAPI(ok())
    async with open_client(api) as client:
        with pytest.raises(InvalidParameterError, match="extra_headers"):
            await client.search(QUERY, extra_headers={"X-API-Key": "other"})
        with pytest.raises(InvalidParameterError, match="extra_headers"):
            await client.search(QUERY, extra_headers=["not", "a", "mapping"])  # type: ignore[arg-type]
    assert api.requests == []


@pytest.mark.anyio
@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "1"])
async def test_a_bad_deadline_or_timeout_is_refused(bad: object) -> None:
    """`deadline` and `timeout` must be finite seconds > 0, checked before sending."""
    api = MockAPI(ok())
    async with open_client(api) as client:
        with pytest.raises(InvalidParameterError, match="deadline"):
            await client.search(QUERY, deadline=bad)  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterError, match="timeout"):
            await client.search(QUERY, timeout=bad)  # type: ignore[arg-type]
    assert api.requests == []


@pytest.mark.anyio
async def test_per_call_timeout_bounds_one_attempt(sdk_transport: str) -> None:
    """`timeout=0.3` on one call ends a silent server's attempt in about 0.3 s."""
    with RawServer(silent, lifetime=10) as server:
        async with _raw_client(server, sdk_transport, timeout=30) as client:
            started = time.monotonic()
            with pytest.raises(APITimeoutError):
                await client.search(QUERY, timeout=0.3)
            assert time.monotonic() - started < 2.0


# ---------------------------------------------------------------- deadlines


@pytest.mark.anyio
async def test_a_deadline_ends_the_whole_call_across_retries(sdk_transport: str) -> None:
    """With retries and a long timeout, `deadline=0.5` still ends the call in about 0.5 s."""
    with RawServer(silent, lifetime=10) as server:
        async with _raw_client(server, sdk_transport, timeout=30, max_retries=5) as client:
            started = time.monotonic()
            with pytest.raises(APITimeoutError, match=r"deadline of 0\.5 s was reached"):
                await client.search(QUERY, deadline=0.5)
            assert time.monotonic() - started < 1.5


@pytest.mark.anyio
async def test_a_backoff_that_cannot_fit_fails_at_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """A Retry-After longer than what is left of the deadline is not slept: it fails now."""
    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(error(429, None, **{"retry-after": "30"}), ok())
    async with open_client(api) as client:
        with pytest.raises(APITimeoutError, match="deadline") as caught:
            await client.search(QUERY, deadline=5)
    assert sleeps == []
    assert len(api.requests) == 1
    assert "429" in str(caught.value)


@pytest.mark.anyio
async def test_a_rate_limit_wait_that_cannot_fit_fails_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A client-side rate-limit wait past the deadline fails now, and gives its turn back."""
    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(ok(), ok(), ok())
    limit = RateLimit(requests_per_second=0.1, burst=1)
    async with open_client(api, rate_limit=limit) as client:
        await client.search(QUERY)
        with pytest.raises(APITimeoutError, match="rate limit"):
            await client.search(QUERY, deadline=1)
        await client.search(QUERY)  # its turn was not taken by the refused call
    assert len(api.requests) == 2
    assert len(sleeps) == 1
    assert 9.0 < sleeps[0] <= 10.0


@pytest.mark.anyio
async def test_a_walk_deadline_covers_every_page(sdk_transport: str) -> None:
    """`iter_pages(deadline=...)` bounds the whole walk, not each page."""
    served = threading.Event()

    def slow_pages(conn: socket.socket, request: RawRequest | None, stop: threading.Event) -> None:
        body = orjson_page(total=10_000)
        while request is not None and not stop.is_set():
            stop.wait(0.15)
            conn.sendall(response_bytes(200, body))
            served.set()
            request = read_request(conn)

    with RawServer(slow_pages, lifetime=10) as server:
        async with _raw_client(server, sdk_transport) as client:
            started = time.monotonic()
            seen = 0

            async def walk() -> None:
                nonlocal seen
                async for _ in client.iter_pages(QUERY, page_size=1, deadline=0.6):
                    seen += 1

            with pytest.raises(APITimeoutError, match="deadline"):
                await walk()
            assert time.monotonic() - started < 1.5
    assert 2 <= seen <= 5


def orjson_page(total: int) -> bytes:
    """A one-track page that says the result set holds `total` tracks."""
    import orjson

    return orjson.dumps(page_json(["1"], total=total, limit=1))


def test_the_sync_client_takes_the_same_options() -> None:
    """`Client.search` takes per-call options and `deadline` like the async client."""
    with (
        RawServer(silent, lifetime=10) as server,
        Client(API_KEY, base_url=server.url(), max_retries=3) as client,
    ):
        started = time.monotonic()
        with pytest.raises(APITimeoutError, match="deadline"):
            client.search(QUERY, deadline=0.4, timeout=5)
        assert time.monotonic() - started < 1.5


# ---------------------------------------------------------------- with_options


@pytest.mark.anyio
async def test_with_options_shares_the_pool_and_leaves_the_original_alone() -> None:
    """A copy has its own defaults, the same pool and gate, and closing it closes nothing."""
    api = MockAPI(error(500), ok(), ok(), ok())
    async with open_client(api, max_retries=0, default_headers={"x-a": "1"}) as client:
        patient = client.with_options(max_retries=2, timeout=60, default_headers={"x-b": "2"})
        assert patient.retry_policy.max_retries == 2
        assert patient.timeout == httpx.Timeout(60)
        assert client.retry_policy.max_retries == 0
        assert client.timeout == httpx.Timeout(30)
        page = await patient.search(QUERY)
        assert page.attempts == 2
        async with patient:
            pass
        await patient.aclose()
        assert not client.is_closed
        await client.search(QUERY)
        assert api.requests[1].headers["x-a"] == "1"
        assert api.requests[1].headers["x-b"] == "2"
        assert "x-b" not in api.requests[2].headers
    assert patient.is_closed  # the original's close is the copy's


@pytest.mark.anyio
async def test_with_options_copies_share_the_rate_gate(monkeypatch: pytest.MonkeyPatch) -> None:
    """Calls through a copy and through the original take turns from one rate limit."""
    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(ok(), ok())
    limit = RateLimit(requests_per_second=1, burst=1)
    async with open_client(api, rate_limit=limit) as client:
        await client.search(QUERY)
        await client.with_options(max_retries=1).search(QUERY)
    assert len(sleeps) == 1
    assert 0.9 < sleeps[0] <= 1.0


def test_with_options_checks_its_arguments() -> None:
    """A bad override is an `InvalidParameterError`, as in the constructor."""
    client = AsyncClient(API_KEY)
    with pytest.raises(InvalidParameterError, match="timeout"):
        client.with_options(timeout=-1)
    with pytest.raises(InvalidParameterError, match="max_retries"):
        client.with_options(max_retries=-1)


def test_sync_with_options_shares_the_thread() -> None:
    """`Client.with_options` runs on the original's loop thread and needs no closing."""
    api = MockAPI(ok(), ok())
    with (
        Client(API_KEY, http_client=httpx.AsyncClient(transport=api.transport())) as client,
    ):
        copy = client.with_options(max_retries=0)
        copy.search(QUERY)
        copy.close()
        client.search(QUERY)
    assert copy.is_closed
    assert len(api.requests) == 2


# ---------------------------------------------------------------- an answer's story


@pytest.mark.anyio
async def test_an_answer_tells_its_story(monkeypatch: pytest.MonkeyPatch) -> None:
    """Status, headers, elapsed, attempts and request id ride on the page, outside == and repr."""
    record_sleeps(monkeypatch)
    api = MockAPI(error(503), ok(page_json(), **{"x-request-id": "req_42", "x-extra": "yes"}))
    async with open_client(api) as client:
        page = await client.search(QUERY)
    assert page.status_code == 200
    assert page.headers is not None
    assert page.headers["x-extra"] == "yes"
    assert page.request_id == "req_42"
    assert page.attempts == 2
    assert page.elapsed is not None
    assert 0 <= page.elapsed < 5
    api2 = MockAPI(ok(page_json()))
    async with open_client(api2) as client:
        other = await client.search(QUERY)
    assert other == page
    assert other.attempts == 1
    assert "req_42" not in repr(page)
    assert "attempts" not in repr(page)


# ---------------------------------------------------------------- a timeout's total bound


@pytest.mark.anyio
async def test_an_httpx_timeout_keeps_a_total_bound(sdk_transport: str) -> None:
    """`timeout=httpx.Timeout(0.5)` holds a trickled body to about 0.5 s in all."""
    with RawServer(trickle, lifetime=10) as server:
        async with _raw_client(server, sdk_transport, timeout=httpx.Timeout(0.5)) as client:
            started = time.monotonic()
            with pytest.raises(APITimeoutError, match=r"within 0\.5 s"):
                await client.search(QUERY)
            assert time.monotonic() - started < 2
            with pytest.raises(APITimeoutError):
                await client.search(QUERY, timeout=httpx.Timeout(0.3, connect=0.2))


# -- a crawl's own pace: a gate of its own, the owner's pause and last success ---------


@pytest.mark.anyio
async def test_a_crawls_own_gate_shares_the_owners_pause_and_last_success() -> None:
    """A 429's pause set through the client's gate holds the crawl's auto gate too."""
    from audioscape_async import AsyncClient, RateLimit

    async with AsyncClient(API_KEY, base_url="http://127.0.0.1:9/developer/v1") as client:
        pipeline = client._pipeline
        crawl_gate = pipeline.gate_for(RateLimit.auto())
        assert crawl_gate is not pipeline.gate
        assert crawl_gate is pipeline.gate_for(RateLimit.auto())  # one per owner and limit
        await pipeline.gate.pause(30.0)
        assert not crawl_gate.ready()
        assert crawl_gate.state is pipeline.gate.state
        pipeline.gate.succeeded()
        assert crawl_gate.last_success == pipeline.gate.last_success > 0


@pytest.mark.anyio
async def test_a_crawl_limit_equal_to_the_clients_is_the_clients_gate() -> None:
    """The same limit twice is one gate, not two that together send at twice the rate."""
    from audioscape_async import AsyncClient, RateLimit

    limit = RateLimit(10, burst=2)
    async with AsyncClient(
        API_KEY, base_url="http://127.0.0.1:9/developer/v1", rate_limit=limit
    ) as client:
        pipeline = client._pipeline
        assert pipeline.gate_for(RateLimit(10, burst=2)) is pipeline.gate
        assert pipeline.gate_for(RateLimit(20)) is not pipeline.gate


def test_a_crawl_backends_key_secret_names_its_limit() -> None:
    """A crawl's RedisBackend with a key_secret of its own names the limit with it."""
    from audioscape_async import AsyncClient, RateLimit, RedisBackend
    from audioscape_async._fingerprint import fingerprint

    url = "http://127.0.0.1:9/developer/v1"
    backend = RedisBackend("redis://127.0.0.1:1/0", key_secret=b"s" * 32)
    client = AsyncClient(API_KEY, base_url=url)
    gate = client._pipeline.gate_for(RateLimit.auto(backend=backend))
    assert gate.name == fingerprint(url, API_KEY, b"s" * 32)  # type: ignore[union-attr]
    assert gate.name != client._pipeline.owner  # type: ignore[union-attr]
