"""The game example as a fleet: uvicorn with two worker processes, one redis-server, and the
emulator. Every zone is warmed, fetched and refreshed once for the whole fleet, and the music
plays on, stale, when the API goes down."""

from __future__ import annotations

import itertools
import os
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from audioscape_async.emulator import EmulatorServer, Faults
from tests.serving.game_scenario import ZONES
from tests.serving.redis_server import RedisServer, free_port

ROOT = Path(__file__).parents[2]
#: The example's cache TTL in this test: short, so the run spans several.
TTL = 3.0
WORKERS = 2


@pytest.fixture
def api() -> Iterator[EmulatorServer]:
    """The emulator, answering in 100 ms (a real API's round trip), its request log counting."""
    with EmulatorServer(faults=Faults({"latency": 1.0}, latency=0.1)) as server:
        yield server


@pytest.fixture
def fleet(api: EmulatorServer, redis_server: RedisServer) -> Iterator[str]:
    """examples/game_zone_music.py under `uvicorn --workers 2`, sharing one Redis; its URL."""
    port = free_port()
    env = {
        **os.environ,
        "AUDIOSCAPE_BASE_URL": api.url,
        "AUDIOSCAPE_API_KEY": api.api_key,
        "AUDIOSCAPE_REDIS_URL": redis_server.url,
        "GAME_CACHE_TTL": str(TTL),
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    command = [
        *(sys.executable, "-m", "uvicorn", "examples.game_zone_music:app"),
        *("--host", "127.0.0.1", "--port", str(port), "--workers", str(WORKERS)),
    ]
    server = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    assert server.stderr is not None
    try:
        started = 0
        deadline = time.monotonic() + 60
        while started < WORKERS:  # each worker's lifespan (its warm-up) is over
            line = server.stderr.readline()
            assert line, f"uvicorn exited with {server.wait(5)}"
            assert time.monotonic() < deadline, "the workers did not start"
            started += "Application startup complete" in line
        yield f"http://127.0.0.1:{port}"
    finally:
        server.terminate()  # uvicorn's own SIGTERM handler, whatever the launcher ignores
        try:
            server.wait(15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(5)
        server.stderr.close()


def enter(url: str, zone: str) -> tuple[int, str | None]:
    """One player entering `zone`, on a connection of its own (so both workers serve)."""
    answer = httpx.get(f"{url}/zones/{zone}/music", timeout=10)
    return answer.status_code, answer.json().get("cache")


def test_the_fleet_calls_once_per_zone_per_ttl_and_plays_on_when_the_api_stops(
    fleet: str, api: EmulatorServer
) -> None:
    """Two workers warm three zones with three calls; over several TTLs no zone is fetched
    twice within one TTL; with the API gone, every player still gets (stale) music."""
    queries = {record.query for record in api.emulator.requests}
    assert len(api.emulator.requests) == 3, "the warm-up: one call per zone for the fleet"
    assert len(queries) == 3
    statuses: list[int] = []
    caches: set[str | None] = set()
    ended = time.monotonic() + 2.5 * TTL
    while time.monotonic() < ended:
        for zone in ZONES:
            status, cache = enter(fleet, zone)
            statuses.append(status)
            caches.add(cache)
        time.sleep(0.02)
    assert set(statuses) == {200}
    assert caches <= {"hit", "stale"}  # nobody waited for the API
    calls: dict[str | None, list[float]] = defaultdict(list)
    for record in api.emulator.requests:
        calls[record.query].append(record.time)
    for query, times in calls.items():
        assert len(times) >= 2, f"{query!r} was never refreshed"
        gaps = [later - earlier for earlier, later in itertools.pairwise(times)]
        assert min(gaps) >= TTL * 0.9, f"{query!r} fetched twice within one TTL: {gaps}"
    api.stop()  # the API goes away
    time.sleep(TTL)  # and every page expires
    after = [enter(fleet, zone) for zone in ZONES for _ in range(4)]
    assert {status for status, _ in after} == {200}
    assert {cache for _, cache in after} == {"stale"}
