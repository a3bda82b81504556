"""Issue 20's fleet: worker processes serving players from one Redis-backed cache.

`run_fleet` starts `workers` processes (multiprocessing, spawn), each with one
`AsyncClient` whose `SearchCache` lives in one `RedisBackend`, all against one
upstream (the emulator in a process of its own). Each worker first makes one
search of a query of its own (`CONNECT`: its wire and its Redis pool open, as a
fleet's do when it boots), says it is ready, warms the zones' queries when asked
(`client.warm`, all workers at once), then serves its share of the players: each
player is one `client.search(zone)` at its arrival time, timed in the worker
with `time.perf_counter`. No web server: a player's wait is the SDK call.

What is judged comes from two places: the players' records (served or not, the
wait, the page's `request_id` and `cache_status`, when it was served) and the
upstream's own request log. `most_calls_in_a_window` counts a zone's upstream
calls in every TTL-wide window (sliding, so no alignment of windows flatters
it); `oldest_page` finds each served page's request in the log and measures its
age. Every process reads `time.monotonic()`, which on Linux is one clock for
the whole host, the emulator's log included.

Used by tests/serving/test_fleet_swr.py and benchmarks/fleet.py.
"""

from __future__ import annotations

import asyncio
import bisect
import inspect
import math
import multiprocessing
import random
import statistics
import time
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from multiprocessing.connection import Connection, wait
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from audioscape_async import WarmReport

#: The zones' queries: one cache key each.
ZONES = ("dark cinematic boss tension", "sunny beach steel drums", "quiet library piano")
#: The first word of each worker's own first query (see the module docstring).
CONNECT = "connect"
#: How long a worker may take to start, connect, warm or report before the run fails.
STEP_TIMEOUT = 60.0


def supports_stale_while_revalidate() -> bool:
    """Whether this build's `SearchCache` takes `stale_while_revalidate`."""
    from audioscape_async import SearchCache

    return "stale_while_revalidate" in inspect.signature(SearchCache).parameters


def supports_warm() -> bool:
    """Whether this build's `AsyncClient` has `warm`."""
    from audioscape_async import AsyncClient

    return hasattr(AsyncClient, "warm")


@attrs.frozen
class Fleet:
    """What every worker shares: the upstream, the Redis server and the cache's settings."""

    url: str
    api_key: str = attrs.field(repr=False)
    redis_url: str
    ttl: float
    stale_while_revalidate: float = 0.0  # 0: not passed to the cache
    warm: bool = False
    zones: tuple[str, ...] = ZONES


@attrs.frozen
class Player:
    """What one player got: the zone, the wait (s), when it was served, and the page's marks."""

    zone: str
    wait: float
    served_at: float  # time.monotonic() when the call returned
    cache_status: str | None = None
    request_id: str | None = None
    error: str | None = None  # the AudioScapeError, for a player not served


@attrs.frozen
class FleetRun:
    """One run: its start and end (`time.monotonic()`), what the warm-ups said, the players."""

    start: float
    end: float
    warmed: Counter[str]  # "upstream", "shared", "failed": summed over the workers
    players: list[Player]

    @property
    def served(self) -> int:
        return sum(player.error is None for player in self.players)

    def wait_percentile(self, percent: int) -> float:
        """A percentile (1..99) of the waits of every player, served or not."""
        waits = sorted(player.wait for player in self.players)
        if len(waits) < 2:
            return waits[0]
        return statistics.quantiles(waits, n=100, method="inclusive")[percent - 1]


def schedule(
    players: int, seconds: float, workers: int, zones: Sequence[str], seed: int
) -> list[list[tuple[float, str]]]:
    """Each worker's players as (arrival offset in s, zone): uniform arrivals over `seconds`,
    random zones, dealt round-robin in arrival order so every worker gets an even share."""
    rng = random.Random(seed)
    arrivals = sorted(rng.uniform(0, seconds) for _ in range(players))
    shares: list[list[tuple[float, str]]] = [[] for _ in range(workers)]
    for index, offset in enumerate(arrivals):
        shares[index % workers].append((offset, rng.choice(zones)))
    return shares


def run_fleet(fleet: Fleet, shares: Sequence[Sequence[tuple[float, str]]]) -> FleetRun:
    """Run one worker per share of players; return when every worker has reported.

    The steps are in lockstep: every worker connected, then every worker warms at once
    (if `fleet.warm`), then the players start at one instant shortly after.
    """
    context = multiprocessing.get_context("spawn")
    pipes = [context.Pipe() for _ in shares]
    processes = [
        context.Process(
            target=_worker, args=(fleet, number, list(share), child), name=f"fleet-worker-{number}"
        )
        for number, (share, (_, child)) in enumerate(zip(shares, pipes, strict=True))
    ]
    for process in processes:
        process.start()
    for _, child in pipes:
        child.close()  # the worker's end is the worker's
    ours = [parent for parent, _ in pipes]
    try:
        _gather(ours, processes, "ready")
        for conn in ours:
            conn.send("warm")
        warmed: Counter[str] = Counter()
        for summary in _gather(ours, processes, "warmed"):
            warmed.update(summary)
        start = time.monotonic() + 0.2
        for conn in ours:
            conn.send(start)
        seconds = max((offset for share in shares for offset, _ in share), default=0.0)
        players = [
            player
            for report in _gather(ours, processes, "players", seconds + STEP_TIMEOUT)
            for player in report
        ]
        for process in processes:
            process.join(STEP_TIMEOUT)
            if process.exitcode != 0:
                raise RuntimeError(f"{process.name} exited with {process.exitcode}")
    finally:
        for process in processes:
            if process.is_alive():
                process.kill()
                process.join()
    end = max((player.served_at for player in players), default=start)
    return FleetRun(start=start, end=end, warmed=warmed, players=players)


def _gather(
    conns: list[Connection],
    processes: list[Any],
    step: str,
    timeout: float = STEP_TIMEOUT,
) -> list[Any]:
    """One message from each worker, or a clear error naming the worker that did not send it."""
    answers = []
    deadline = time.monotonic() + timeout
    for conn, process in zip(conns, processes, strict=True):
        # Wake when the answer comes or the worker dies, whichever is first.
        wait([conn, process.sentinel], max(0.0, deadline - time.monotonic()))
        if not conn.poll():
            process.join(1.0)  # a worker that died: its exit code
            raise RuntimeError(
                f"{process.name} did not report {step!r} (exit code {process.exitcode}; "
                "its error, if any, is on stderr)"
            )
        answers.append(conn.recv())
    return answers


def _worker(fleet: Fleet, number: int, share: list[tuple[float, str]], conn: Connection) -> None:
    """A worker process: see the module docstring."""
    try:
        asyncio.run(_serve(fleet, number, share, conn))
    finally:
        conn.close()


async def _serve(
    fleet: Fleet, number: int, share: list[tuple[float, str]], conn: Connection
) -> None:
    import anyio

    from audioscape_async import AsyncClient, AudioScapeError, RedisBackend, SearchCache

    options: dict[str, Any] = {}
    if fleet.stale_while_revalidate:
        options["stale_while_revalidate"] = fleet.stale_while_revalidate
    backend = RedisBackend(fleet.redis_url)
    cache = SearchCache(ttl=fleet.ttl, backend=backend, **options)
    players: list[Player] = []

    async def player(client: AsyncClient, zone: str) -> None:
        began = time.perf_counter()
        try:
            page = await client.search(zone)
        except AudioScapeError as error:
            wait = time.perf_counter() - began
            players.append(Player(zone, wait, time.monotonic(), error=repr(error)))
        else:
            wait = time.perf_counter() - began
            players.append(Player(zone, wait, time.monotonic(), page.cache_status, page.request_id))

    async with backend, AsyncClient(fleet.api_key, base_url=fleet.url, cache=cache) as client:
        await client.search(f"{CONNECT} {number}", limit=1)
        conn.send("ready")
        await anyio.to_thread.run_sync(conn.recv)
        warmed: Counter[str] = Counter()
        if fleet.warm:
            warmed = warm_summary(await client.warm(fleet.zones))
        conn.send(warmed)
        start = await anyio.to_thread.run_sync(conn.recv)
        async with anyio.create_task_group() as group:
            for offset, zone in share:
                await anyio.sleep(max(0.0, start + offset - time.monotonic()))
                group.start_soon(player, client, zone)
    conn.send(players)


def warm_summary(report: WarmReport) -> Counter[str]:
    """A `WarmReport` in counts: pages loaded from "upstream", found "shared", and "failed"."""
    return Counter(upstream=report.upstream, shared=report.shared, failed=len(report.failed))


# ------------------------------------------------------------------ the upstream's log


def zone_calls(
    records: Iterable[Mapping[str, Any]], zones: Sequence[str]
) -> dict[str, list[float]]:
    """The arrival times of each zone's requests in the emulator's log (the admin JSON)."""
    calls: dict[str, list[float]] = {zone: [] for zone in zones}
    for record in records:
        if record.get("query") in calls:
            calls[record["query"]].append(record["time"])
    return {zone: sorted(times) for zone, times in calls.items()}


def most_calls_in_a_window(times: Sequence[float], width: float) -> int:
    """The most of `times` in any half-open window of `width` seconds, wherever it starts."""
    ordered = sorted(times)
    return max(
        (bisect.bisect_left(ordered, t + width) - i for i, t in enumerate(ordered)), default=0
    )


def oldest_page(
    players: Iterable[Player], records: Iterable[Mapping[str, Any]], latency: float
) -> float:
    """The age (s) of the oldest page served: served at - when the upstream answered it.

    The upstream's answer is taken at its request's arrival plus the `latency` it holds
    every answer for (no answer leaves sooner). A served page whose request is not in
    the log is infinitely old: nothing vouches for it.
    """
    answered = {record["request_id"]: record["time"] + latency for record in records}
    ages = [
        player.served_at - answered.get(player.request_id or "", -math.inf)
        for player in players
        if player.error is None
    ]
    return max(ages, default=0.0)
