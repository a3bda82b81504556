"""The player scenario of issue 10: a game backend served by uvicorn, players entering zones.

`AppServer` serves an ASGI app (lifespan on) under uvicorn in a background
thread on a free 127.0.0.1 port. `enter_zones` sends `players` players, one
GET each, to the app's three zones, arriving evenly over `spread` seconds with
at most `concurrency` in flight, and returns what each player got. Used by
tests/serving/test_game_scenario.py and benchmarks/players.py.
"""

from __future__ import annotations

import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from types import TracebackType
from typing import Any

import anyio
import attrs
import httpx
import uvicorn

from audioscape_async.emulator._server import bind_socket

ZONES = ("boss-arena", "beach", "library")


class AppServer:
    """An ASGI app under uvicorn in a thread, with its lifespan; `url` says where."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self._sock = bind_socket("127.0.0.1", 0)
        self.port: int = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(
            app, ws="none", lifespan="on", log_config=None, log_level="warning", access_log=False
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, daemon=True
        )

    def start(self) -> AppServer:
        """Serve; return once the app's lifespan has started."""
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the app did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        """Stop serving (the lifespan ends) and wait for the thread."""
        self._server.should_exit = True
        self._thread.join(10)
        self._sock.close()

    def __enter__(self) -> AppServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


@attrs.frozen
class Visit:
    """What one player got: the app's status, the cache's word, when and how long."""

    status: int
    cache: str | None
    started: float  # time.monotonic()
    latency: float  # seconds


@attrs.frozen
class Outcome:
    """Every player's visit, with the figures the scenario reports."""

    visits: list[Visit]

    @property
    def served(self) -> int:
        """Players who got music (a 200)."""
        return sum(visit.status == 200 for visit in self.visits)

    def statuses(self) -> Counter[int]:
        return Counter(visit.status for visit in self.visits)

    def cache(self) -> Counter[str | None]:
        return Counter(visit.cache for visit in self.visits if visit.status == 200)

    def percentile(self, q: int) -> float:
        """The q-th percentile of the players' latency, in seconds."""
        latencies = [visit.latency for visit in self.visits]
        return statistics.quantiles(latencies, n=100, method="inclusive")[q - 1]


async def enter_zones(
    url: str,
    players: int = 1_000,
    *,
    spread: float = 2.0,
    concurrency: int = 32,
    on_visit: Callable[[int], None] | None = None,
) -> Outcome:
    """`players` players enter the zones (in turn) over `spread` seconds; what each got.

    `on_visit`, when given, is called with the number of visits ended so far as each
    one ends, so a caller can act on the run's progress.
    """
    limiter = anyio.CapacityLimiter(concurrency)
    visits: list[Visit] = []
    start = time.monotonic()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=30) as http:

        async def player(number: int) -> None:
            await anyio.sleep(max(0.0, start + spread * number / players - time.monotonic()))
            async with limiter:
                began = time.monotonic()
                answer = await http.get(f"/zones/{ZONES[number % len(ZONES)]}/music")
                latency = time.monotonic() - began
            cache = answer.json().get("cache") if answer.status_code == 200 else None
            visits.append(Visit(answer.status_code, cache, began, latency))
            if on_visit is not None:
                on_visit(len(visits))

        async with anyio.create_task_group() as group:
            for number in range(players):
                group.start_soon(player, number)
    return Outcome(visits)
