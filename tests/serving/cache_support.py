"""What the stale-while-revalidate, warm-up and fleet tests share: an emulator of their own
whose request log counts the upstream calls, the cache's clock driven by the test, and a
client on them."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from audioscape_async import AsyncClient, SearchCache
from audioscape_async.emulator import EmulatorServer

if TYPE_CHECKING:
    from audioscape_async import RedisBackend


class CacheClock:
    """The in-process store's clock (`_cache.clock`), moved by the test."""

    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def searches(server: EmulatorServer) -> int:
    """The requests the emulator has seen (faulted ones too): the upstream calls."""
    return len(server.emulator.requests)


def client_for(server: EmulatorServer, cache: SearchCache | None, **options: Any) -> AsyncClient:
    """An `AsyncClient` on `server` with `cache`, on httpx's transport."""
    return AsyncClient(
        server.api_key, base_url=server.url, cache=cache, transport="httpx", **options
    )


def process(server: EmulatorServer, backend: RedisBackend, **cache: Any) -> AsyncClient:
    """A client with a cache of its own over the shared backend: one process of a fleet
    (no retries: a test counts every call)."""
    cache_ = SearchCache(backend=backend, **cache)
    return AsyncClient(
        server.api_key, base_url=server.url, cache=cache_, transport="httpx", max_retries=0
    )
