"""Issue 20's fleet, bounded: worker processes behind one Redis cache, judged by the upstream's log.

Each test runs tests/serving/fleet_scenario.py's fleet (worker processes, each
with one `AsyncClient` on asyncio, as redis-py's client needs, whose
`SearchCache` lives in one real redis-server) against the emulator in a
process of its own, every answer held `LATENCY` seconds. Only counts are
asserted (calls in the emulator's own request log, players served, the age
of pages), never how long a player waited: the machine may be slow.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

import pytest

from audioscape_async.emulator import EmulatorProcess, Faults, KeyRateLimit
from tests.serving import fleet_scenario as scenario
from tests.serving.redis_server import RedisServer

#: Seconds the emulator holds every answer: long enough that workers starting "at once"
#: on a loaded machine are all inside one call's flight.
LATENCY = 0.5
TTL, SWR = 1.0, 5.0
WORKERS = 4
#: One upstream call for each zone.
ONCE_EACH = dict.fromkeys(scenario.ZONES, 1)


@pytest.fixture(scope="module")
def upstream() -> Iterator[EmulatorProcess]:
    """The emulator in a process of its own at the 10/s, burst 20 tier, every answer slow."""
    with EmulatorProcess(
        tracks=1_000,
        rate_limit=KeyRateLimit(rate=10, burst=20),
        faults=Faults({"latency": 1.0}, latency=LATENCY),
    ) as emulator:
        yield emulator


@pytest.fixture
def fresh(upstream: EmulatorProcess) -> EmulatorProcess:
    """The module's emulator with an empty request log and a full bucket."""
    upstream.reset()
    return upstream


def fleet(
    upstream: EmulatorProcess,
    redis: RedisServer,
    *,
    stale_while_revalidate: float = 0.0,
    warm: bool = False,
) -> scenario.Fleet:
    """The fleet of these tests: ttl=1 s, against this upstream and this Redis."""
    return scenario.Fleet(
        url=upstream.url,
        api_key=upstream.api_key,
        redis_url=redis.url,
        ttl=TTL,
        stale_while_revalidate=stale_while_revalidate,
        warm=warm,
    )


def test_a_warm_fleet_with_swr_calls_upstream_once_per_query_per_ttl(
    fresh: EmulatorProcess, redis_server: RedisServer
) -> None:
    """200 players over 4 s: all served, each zone fetched once per TTL window, no page too old."""
    settings = fleet(fresh, redis_server, stale_while_revalidate=SWR, warm=True)
    run = scenario.run_fleet(settings, scenario.schedule(200, 4.0, WORKERS, scenario.ZONES, 7))
    records = fresh.requests()["requests"]
    calls = scenario.zone_calls(records, scenario.ZONES)
    statuses = Counter(player.cache_status for player in run.players)
    during = {zone: sum(t >= run.start for t in times) for zone, times in calls.items()}
    print(f"\nstatuses {dict(statuses)}; calls during the run {during}")
    assert [player for player in run.players if player.error is not None] == []
    most = {zone: scenario.most_calls_in_a_window(times, TTL) for zone, times in calls.items()}
    assert most == ONCE_EACH
    # The entries were refreshed as they went stale, not left to age for the whole S.
    assert all(count >= 2 for count in during.values()), during
    assert scenario.oldest_page(run.players, records, LATENCY) <= TTL + SWR
    # After the warm-up nobody waited for the upstream: every page was a hit or stale.
    assert set(statuses) <= {"hit", "stale"}
    assert statuses["stale"] > 0


def test_four_workers_warming_three_zones_make_three_upstream_calls(
    fresh: EmulatorProcess, redis_server: RedisServer
) -> None:
    """Warm-ups of the same 3 queries in 4 processes at once: 3 upstream calls, 9 shared."""
    settings = fleet(fresh, redis_server, stale_while_revalidate=SWR, warm=True)
    run = scenario.run_fleet(settings, [[] for _ in range(WORKERS)])
    calls = scenario.zone_calls(fresh.requests()["requests"], scenario.ZONES)
    assert {zone: len(times) for zone, times in calls.items()} == ONCE_EACH
    assert run.warmed == Counter({"upstream": 3, "shared": 9})


def test_a_fleet_wide_miss_makes_one_upstream_call_per_key(
    fresh: EmulatorProcess, redis_server: RedisServer
) -> None:
    """4 processes missing the same 3 cold keys at one instant: 1 upstream call per key."""
    settings = fleet(fresh, redis_server)
    shares = [[(0.0, zone) for zone in scenario.ZONES] for _ in range(WORKERS)]
    run = scenario.run_fleet(settings, shares)
    calls = scenario.zone_calls(fresh.requests()["requests"], scenario.ZONES)
    assert run.served == WORKERS * len(scenario.ZONES)
    assert {zone: len(times) for zone, times in calls.items()} == ONCE_EACH


def test_calls_are_counted_in_sliding_ttl_windows() -> None:
    """Two calls 1 s apart are two in one 2 s window, though fixed windows would split them."""
    assert scenario.most_calls_in_a_window([1.5, 2.5], 2.0) == 2
    assert scenario.most_calls_in_a_window([0.0, 2.0, 4.0], 2.0) == 1  # half-open windows
    assert scenario.most_calls_in_a_window([], 2.0) == 0


def test_a_page_the_upstream_never_logged_is_infinitely_old() -> None:
    """A page is as old as its request in the log allows; one missing from the log fails it."""
    records = [{"request_id": "a", "time": 10.0}]
    logged = scenario.Player("zone", 0.001, 13.5, "stale", "a")
    assert scenario.oldest_page([logged], records, 0.5) == pytest.approx(3.0)
    unknown = scenario.Player("zone", 0.001, 13.5, "hit", "b")
    assert scenario.oldest_page([logged, unknown], records, 0.5) == float("inf")
