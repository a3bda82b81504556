"""Event hooks: every stage's typed event, on both event loops, both transports, and `Client`."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import pytest

from audioscape_async import (
    AsyncClient,
    BreakerEvent,
    CacheEvent,
    CircuitBreaker,
    Client,
    InvalidParameterError,
    PageEvent,
    RateLimit,
    RateLimitEvent,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    SearchCache,
)
from audioscape_async.emulator import EmulatorServer, Faults

#: No test here waits out a retry backoff or a 429's pause (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")

#: A query with over a hundred results in the emulator's catalog.
QUERY = "chill lo-fi beats"


@pytest.fixture(scope="module")
def server() -> Iterator[EmulatorServer]:
    """One emulator in a thread for the whole module."""
    with EmulatorServer(tracks=250) as running:
        yield running


@pytest.fixture(autouse=True)
def _no_faults_left(server: EmulatorServer) -> Iterator[None]:
    yield
    server.emulator.reset()


class Recorder:
    """Hooks for every event, half of them async; what each was given, in order."""

    def __init__(self) -> None:
        self.events: list[Any] = []

    def sync(self, event: Any) -> None:
        self.events.append(event)

    async def later(self, event: Any) -> None:
        self.events.append(event)

    def hooks(self, *names: str) -> dict[str, list[Any]]:
        return {
            name: [self.later if n % 2 else self.sync]
            for n, name in enumerate(
                names or ("request", "response", "retry", "rate_limit", "cache", "breaker", "page")
            )
        }

    def of(self, kind: type) -> list[Any]:
        return [event for event in self.events if isinstance(event, kind)]


def _client(server: EmulatorServer, transport: str = "httpx", **options: Any) -> AsyncClient:
    return AsyncClient(server.api_key, base_url=server.url, transport=transport, **options)  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_request_and_response_events_on_each_transport(
    server: EmulatorServer, sdk_transport: str
) -> None:
    """Each attempt gives a RequestEvent, then a ResponseEvent, sync and async hooks alike."""
    seen = Recorder()
    async with _client(server, sdk_transport, event_hooks=seen.hooks()) as client:
        page = await client.search("chill lo-fi beats", limit=3)
    (request,) = seen.of(RequestEvent)
    (response,) = seen.of(ResponseEvent)
    assert seen.events == [request, response]
    assert request.method == "POST"
    assert request.url == f"{server.url}/search"
    assert request.attempt == 1
    assert request.headers["content-type"] == "application/json"
    assert response.status_code == 200
    assert response.attempt == 1
    assert response.request_id == page.request_id
    assert response.elapsed > 0


@pytest.mark.anyio
async def test_retry_events_say_error_delay_and_attempt(
    server: EmulatorServer, sdk_transport: str, sleeps: list[float]
) -> None:
    """Two 503s then a page: two RetryEvents, attempts 1 and 2, with the delays slept."""
    seen = Recorder()
    server.emulator.force_fault("503", 2)
    async with _client(server, sdk_transport, event_hooks=seen.hooks()) as client:
        page = await client.search("chill lo-fi beats", limit=3)
    retries = seen.of(RetryEvent)
    assert [event.attempt for event in retries] == [1, 2]
    assert [event.error.status_code for event in retries] == [503, 503]
    assert [event.delay for event in retries] == sleeps
    assert [event.attempt for event in seen.of(RequestEvent)] == [1, 2, 3]
    assert [event.status_code for event in seen.of(ResponseEvent)] == [503, 503, 200]
    assert page.attempts == 3


@pytest.mark.anyio
async def test_a_429_sets_a_pause_event_and_a_rate_limit_a_wait_event(
    server: EmulatorServer,
) -> None:
    """A 429 with Retry-After is a "pause" event; a turn waited for at the gate, a "wait"."""
    seen = Recorder()
    limit = RateLimit(requests_per_second=2, burst=1)
    server.emulator.set_faults(Faults(retry_after=2))
    server.emulator.force_fault("429")
    async with _client(server, event_hooks=seen.hooks(), rate_limit=limit) as client:
        await client.search("chill lo-fi beats", limit=3)
    kinds = [(event.kind, event.seconds > 0) for event in seen.of(RateLimitEvent)]
    assert ("pause", True) in kinds
    assert ("wait", True) in kinds


@pytest.mark.anyio
async def test_cache_events_say_miss_then_hit(server: EmulatorServer) -> None:
    """The cache stage tells a miss (its page stored), then a hit for the same search."""
    seen = Recorder()
    async with _client(server, event_hooks=seen.hooks("cache"), cache=SearchCache()) as client:
        await client.search("chill lo-fi beats", limit=3)
        await client.search("chill lo-fi beats", limit=3)
    assert seen.events == [CacheEvent("stored"), CacheEvent("miss"), CacheEvent("hit")]


@pytest.mark.anyio
async def test_breaker_events_say_each_change_of_state(server: EmulatorServer) -> None:
    """A failure that opens the circuit is an "open" event; nothing else changed it."""
    seen = Recorder()
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=60)
    server.emulator.force_fault("503")
    async with _client(
        server, event_hooks=seen.hooks("breaker"), circuit_breaker=breaker, max_retries=0
    ) as client:
        with pytest.raises(Exception, match="503"):
            await client.search("chill lo-fi beats", limit=3)
    assert seen.events == [BreakerEvent("open")]


@pytest.mark.anyio
async def test_page_events_for_a_walk_and_a_crawl(server: EmulatorServer) -> None:
    """A walk and a streaming crawl each give one PageEvent per page, in offset order."""
    seen = Recorder()
    async with _client(server, event_hooks=seen.hooks("page")) as client:
        pages = [page async for page in client.iter_pages(QUERY, page_size=40, max_items=100)]
        assert [(e.offset, e.pages) for e in seen.events] == [(0, 1), (40, 2), (80, 3)]
        assert [e.page for e in seen.events] == pages
        seen.events.clear()
        async with client.crawl(QUERY, page_size=40, max_items=100, concurrency=3) as crawl:
            tracks = [track async for track in crawl]
    assert [(e.offset, e.pages) for e in seen.events] == [(0, 1), (40, 2), (80, 3)]
    assert sum(event.new_tracks for event in seen.of(PageEvent)) == len(tracks) == 100


def test_sync_client_passes_hooks_to_the_core(server: EmulatorServer) -> None:
    """`Client(event_hooks=...)` runs sync and async hooks, and its copies append theirs."""
    seen, more = Recorder(), Recorder()
    with Client(server.api_key, base_url=server.url, event_hooks=seen.hooks()) as client:
        client.search("chill lo-fi beats", limit=3)
        copy = client.with_options(event_hooks={"request": [more.later]})
        copy.search("chill lo-fi beats", limit=3)
    assert [type(event) for event in seen.events] == [RequestEvent, ResponseEvent] * 2
    assert [type(event) for event in more.events] == [RequestEvent]


@pytest.mark.anyio
async def test_with_options_appends_hooks_event_by_event(server: EmulatorServer) -> None:
    """A copy's hooks run after its parent's; the parent keeps only its own."""
    calls: list[str] = []
    hooks: dict[str, list[Any]] = {"request": [lambda _: calls.append("parent")]}
    async with _client(server, event_hooks=hooks) as client:
        copy = client.with_options(event_hooks={"request": [lambda _: calls.append("copy")]})
        await copy.search("chill lo-fi beats", limit=3)
        await client.search("chill lo-fi beats", limit=3)
        plain = client.with_options(timeout=5)
        await plain.search("chill lo-fi beats", limit=3)
    assert calls == ["parent", "copy", "parent", "parent"]


@pytest.mark.anyio
async def test_a_raising_hook_is_logged_once_and_the_call_goes_on(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A hook that raises every time is logged once; every call still returns its page."""
    after: list[object] = []

    def broken(event: object) -> None:
        raise RuntimeError("hook bug")

    hooks: dict[str, list[Any]] = {"request": [broken, after.append], "response": [broken]}
    async with _client(server, event_hooks=hooks) as client:
        with caplog.at_level(logging.WARNING, logger="audioscape_async"):
            pages = [await client.search("chill lo-fi beats", limit=3) for _ in range(3)]
    assert all(page.tracks for page in pages)
    assert len(after) == 3  # the hooks after it still ran
    logged = [r for r in caplog.records if "hook bug" in r.getMessage()]
    assert len(logged) == 1
    assert "logged once" in logged[0].getMessage()


@pytest.mark.anyio
async def test_no_event_holds_a_secret(server: EmulatorServer, sleeps: list[float]) -> None:
    """The key, a URL password and proxy credentials are in no event's repr."""
    seen = Recorder()
    server.emulator.force_fault("503")
    url = server.url.replace("http://", "http://someone:pa55word-TOP@")
    async with AsyncClient(
        server.api_key,
        base_url=url,
        transport="httpx",
        event_hooks=seen.hooks(),
        default_headers={"proxy-authorization": "Basic cHJveHktU0VDUkVU"},
        cache=SearchCache(),
    ) as client:
        await client.search("chill lo-fi beats", limit=3)
    assert {type(event) for event in seen.events} >= {RequestEvent, ResponseEvent, RetryEvent}
    for event in seen.events:
        shown = repr(event)
        for secret in (server.api_key, "pa55word-TOP", "cHJveHktU0VDUkVU", "someone"):
            assert secret not in shown
    request = seen.of(RequestEvent)[0]
    assert not {"x-api-key", "authorization", "proxy-authorization"} & set(request.headers)


def test_unknown_event_names_and_bad_hooks_are_clear_errors() -> None:
    """An unknown event name names the valid ones; a hook that is not callable is refused."""
    with pytest.raises(InvalidParameterError, match=r"unknown event 'requests'.*request, response"):
        AsyncClient("key", event_hooks={"requests": [print]})
    with pytest.raises(InvalidParameterError, match="list of callables"):
        AsyncClient("key", event_hooks={"request": print})  # type: ignore[dict-item]
    with pytest.raises(InvalidParameterError, match="not a callable"):
        AsyncClient("key", event_hooks={"request": ["print"]})  # type: ignore[list-item]
    with pytest.raises(InvalidParameterError, match="unknown event 'cache_hit'"):
        AsyncClient("key").with_options(event_hooks={"cache_hit": [print]})


def test_a_client_without_hooks_or_providers_has_no_observers() -> None:
    """With no hooks and OpenTelemetry's default providers, a search is observed by nothing."""
    client = AsyncClient("key")
    observers = client._pipeline.observers
    assert observers is None or observers.call(b'{"query":"q","limit":1,"offset":0}') is None


@pytest.mark.anyio
async def test_emit_cache_reaches_the_hooks_of_the_call_running_here(
    server: EmulatorServer,
) -> None:
    """`_hooks.emit_cache` (the cache's own reports) reaches the running call's hooks only."""
    from audioscape_async._hooks import emit_cache

    seen = Recorder()

    async def store(_event: object) -> None:
        await emit_cache("stored")

    hooks = {"request": [store], "cache": [seen.sync]}
    async with _client(server, event_hooks=hooks) as client:
        await client.search("chill lo-fi beats", limit=3)
    await emit_cache("refreshed")  # no call runs here: nobody is told
    assert seen.events == [CacheEvent("stored")]
