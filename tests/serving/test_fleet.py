"""Four worker processes behind one API key share one `RedisBackend` rate limit.

Each worker is a process of its own with an `AsyncClient` whose `RateLimit`
(10 requests/s, burst 20: the emulator's tier) lives in one real
`redis-server`. What is asserted comes from the emulator's own request log:
the instant each request arrived and the worker it came from (its query).
"""

from __future__ import annotations

import bisect
import json
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from audioscape_async.emulator import EmulatorServer, Faults, KeyRateLimit, RequestRecord
from tests.serving.redis_server import RedisServer

#: The emulator's tier (`audioscape serve --rate 10/20`).
RATE, BURST = 10, 20
#: The fleet's shared limit: the tier's rate, and a burst that leaves the tier some
#: headroom for the jitter of arrival times: a burst sent at once reaches the
#: emulator spread over a few hundred ms on a loaded machine.
FLEET_RATE, FLEET_BURST = 10, 15
WORKERS = 4
ROOT = Path(__file__).parents[2]

#: One worker: connects, says "ready", reads `start` and `end` (`time.monotonic()`
#: instants, which every process of a host shares) from its stdin, runs `tasks`
#: concurrent searches in a loop from `start` to `end`, and prints what they ended in.
_WORKER = """
import asyncio, json, sys, time
WARM_UP = "warm-up"
from collections import Counter
from audioscape_async import AsyncClient, AudioScapeError, RateLimit, RedisBackend

async def main(url, key, redis_url, rate, burst, worker, tasks):
    outcomes = Counter()
    fleet = RedisBackend(redis_url)
    limit = RateLimit(requests_per_second=rate, burst=burst, backend=fleet)
    async with fleet, AsyncClient(key, base_url=url, rate_limit=limit) as client:
        # Connect to Redis and to the API before the start, as a fleet does when it boots:
        # a first call also imports its wire's library, which on a loaded machine takes
        # long enough to leave a worker idle for a good part of a short run.
        await fleet.get("warm-up")
        await client.search(WARM_UP, limit=1)

        async def loop():
            while True:
                try:
                    await client.search(f"worker {worker} beats", limit=1)
                    outcomes["ok"] += 1
                except AudioScapeError as error:
                    outcomes[type(error).__name__ + ": " + str(error)[:120]] += 1
                    if client.is_closed:
                        return
                    if sum(outcomes.values()) > 5_000:  # a call that fails without waiting
                        print(json.dumps(outcomes))
                        raise SystemExit(3)

        print("ready", flush=True)
        start, end = map(float, (await asyncio.to_thread(sys.stdin.readline)).split())
        await asyncio.sleep(max(0.0, start - time.monotonic()))
        try:  # calls still waiting for their turn at the end are cancelled
            await asyncio.wait_for(
                asyncio.gather(*(loop() for _ in range(tasks))), end - time.monotonic()
            )
        except asyncio.TimeoutError:
            pass
    print(json.dumps(outcomes))

url, key, redis_url, *numbers = sys.argv[1:]
asyncio.run(main(url, key, redis_url, *map(int, numbers)))
"""


@pytest.fixture
def tier() -> Iterator[EmulatorServer]:
    """The emulator at the 10 requests/s, burst 20 tier, its 429s asking for 2 s."""
    faults = Faults(retry_after=2)
    with EmulatorServer(
        tracks=1_000, rate_limit=KeyRateLimit(rate=RATE, burst=BURST), faults=faults
    ) as server:
        yield server


def run_fleet(
    tier: EmulatorServer, redis: RedisServer, seconds: float, tasks: int
) -> tuple[list[subprocess.Popen[str]], float, float]:
    """Start the workers; once all are connected, their common run: the workers and its span.

    The run starts when every worker said it is ready (started, connected to Redis and
    the API), not after a fixed delay, which a loaded machine may overrun.
    """
    common = [sys.executable, "-c", _WORKER, tier.url, tier.api_key, redis.url]
    common += [str(FLEET_RATE), str(FLEET_BURST)]
    workers = [
        subprocess.Popen(
            [*common, str(worker), str(tasks)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=ROOT,
        )
        for worker in range(WORKERS)
    ]
    for worker in workers:
        assert worker.stdout is not None
        assert worker.stdout.readline() == "ready\n"  # or it failed: its error is on stderr
    start = time.monotonic() + 0.2
    end = start + seconds
    for worker in workers:
        assert worker.stdin is not None
        worker.stdin.write(f"{start!r} {end!r}\n")
        worker.stdin.flush()
    return workers, start, end


#: The query of each worker's first call, made before the start (see `_WORKER`).
WARM_UP = "warm-up"


def during_run(tier: EmulatorServer) -> list[RequestRecord]:
    """The emulator's request log without the workers' warm-up calls."""
    return [record for record in tier.emulator.requests if record.query != WARM_UP]


def results(workers: list[subprocess.Popen[str]]) -> list[Counter[str]]:
    """Wait for every worker; what each worker's calls ended in."""
    outcomes = []
    for worker in workers:
        output, _ = worker.communicate(timeout=60)
        assert worker.returncode == 0, output
        outcomes.append(Counter(json.loads(output)))
    return outcomes


def largest_window(times: list[float], width: float = 1.0) -> int:
    """The most of `times` in any half-open window of `width` seconds."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)), default=0
    )


def test_four_workers_never_exceed_the_tier(
    tier: EmulatorServer, redis_server: RedisServer
) -> None:
    """Four hammering processes together stay within rate + burst in every one-second window."""
    seconds = 3.0
    workers, start, end = run_fleet(tier, redis_server, seconds, tasks=8)
    outcomes = results(workers)
    records = during_run(tier)
    arrivals = [record.time for record in records]
    window = largest_window(arrivals)
    by_worker = Counter(record.query for record in records)
    print(f"\n{len(records)} requests in {seconds:g} s, largest one-second window {window}, "
          f"per worker {dict(by_worker)}, outcomes {outcomes}")  # fmt: skip
    assert window <= RATE + BURST
    # Together at most burst + rate * T, as one client would send: not four times that.
    assert len(records) <= FLEET_BURST + FLEET_RATE * seconds + 2
    assert {record.status for record in records} == {200}
    # Every worker took part, and the limit, not idleness, held them back.
    assert len(by_worker) == WORKERS
    assert len(records) >= FLEET_BURST + FLEET_RATE * (seconds - 1)
    assert min(arrivals) >= start - 0.05
    assert max(arrivals) <= end + 0.5


def test_a_429_pauses_every_worker(tier: EmulatorServer, redis_server: RedisServer) -> None:
    """A 429 with Retry-After: 2 that one worker meets holds the other workers too."""
    workers, start, _end = run_fleet(tier, redis_server, 4.0, tasks=4)
    time.sleep(max(0.0, start + 1.0 - time.monotonic()))
    tier.emulator.force_fault("429")
    outcomes = results(workers)
    records = during_run(tier)
    refused = [record for record in records if "429" in record.faults]
    assert len(refused) == 1
    paused_at = refused[0].time
    after = sorted(record.time - paused_at for record in records if record.time > paused_at)
    print(f"\n{len(records)} requests, 429 at +{paused_at - start:.2f} s; next arrivals after it "
          f"(s): {[round(t, 2) for t in after[:8]]}; outcomes {outcomes}")  # fmt: skip
    # Requests already on the wire when the 429 came arrive within its round trip;
    # then nobody sends until the pause has passed.
    quiet = [t for t in after if 0.2 < t < 1.9]
    assert quiet == []
    resumed = Counter(record.query for record in records if record.time >= paused_at + 1.9)
    assert len(resumed) == WORKERS
    assert all(outcome["ok"] > 0 for outcome in outcomes)
