"""13. Crawls at the tier: a crawl with no rate given finds the API key's limit from its 429s.

The emulator runs in a process of its own with a 1,000,000-track catalog and a
per-key tier (a token bucket: 10 requests/s with a burst of 10, then 50/s
with a burst of 50), answering the documented 429 (no Retry-After) past it.
Each run is one `crawl` of ``rate x 30`` pages of 100 tracks (about 30 s at
the tier), the query ranked beforehand and the bucket full at its start:

- ``auto cN``: no rate given (`RateLimit.auto()`, what `crawl` uses on a
  client without a `rate_limit`), at concurrency 4, 16 and 64;
- ``rps cN``: ``rate_limit=RateLimit(tier)``, as ``--rps`` sets it;
- ``fleet auto`` and ``fleet rps``: three processes, each crawling its own
  query at concurrency 8, sharing ``RateLimit.auto(backend=RedisBackend(...))``
  (one rate learned by all three) or ``RateLimit(tier, backend=...)`` through a
  redis-server this benchmark starts (skipped without one), the targets
  holding for their sum.

Measured from the emulator's own request log: a run's efficiency is its
successful pages over what the tier allows from its first request to its last
answer (``burst + rate x time``; with ``--rps``, ``1 + rate x time``, since
the client's own burst is 1), and its 429 share is that of the requests sent
after its first 10 seconds. Each crawl must also come back exact (every track
once). Rows report the median of the runs, and the worst run in the notes.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import shutil
import statistics
import sys
import time
from typing import Any

from ._common import Result, Settings

NAME = "tier"
QUERIES = ["upbeat summer vibes", "dark cinematic boss tension", "sad piano"]
SETTLE = 10.0  # seconds a learned rate has to find the tier


async def _crawl(
    url: str, key: str, query: str, pages: int, concurrency: int, limit: Any
) -> tuple[int, int]:
    from audioscape_async import AsyncClient, RetryPolicy

    kwargs: dict[str, Any] = {} if limit == "auto" else {"rate_limit": limit}
    async with AsyncClient(key, base_url=url, retry=RetryPolicy(max_retries=5)) as client:
        crawl = client.crawl(query, max_items=pages * 100, concurrency=concurrency, **kwargs)
        ids = [track.asset_id async for track in crawl]
    return len(ids), len(set(ids))


def _score(
    records: list[dict[str, Any]], rate: float, burst: int, settle: float
) -> tuple[float, float, float]:
    """(efficiency, 429 share after `settle` s, seconds) of one run's request log."""
    times = [r["time"] for r in records]
    first, last = min(times), max(times)
    ok = sum(1 for r in records if r["status"] == 200)
    late = [r for r in records if r["time"] > first + settle]
    late_429 = sum(1 for r in late if r["status"] == 429)
    return ok / (burst + rate * (last - first)), late_429 / max(1, len(late)), last - first


def _fleet_child(url: str, key: str, redis_url: str, query: str, pages: int, rate: float) -> None:
    from audioscape_async import RateLimit, RedisBackend

    backend = RedisBackend(redis_url)
    limit = RateLimit.auto(backend=backend) if rate == 0 else RateLimit(rate, backend=backend)
    count, distinct = asyncio.run(_crawl(url, key, query, pages, 8, limit))
    if count != pages * 100 or distinct != count:
        sys.exit(f"fleet crawl of {query!r} not exact: {count} tracks, {distinct} distinct")


def _fleet(url: str, key: str, redis_url: str, pages: int, rate: float) -> None:
    """Three processes crawl a query each, sharing `rate` (0: a learned one) through Redis."""
    context = multiprocessing.get_context("spawn")
    children = [
        context.Process(target=_fleet_child, args=(url, key, redis_url, query, pages // 3, rate))
        for query in QUERIES
    ]
    for child in children:
        child.start()
    for child in children:
        child.join()
        if child.exitcode != 0:
            raise RuntimeError(f"a fleet process failed (exit {child.exitcode})")


def _redis() -> Any:
    """A redis-server of this benchmark's own (the test suite's helper), or None."""
    if shutil.which("redis-server") is None:
        return None
    from tests.serving.redis_server import RedisServer

    return RedisServer()


def _tier_rows(settings: Settings, rate: float, burst: int, runs: int) -> list[Result]:
    from audioscape_async import RateLimit
    from audioscape_async.emulator import EmulatorProcess, KeyRateLimit

    seconds = settings.pick(30, 4)
    settle = SETTLE if not settings.smoke else 1.0
    pages = int(rate * seconds)
    variants: dict[str, tuple[int, Any]] = {
        f"auto c{n}": (n, "auto") for n in ((4, 16, 64) if not settings.smoke else (4,))
    }
    variants["rps c4"] = (4, RateLimit(rate))
    limit = KeyRateLimit(rate, burst)
    efficiency: dict[str, list[float]] = {name: [] for name in variants}
    share: dict[str, list[float]] = {name: [] for name in variants}
    spans: list[float] = []
    redis = _redis() if not settings.smoke else None
    fleet = {"fleet auto": 0.0, "fleet rps": rate} if redis is not None else {}
    for name in fleet:
        efficiency[name], share[name] = [], []
    with EmulatorProcess(tracks=settings.pick(1_000_000, 20_000), rate_limit=limit) as emulator:
        url, key = emulator.url, emulator.api_key

        async def warm() -> None:
            from audioscape_async import AsyncClient

            async with AsyncClient(key, base_url=url) as client:
                for query in QUERIES:  # the emulator ranks each query once
                    await client.search(query, limit=1)
                    await asyncio.sleep(1.0 / rate)

        asyncio.run(warm())
        try:
            if redis is not None:
                redis.start()
            for _ in range(runs):
                for name, (concurrency, how) in variants.items():
                    emulator.reset()  # an empty log and a full bucket
                    count, distinct = asyncio.run(
                        _crawl(url, key, QUERIES[0], pages, concurrency, how)
                    )
                    if count != pages * 100 or distinct != count:
                        raise RuntimeError(f"{name}: not exact ({count} tracks, {distinct})")
                    records = emulator.requests(last=100_000)["requests"]
                    own_burst = burst if how == "auto" else 1
                    ratio, late, span = _score(records, rate, own_burst, settle)
                    efficiency[name].append(ratio)
                    share[name].append(late)
                    spans.append(span)
                for name, shared_rate in fleet.items():
                    emulator.reset()
                    redis.flush()  # a fleet that learns starts from nothing
                    _fleet(url, key, redis.url, pages, shared_rate)
                    records = emulator.requests(last=100_000)["requests"]
                    own_burst = burst if shared_rate == 0 else 1
                    ratio, late, span = _score(records, rate, own_burst, settle)
                    efficiency[name].append(ratio)
                    share[name].append(late)
        finally:
            if redis is not None:
                redis.stop()
    label = f"{rate:g}/s, burst {burst}"
    autos = [name for name in efficiency if "auto" in name]
    fixed = [name for name in efficiency if "auto" not in name]
    about = f"{runs} run(s) of {pages:,} pages each (~{statistics.median(spans):.0f} s)"
    if redis is None:
        about += "; redis-server not installed or smoke run: no fleet"

    def per_run(samples: dict[str, list[float]], names: list[str]) -> str:
        return "; ".join(f"{n} " + ", ".join(f"{v:.3f}" for v in samples[n]) for n in names)

    def row(letter: str, names: list[str], what: str, target: str) -> Result:
        """One row: the pages / possible (worst: the lowest) or 429 share (the highest)."""
        pages = what == "pages"
        samples = efficiency if pages else share
        worst = min if pages else max
        return Result(
            benchmark=f"13{letter}. crawl at the tier ({label}): "
            + ("pages / possible" if pages else f"429s after the first {settle:g} s"),
            variants={name: statistics.median(samples[name]) for name in names},
            unit="" if pages else "of requests",
            ratio_label="the worst run's " + ("pages / possible" if pages else "429 share"),
            ratio=worst(worst(samples[name]) for name in names),
            target=target,
            notes=[about, "per run: " + per_run(samples, names)],
        )

    letters = "abcd" if rate < 20 else "efgh"
    return [
        row(letters[0], autos, "pages", ">= 0.95"),
        row(letters[1], autos, "share", "<= 0.02"),
        row(letters[2], fixed, "pages", ">= 0.98"),
        row(letters[3], fixed, "share", "<= 0.0"),
    ]


def run(settings: Settings) -> list[Result]:
    runs = settings.pick(3, 1)
    started = time.perf_counter()
    rows = _tier_rows(settings, 10, 10, runs)
    if not settings.smoke:
        rows += _tier_rows(settings, 50, 50, runs)
    print(f"  tier benchmark: {time.perf_counter() - started:.0f} s")
    return rows
