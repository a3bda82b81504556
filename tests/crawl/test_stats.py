"""Crawl statistics: rate-limit waits in wall-clock time, live while waiting, every 429."""

from __future__ import annotations

import time as _time
from pathlib import Path

import pytest

from audioscape_async import CrawlStats, RateLimit
from audioscape_async.emulator import EmulatorServer, Faults
from tests.crawl.support import QUERY, client_for


def test_rate_wait_is_wall_clock_not_summed() -> None:
    """Overlapping waits of concurrent tasks count once; separate waits add up."""
    stats = CrawlStats()
    live = []
    with stats.rate_wait():
        live.append(stats.waiting_for_rate_limit)
        with stats.rate_wait():
            _time.sleep(0.05)
        _time.sleep(0.05)
    live.append(stats.waiting_for_rate_limit)
    assert live == [True, False]
    assert 0.1 <= stats.rate_wait_seconds < 0.15
    # The `+=` of a wait as it ends spans [now - waited, now]: after a gap it adds,
    # and a second task's wait over the same moment does not add again.
    _time.sleep(0.05)
    stats.rate_wait_seconds += 0.02
    stats.rate_wait_seconds += 0.02
    assert 0.12 <= stats.rate_wait_seconds < 0.135


@pytest.mark.anyio
async def test_rate_wait_of_a_concurrent_crawl_is_at_most_its_duration(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Eight tasks held by a 40 rps limit: the wait reported is no longer than the crawl."""
    limit = RateLimit(requests_per_second=40, burst=1)
    async with client_for(server, rate_limit=limit) as client:
        stats = await client.crawl_to_file(
            QUERY, tmp_path / "t.jsonl", max_items=2_000, page_size=50, concurrency=8
        )
    assert stats.pages == 40
    assert 0.5 < stats.rate_wait_seconds <= stats.elapsed


@pytest.mark.anyio
async def test_stats_say_live_when_the_crawl_waits_for_the_rate_limit(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """While a request waits for the rate limit, `waiting_for_rate_limit` says so; wall-clock."""
    import anyio

    holder: list[CrawlStats] = []
    seen: list[bool] = []
    first_page = anyio.Event()

    def progress(stats: CrawlStats) -> None:
        holder.append(stats)
        first_page.set()

    async def watch() -> None:
        await first_page.wait()
        for _ in range(60):
            seen.append(holder[0].waiting_for_rate_limit)
            await anyio.sleep(0.01)

    limit = RateLimit(requests_per_second=5, burst=1)
    async with client_for(server, rate_limit=limit) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        stats = await client.crawl_to_file(
            QUERY, tmp_path / "out.jsonl", page_size=10, max_items=50, on_progress=progress
        )
    assert any(seen)
    assert not stats.waiting_for_rate_limit
    assert 0.5 < stats.rate_wait_seconds <= stats.elapsed


@pytest.mark.anyio
async def test_every_429_is_counted_with_or_without_retry_after(server: EmulatorServer) -> None:
    """The documented 429 has no Retry-After; a crawl still counts it in `rate_limited`."""
    server.emulator.set_faults(Faults({"429": 0.3}))
    async with client_for(server) as client:
        crawl = client.crawl(QUERY, page_size=10, max_items=200)
        async for _ in crawl:
            pass
    assert crawl.stats.retries.get("429", 0) > 0
    assert crawl.stats.rate_limited == crawl.stats.retries["429"]
