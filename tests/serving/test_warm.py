"""`warm`: a cache loaded before the first player, with a report of what came from where."""

from __future__ import annotations

import anyio
import pytest

from audioscape_async import (
    AsyncClient,
    Client,
    InternalServerError,
    InvalidParameterError,
    SearchCache,
    WarmReport,
)
from audioscape_async._redis import RedisBackend
from audioscape_async.emulator import EmulatorServer, Faults
from tests.helpers import API_KEY
from tests.serving.cache_support import client_for, searches
from tests.serving.redis_server import RedisServer

ZONES = ["calm forest exploration", "dark cinematic boss tension", "tense stealth infiltration"]


@pytest.mark.anyio
async def test_warm_loads_every_zone_and_players_then_hit(emulator: EmulatorServer) -> None:
    """Three zones warmed: three upstream calls, and every search after is a hit."""
    async with client_for(emulator, SearchCache(ttl=60)) as client:
        report = await client.warm(ZONES)
        assert isinstance(report, WarmReport)
        assert report.ok
        assert (report.upstream, report.shared) == (3, 0)
        assert [item.query for item in report.loaded] == ZONES
        assert all(item.request_id for item in report.loaded)
        assert searches(emulator) == 3
        for zone in ZONES:
            assert (await client.search(zone)).cache_status == "hit"
        again = await client.warm(ZONES)
        assert (again.upstream, again.shared) == (0, 3)
    assert searches(emulator) == 3
    assert repr(again) == "WarmReport(loaded=3 (upstream 0, shared 3), failed=0)"


@pytest.mark.anyio
async def test_mappings_give_limit_offset_and_filters(emulator: EmulatorServer) -> None:
    """A mapping item warms exactly the search a player with those arguments makes."""
    item = {"query": "chill lo-fi beats", "limit": 5, "offset": 5, "filters": {"genres": ["pop"]}}
    async with client_for(emulator, SearchCache(ttl=60)) as client:
        report = await client.warm([item])
        assert report.loaded[0].filters == {"genres": ["pop"]}
        page = await client.search(
            "chill lo-fi beats", limit=5, offset=5, filters={"genres": ["pop"]}
        )
        assert page.cache_status == "hit"


@pytest.mark.anyio
async def test_a_failure_is_reported_and_the_rest_load(emulator: EmulatorServer) -> None:
    """One item failing (a 500, no retries) is in `failed` with its error; the others load."""
    emulator.emulator.force_fault("500")
    async with client_for(emulator, SearchCache(ttl=60), max_retries=0) as client:
        report = await client.warm(ZONES, concurrency=1)
    assert not report.ok
    assert len(report.loaded) == 2
    assert len(report.failed) == 1
    assert isinstance(report.failed[0].error, InternalServerError)
    assert sorted(item.query for item in report.loaded + report.failed) == sorted(ZONES)


@pytest.mark.anyio
async def test_concurrency_bounds_the_calls_in_flight(emulator: EmulatorServer) -> None:
    """With concurrency=2, never more than two warm-up calls are at the API at once."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.2))
    seen: list[int] = []
    async with (
        client_for(emulator, SearchCache(ttl=60)) as client,
        anyio.create_task_group() as group,
    ):
        group.start_soon(lambda: client.warm([f"zone {n}" for n in range(6)], concurrency=2))
        for _ in range(40):
            await anyio.sleep(0.02)
            seen.append(emulator.emulator.in_flight)
    assert max(seen) == 2


@pytest.mark.parametrize(
    ("queries", "parameter"),
    [
        ("calm forest", "queries"),
        ([42], "queries[0]"),
        (["ok", {"limit": 5}], "queries[1]"),
        ([{"query": "x", "size": 5}], "queries[0]"),
        ([{"query": "x", "limit": 0}], "queries[0].limit"),
        ([{"query": "   "}], "queries[0].query"),
    ],
)
def test_bad_items_are_refused_before_anything_is_sent(
    emulator: EmulatorServer, queries: object, parameter: str
) -> None:
    """Each bad item is named in an InvalidParameterError, and nothing is sent."""
    with (
        Client(emulator.api_key, base_url=emulator.url, cache=SearchCache()) as client,
        pytest.raises(InvalidParameterError) as caught,
    ):
        client.warm(queries)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter
    assert searches(emulator) == 0


def test_warm_needs_a_cache(emulator: EmulatorServer) -> None:
    """A client without a cache says so, instead of fetching pages it cannot keep."""
    with Client(emulator.api_key, base_url=emulator.url) as client:
        with pytest.raises(InvalidParameterError, match="has none"):
            client.warm(ZONES)
        with pytest.raises(InvalidParameterError, match="concurrency"):
            client.warm(ZONES, concurrency=0)


def test_the_sync_client_warms_too(emulator: EmulatorServer) -> None:
    """`Client.warm` runs the same warm-up and returns the same report."""
    with Client(emulator.api_key, base_url=emulator.url, cache=SearchCache(ttl=60)) as client:
        report = client.warm(ZONES)
        assert report.upstream == 3
        assert client.search(ZONES[1]).cache_status == "hit"


@pytest.mark.parametrize("anyio_backend", ["asyncio"])
@pytest.mark.anyio
async def test_four_processes_warming_three_zones_make_three_calls(
    emulator: EmulatorServer, redis_server: RedisServer
) -> None:
    """Four caches (as four processes) over one Redis warm three zones at once: three calls."""
    emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.2))
    reports: list[WarmReport] = []
    async with RedisBackend(redis_server.url) as backend:
        clients = [client_for(emulator, SearchCache(ttl=60, backend=backend)) for _ in range(4)]

        async def warm(client: AsyncClient) -> None:
            reports.append(await client.warm(ZONES))

        async with anyio.create_task_group() as group:
            for client in clients:
                group.start_soon(warm, client)
        for client in clients:
            await client.aclose()
    assert searches(emulator) == 3
    assert sum(report.upstream for report in reports) == 3
    assert sum(report.shared for report in reports) == 9


def test_the_report_holds_no_secret(emulator: EmulatorServer) -> None:
    """A failed item's error and the report's repr never show the API key."""
    with Client(API_KEY, base_url=emulator.url, cache=SearchCache(), max_retries=0) as client:
        report = client.warm(ZONES[:1])
    assert report.failed  # the emulator does not know this key: a 401
    assert API_KEY not in repr(report)
    assert API_KEY not in repr(report.failed[0])
