"""In-memory crawls against the emulator over real loopback sockets: exact, ordered, polite."""

from __future__ import annotations

import logging
import time
from pathlib import Path

import orjson
import pytest

from audioscape_async import (
    Client,
    CrawlStats,
    RateLimit,
    RateLimitError,
    RedisBackend,
    RetryPolicy,
)
from audioscape_async.emulator import EmulatorServer, Faults, KeyRateLimit, generate_catalog
from tests.crawl.support import QUERY, QUICK, client_for, walked_ids
from tests.serving.redis_server import RedisServer


@pytest.mark.anyio
async def test_crawl_under_faults_is_exact(server: EmulatorServer) -> None:
    """20,000 tracks through 10% 5xx, 5% 429 and dropped connections: none lost, none twice."""
    expected = await walked_ids(server, max_items=20_000)
    server.emulator.set_faults(
        Faults({"500": 0.05, "503": 0.05, "429": 0.05, "drop": 0.01}, retry_after=0)
    )
    async with client_for(server) as client:
        crawl = client.crawl(QUERY, max_items=20_000, concurrency=8)
        got = [track.asset_id async for track in crawl]
    assert got == expected
    assert len(set(got)) == 20_000
    stats = crawl.stats
    assert stats.tracks == 20_000
    assert stats.retries.get("5xx", 0) > 0
    assert stats.retries.get("429", 0) > 0
    assert stats.rate_limited == stats.retries["429"]
    assert stats.retries.get("connection", 0) > 0
    faults = [record.faults for record in server.emulator.requests if record.faults]
    assert len(faults) == stats.retry_count


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [2, 8])
async def test_concurrent_walk_equals_sequential(server: EmulatorServer, concurrency: int) -> None:
    """A concurrent walk yields the same tracks in the same order as a sequential one."""
    sequential = await walked_ids(server, max_items=3_000, page_size=97)
    concurrent = await walked_ids(server, max_items=3_000, page_size=97, concurrency=concurrency)
    assert concurrent == sequential
    assert len(sequential) == 3_000


@pytest.mark.anyio
async def test_concurrency_keeps_at_most_n_requests_in_flight(server: EmulatorServer) -> None:
    """With concurrency N the emulator never sees more than N requests of the walk at once."""
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.02))
    await walked_ids(server, max_items=2_000, concurrency=4)
    records = server.emulator.requests
    assert records
    # Each record spans arrival .. arrival + latency at least; count overlaps at each arrival.
    arrivals = sorted(record.time for record in records)
    for arrival in arrivals:
        in_flight = sum(1 for other in arrivals if arrival - 0.02 < other <= arrival)
        assert in_flight <= 4


@pytest.mark.anyio
async def test_client_rate_limit_is_observed_by_the_server(server: EmulatorServer) -> None:
    """With a 20 rps limit and a burst of 5, no second of arrivals holds more than 25."""
    limit = RateLimit(requests_per_second=20, burst=5)
    async with client_for(server, rate_limit=limit) as client:
        crawl = client.crawl(QUERY, max_items=4_000, page_size=100, concurrency=8)
        count = sum([1 async for _ in crawl])
    assert count == 4_000
    arrivals = sorted(record.time for record in server.emulator.requests)
    assert len(arrivals) == 40
    for index, start in enumerate(arrivals):
        window = [t for t in arrivals[index:] if t < start + 1.0]
        assert len(window) <= 20 + 5
    # 40 requests at 20 per second after a burst of 5 take at least 1.75 s.
    assert arrivals[-1] - arrivals[0] >= (40 - 5) / 20 - 0.05
    assert crawl.stats.rate_wait_seconds > 0


@pytest.mark.anyio
async def test_one_429_pauses_every_task_of_the_client(server: EmulatorServer) -> None:
    """After a 429 with Retry-After: 1, no request of the client arrives within that second."""
    server.emulator.set_faults(Faults(retry_after=1))
    async with client_for(server) as client:
        await client.search(QUERY, limit=1)
        server.emulator.force_fault("429")
        pages = [page async for page in client.iter_pages(QUERY, max_items=1_500, concurrency=8)]
    assert sum(len(page.tracks) for page in pages) == 1_500
    records = server.emulator.requests
    limited = [record for record in records if record.status == 429]
    assert len(limited) == 1
    t0 = limited[0].time
    # Requests already on the wire when the 429 was answered may land just after it.
    too_early = [r for r in records if t0 + 0.05 < r.time < t0 + 1.0]
    assert too_early == []


@pytest.mark.anyio
async def test_a_long_retry_after_fails_fast_and_pauses_only_up_to_the_cap(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Retry-After past the policy's limit raises at once; the pause lasts only up to the cap."""
    from audioscape_async import RateLimitError
    from audioscape_async import _retry as retry_module

    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retry_module, "sleep", record)
    server.emulator.set_faults(Faults(retry_after=11 * 86_400))
    server.emulator.force_fault("429")
    async with client_for(server) as client:
        with pytest.raises(RateLimitError) as first:
            await client.search(QUERY)
        assert slept == []
        page = await client.search(QUERY)  # waits out the capped pause, then asks again
    assert first.value.retry_after == 11 * 86_400
    assert len(slept) == 1
    assert QUICK.max_retry_after - 0.5 < slept[0] <= QUICK.max_retry_after
    assert page.tracks
    assert len(server.emulator.requests) == 2


@pytest.mark.anyio
async def test_adaptive_rate_halves_after_a_429(server: EmulatorServer) -> None:
    """An adaptive limit slows down after a 429 and climbs back with successes."""
    server.emulator.set_faults(Faults(retry_after=0))
    with pytest.warns(DeprecationWarning, match="adaptive"):
        limit = RateLimit(requests_per_second=200, burst=1, adaptive=True)
    async with client_for(server, rate_limit=limit) as client:
        server.emulator.force_fault("429")
        await client.search(QUERY)
        slowed = client._pipeline.gate.rate
        for _ in range(30):
            await client.search(QUERY)
        recovered = client._pipeline.gate.rate
    # Halved by the 429, then one success's step (5% of the configured rate) back up.
    assert slowed == 200 / 2 + 200 * 0.05
    assert recovered == 200


@pytest.mark.anyio
async def test_catalog_change_mid_crawl_is_reported_and_handled(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A catalog replaced mid-crawl shows up as drift in the stats and the log; no id twice."""
    replaced = False

    def change_catalog(stats: CrawlStats) -> None:
        nonlocal replaced
        if stats.pages == 5 and not replaced:
            server.emulator.replace_catalog(generate_catalog(30_000, seed=7))
            replaced = True

    caplog.set_level(logging.WARNING, logger="audioscape_async")
    async with client_for(server) as client:
        crawl = client.crawl(QUERY, concurrency=4, on_progress=change_catalog)
        ids = [track.asset_id async for track in crawl]
    assert replaced
    assert len(ids) == len(set(ids))
    assert crawl.stats.drift.get("total_changed", 0) >= 1
    assert "meta.total changed" in caplog.text
    # The walk went on to the new end.
    assert crawl.stats.total is not None
    assert len(ids) >= crawl.stats.total - 1_000  # replaced ranks may hide a few


def test_sync_client_crawls(big_server: EmulatorServer, tmp_path: Path) -> None:
    """The sync Client crawls through the same core, with live stats and files."""
    big_server.emulator.reset()
    with Client(big_server.api_key, base_url=big_server.url, retry=QUICK) as client:
        crawl = client.crawl(QUERY, max_items=777, concurrency=4)
        ids = [track.asset_id for track in crawl]
        assert len(ids) == len(set(ids)) == 777
        assert crawl.stats.tracks == 777
        assert crawl.stats.pages == 8
        stats = client.crawl_to_file(QUERY, tmp_path / "out.jsonl", max_items=777, concurrency=4)
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    written = [orjson.loads(line)["asset_id"] for line in lines]
    assert written == ids
    assert stats.tracks == 777


# -- a crawl at the tier: found from 429s, which slow it and never end it ----------


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [8, 32])
async def test_a_crawl_with_no_rate_finds_the_tier_and_ends_exact(
    server: EmulatorServer, concurrency: int
) -> None:
    """A 50/s tier, no rate given, max_retries=0: every 429 is retried, the crawl is exact,
    and after the first second the server sees no more than the tier (plus one burst)."""
    expected = await walked_ids(server, max_items=12_000)
    server.emulator.reset()
    server.emulator.set_rate_limit(KeyRateLimit(rate=50, burst=10))
    async with client_for(server, retry=RetryPolicy(max_retries=0)) as client:
        crawl = client.crawl(QUERY, max_items=12_000, concurrency=concurrency)
        got = [track.asset_id async for track in crawl]
    assert got == expected
    assert crawl.stats.rate_limited > 0  # it had to find the tier
    answered = sorted(r.time for r in server.emulator.requests if r.status == 200)
    assert len(answered) == 120
    after = [t for t in answered if t > answered[0] + 1.0]
    assert len(after) <= 10 + 50 * (answered[-1] - answered[0] - 1.0) + 1


@pytest.mark.anyio
async def test_a_crawl_takes_a_rate_limit_of_its_own(server: EmulatorServer) -> None:
    """`rate_limit=RateLimit(20, burst=5)` paces that crawl: at most 25 answers in any second."""
    async with client_for(server) as client:
        crawl = client.crawl(
            QUERY, max_items=4_000, concurrency=8, rate_limit=RateLimit(20, burst=5)
        )
        assert sum([1 async for _ in crawl]) == 4_000
    arrivals = sorted(record.time for record in server.emulator.requests)
    for first in arrivals:
        assert sum(1 for t in arrivals if first <= t < first + 1.0) <= 25


@pytest.mark.anyio
async def test_a_crawl_on_a_client_with_a_rate_limit_keeps_the_clients(
    server: EmulatorServer,
) -> None:
    """The client's own limit holds for its crawls: no learned rate replaces it."""
    async with client_for(server, rate_limit=RateLimit(200, burst=1)) as client:
        crawl = client.crawl(QUERY, max_items=1_000, concurrency=4)
        assert sum([1 async for _ in crawl]) == 1_000
        gates = client._pipeline.shared._gates
        assert [limit for _, limit in gates] == [None]


@pytest.mark.anyio
async def test_rate_limit_none_leaves_a_crawl_unpaced_and_429s_still_do_not_end_it(
    server: EmulatorServer,
) -> None:
    """`rate_limit=None`: the client's own (here no) gate; 429s are retried after a backoff."""
    server.emulator.set_rate_limit(KeyRateLimit(rate=100, burst=5))
    quick = RetryPolicy(max_retries=0, initial_backoff=0.01, max_backoff=0.05)
    async with client_for(server, retry=quick) as client:
        crawl = client.crawl(QUERY, max_items=3_000, concurrency=8, rate_limit=None)
        assert sum([1 async for _ in crawl]) == 3_000
    assert crawl.stats.rate_limited > 0


@pytest.mark.anyio
async def test_a_spent_quota_ends_a_crawl_after_max_rate_limited(server: EmulatorServer) -> None:
    """Nothing gets through: the crawl ends with RateLimitError, saying why, in about
    max_rate_limited seconds (the learned rate halves down meanwhile)."""
    server.emulator.set_rate_limit(KeyRateLimit(rate=0.001, burst=1))
    policy = RetryPolicy(max_retries=0, max_rate_limited=1.0)
    async with client_for(server, retry=policy) as client:
        await client.search(QUERY, limit=1)  # spends the one token
        started = time.monotonic()
        with pytest.raises(RateLimitError, match=r"retry\.max_rate_limited is 1 s"):
            async for _ in client.crawl(QUERY, max_items=1_000, concurrency=4):
                pass
    assert 1.0 <= time.monotonic() - started < 10.0


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])  # redis-py runs on asyncio only
async def test_a_fleet_learns_one_rate_through_redis(
    server: EmulatorServer, redis_server: RedisServer
) -> None:
    """Three clients, each with a backend of its own (three processes, as Redis sees it),
    crawl three queries under `RateLimit.auto(backend=...)` against one 40/s tier: every
    crawl exact, and after the first second the server sees no more than the tier."""
    import anyio

    server.emulator.set_rate_limit(KeyRateLimit(rate=40, burst=10))
    queries = ["chill lo-fi beats", "sad piano", "epic orchestral battle"]
    counts: dict[str, tuple[int, int]] = {}

    async def crawl(query: str) -> None:
        async with RedisBackend(redis_server.url) as backend:
            limit = RateLimit.auto(backend=backend)
            async with client_for(server, retry=RetryPolicy(max_retries=0)) as client:
                ids = [
                    t.asset_id
                    async for t in client.crawl(
                        query, max_items=4_000, concurrency=8, rate_limit=limit
                    )
                ]
        counts[query] = (len(ids), len(set(ids)))

    async with anyio.create_task_group() as group:
        for query in queries:
            group.start_soon(crawl, query)
    assert set(counts.values()) == {(4_000, 4_000)}
    answered = sorted(r.time for r in server.emulator.requests if r.status == 200)
    throttled = [r for r in server.emulator.requests if r.status == 429]
    assert throttled  # the fleet had to find the tier
    after = [t for t in answered if t > answered[0] + 1.0]
    assert len(after) <= 10 + 40 * (answered[-1] - answered[0] - 1.0) + 1
