"""(10) The search cache and the shared rate limit: what a hit, a coalesced burst and a
shared acquisition cost.

- **Hit cost**: `SearchCache.fetch` on a fresh entry against a raw ``dict.get``
  (the floor of any in-process cache) and against a miss, a real
  `AsyncClient.search(limit=5)` through the emulator in another process.
- **Coalescing**: N identical concurrent searches with and without the cache;
  the requests the emulator logged, and the wall time of the burst.
- **Shared limit**: `RedisBackend.acquire` (one Lua script over loopback, to a
  `redis-server` this benchmark starts) and `SharedGate.wait`, against the
  in-process `Gate.wait`, with a limit high enough that nobody waits.

All on asyncio (redis-py's client runs only there).
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Awaitable, Callable

from audioscape_async import AsyncClient, RateLimit, SearchResponse
from audioscape_async._cache import SearchCache, cache_key
from audioscape_async._gate import Gate
from audioscape_async.emulator import EmulatorProcess

from ._common import (
    QUERY,
    Result,
    Settings,
    interleave_async,
    interleave_sync,
    medians,
    run_async,
)

NAME = "cache"


async def _hit_and_miss(url: str, api_key: str, settings: Settings) -> dict[str, list[float]]:
    async with AsyncClient(api_key, base_url=url, transport="httpx") as client:
        cache = SearchCache(ttl=3_600)
        key = cache_key(url, QUERY, 5, 0, None)

        def search() -> Awaitable[SearchResponse]:
            return client.search(QUERY, limit=5)

        await cache.fetch(key, search, deadline=None)  # warm: the entry, the connection
        uncached = SearchCache(ttl=3_600)

        async def miss() -> object:
            uncached.clear()
            return await uncached.fetch(key, search, deadline=None)

        for _ in range(20):
            await miss()
        hits = await interleave_async(
            {"cache hit": lambda: cache.fetch(key, search, deadline=None)},
            rounds=settings.pick(25, 3),
            batch=settings.pick(20_000, 500),
        )
        misses = await interleave_async(
            {"miss (search via the emulator)": miss},
            rounds=settings.pick(15, 2),
            batch=settings.pick(50, 5),
        )
    table = {"raw dict lookup": {key: object()}}
    raw = interleave_sync(
        {"raw dict lookup": lambda: table["raw dict lookup"].get(key)},
        rounds=settings.pick(25, 3),
        batch=settings.pick(200_000, 5_000),
    )
    return {**raw, **hits, **misses}


async def _coalescing(emulator: EmulatorProcess, n: int) -> tuple[dict[str, int], dict[str, float]]:
    requests: dict[str, int] = {}
    seconds: dict[str, float] = {}
    async with AsyncClient(emulator.api_key, base_url=emulator.url, transport="httpx") as client:
        key = cache_key(emulator.url, QUERY, 5, 0, None)
        for variant, cache in (("no cache", None), ("cache", SearchCache(ttl=3_600))):
            emulator.reset()

            def search() -> Awaitable[SearchResponse]:
                return client.search(QUERY, limit=5)

            def one(cache: SearchCache | None = cache) -> Awaitable[SearchResponse]:
                return search() if cache is None else cache.fetch(key, search, deadline=None)

            start = time.perf_counter()
            await asyncio.gather(*(one() for _ in range(n)))
            seconds[variant] = time.perf_counter() - start
            requests[variant] = int(emulator.requests()["count"])
    return requests, seconds


async def _shared_limit(url: str | None, settings: Settings) -> dict[str, list[float]]:
    from audioscape_async._redis import RedisBackend, SharedGate

    huge = RateLimit(requests_per_second=1e9, burst=10**9)
    gate = Gate(huge)
    variants: dict[str, Callable[[], Awaitable[object]]] = {"in-process Gate.wait": gate.wait}
    backend = RedisBackend(url) if url is not None else None
    if backend is not None:
        shared = SharedGate(huge, backend, "bench")
        variants["RedisBackend.acquire"] = lambda: backend.acquire("bench", 1e9, 10**9)
        variants["SharedGate.wait"] = shared.wait
    for call in variants.values():
        for _ in range(50):
            await call()
    try:
        return await interleave_async(
            variants, rounds=settings.pick(15, 2), batch=settings.pick(2_000, 100)
        )
    finally:
        if backend is not None:
            await backend.aclose()


def run(settings: Settings) -> list[Result]:
    n = settings.pick(1_000, 100)
    with EmulatorProcess(tracks=settings.pick(10_000, 1_000)) as emulator:
        samples = run_async(_hit_and_miss(emulator.url, emulator.api_key, settings))
        requests, seconds = run_async(_coalescing(emulator, n))
    us = {name: value * 1e6 for name, value in medians(samples).items()}
    miss = us["miss (search via the emulator)"]
    results = [
        Result(
            benchmark="10a. cache hit cost",
            variants=us,
            unit="µs/call",
            ratio_label="miss / cache hit",
            ratio=miss / us["cache hit"],
            target=">= 100",
            notes=[
                "asyncio; in-process store; a miss is a search(limit=5) through the emulator "
                "in another process, over loopback",
                f"cache hit / raw dict lookup: {us['cache hit'] / us['raw dict lookup']:.1f}",
            ],
        ),
        Result(
            benchmark=f"10b. coalescing, {n:,} identical concurrent searches",
            variants={f"requests, {k}": float(v) for k, v in requests.items()},
            unit="HTTP requests",
            ratio_label="requests with the cache",
            ratio=float(requests["cache"]),
            target="<= 1",
            notes=[
                "one asyncio.gather through one AsyncClient; requests counted by the emulator",
                f"burst wall time: no cache {seconds['no cache'] * 1e3:.0f} ms, "
                f"cache {seconds['cache'] * 1e3:.0f} ms",
            ],
        ),
    ]
    binary = shutil.which("redis-server")
    if binary is None:
        print("  note: redis-server is not installed; the shared-limit variants are skipped")
        limit = run_async(_shared_limit(None, settings))
    else:
        from tests.serving.redis_server import RedisServer

        with RedisServer() as server:
            limit = run_async(_shared_limit(server.url, settings))
    limit_us = {name: value * 1e6 for name, value in medians(limit).items()}
    shared = limit_us.get("SharedGate.wait")
    results.append(
        Result(
            benchmark="10c. shared rate limit, cost per acquisition",
            variants=limit_us,
            unit="µs/call",
            ratio_label="SharedGate.wait / in-process Gate.wait",
            ratio=None if shared is None else shared / limit_us["in-process Gate.wait"],
            target="",
            notes=[
                "asyncio; redis-server on loopback, one Lua script per acquisition; "
                "a limit no caller waits for",
                "the shared gate costs one Redis round trip: it is meant for fleets, "
                "where the alternative is 429s",
            ]
            if shared is not None and not math.isnan(shared)
            else ["redis-server not installed: only the in-process gate was measured"],
        )
    )
    return results
