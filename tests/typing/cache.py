"""How the cache, the breaker and the Redis backend read to a type checker. Never run."""

from __future__ import annotations

from typing import Literal

from typing_extensions import assert_type

from audioscape_async import (
    APIConnectionError,
    AudioScapeError,
    BackendUnavailableError,
    CircuitBreaker,
    CircuitOpenError,
    RedisBackend,
    SearchCache,
    SearchResponse,
)


async def usage(page: SearchResponse) -> None:
    fleet = RedisBackend("redis://127.0.0.1:6379/0", prefix="game:", fallback=True)
    cache = SearchCache(ttl=300, max_entries=10_000, stale_if_error=3_600, backend=fleet)
    assert_type(cache.hits, int)
    assert_type(cache.stats(), dict[str, int])
    bounded = SearchCache(ttl=60, max_entries=1_000, max_bytes=16 * 2**20)
    assert_type(bounded.max_bytes, int)
    assert_type(page.cache_status, str | None)

    breaker = CircuitBreaker(failure_threshold=5, recovery_time=30)
    assert_type(breaker.state, Literal["closed", "open", "half_open"])
    assert_type(breaker.opened_at, float | None)

    error: APIConnectionError = CircuitOpenError("open", retry_in=3.0)
    assert_type(CircuitOpenError("open").retry_in, float)
    unavailable: AudioScapeError = BackendUnavailableError("down", url=fleet.url)
    assert_type(await fleet.acquire("limit", 10, 20), float)
    assert_type(await fleet.get("key"), bytes | None)
    del error, unavailable

    SearchCache(ttl="300")  # type: ignore[arg-type]
    CircuitBreaker(failure_threshold=None)  # type: ignore[arg-type]
