"""How event hooks and the OpenTelemetry switches read to a type checker. Never run."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from typing_extensions import assert_type

from audioscape_async import (
    AsyncClient,
    BreakerEvent,
    CacheEvent,
    Client,
    EventHook,
    PageEvent,
    RateLimitEvent,
    RequestEvent,
    ResponseEvent,
    RetryEvent,
    SearchResponse,
    Telemetry,
)


def on_request(event: RequestEvent) -> None:
    assert_type(event.method, str)
    assert_type(event.url, str)
    assert_type(event.headers, Mapping[str, str])
    assert_type(event.attempt, int)


async def on_response(event: ResponseEvent) -> None:
    assert_type(event.status_code, int)
    assert_type(event.elapsed, float)
    assert_type(event.request_id, str | None)


def on_retry(event: RetryEvent) -> None:
    assert_type(event.error, BaseException)
    assert_type(event.delay, float)


def on_others(event: RateLimitEvent | CacheEvent | BreakerEvent | PageEvent) -> None:
    if isinstance(event, RateLimitEvent):
        assert_type(event.kind, Literal["wait", "pause"])
        assert_type(event.seconds, float)
    elif isinstance(event, CacheEvent):
        assert_type(
            event.result, Literal["hit", "miss", "stale", "coalesced", "refreshed", "stored"]
        )
    elif isinstance(event, BreakerEvent):
        assert_type(event.state, Literal["closed", "open", "half_open"])
    else:
        assert_type(event.page, SearchResponse)
        assert_type(event.new_tracks, int)


hook: EventHook = on_retry
telemetry = Telemetry(capture_query=True, propagate=False)
client = AsyncClient(
    event_hooks={"request": [on_request], "response": [on_response], "retry": [hook]},
    telemetry=telemetry,
)
copy = client.with_options(event_hooks={"cache": [on_others]})
assert_type(copy, AsyncClient)
blocking = Client(event_hooks={"page": [on_others]}, telemetry=Telemetry(enabled=False))
AsyncClient(event_hooks=[on_request])  # type: ignore[arg-type]
Telemetry(capture_query="yes")  # type: ignore[arg-type]
