"""(11) The player scenario of issue 10: 1,000 players enter the zones of
examples/game_zone_music.py within 2.5 s, against the emulator at the
10 requests/s, burst 20 tier (`audioscape serve --rate 10/20`).

The example app runs under uvicorn (a thread of this process, lifespan on),
the emulator in another process; players are one GET each through one
`httpx.AsyncClient` with at most 32 in flight. Two variants of the same app:

- **cache**: as shipped, with its `SearchCache` and `CircuitBreaker`;
- **no cache**: the same app with both set to None (and so no warm-up), each
  zone entry one API call.

Reported: players served (a 200, music), the requests the emulator logged,
and the players' p50 and p99 latency.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from audioscape_async.emulator import EmulatorProcess, KeyRateLimit

from ._common import Result, Settings, run_async

NAME = "players"

ROOT = Path(__file__).parent.parent


@contextlib.contextmanager
def _environment(emulator: EmulatorProcess) -> Iterator[None]:
    saved = {name: os.environ.get(name) for name in ("AUDIOSCAPE_BASE_URL", "AUDIOSCAPE_API_KEY")}
    os.environ["AUDIOSCAPE_BASE_URL"] = emulator.url
    os.environ["AUDIOSCAPE_API_KEY"] = emulator.api_key
    os.environ.pop("AUDIOSCAPE_REDIS_URL", None)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _without_cache(module: Any) -> Iterator[None]:
    # The app builds its client in its lifespan from these names: make them build nothing,
    # and warm nothing (a warm-up loads a cache; this app has none).
    from audioscape_async import AsyncClient, WarmReport

    class Unwarmed(AsyncClient):
        async def warm(self, queries: Any, **_: Any) -> WarmReport:
            return WarmReport(loaded=(), failed=())

    saved = module.SearchCache, module.CircuitBreaker, module.AsyncClient
    module.SearchCache = module.CircuitBreaker = lambda **_: None
    module.AsyncClient = Unwarmed
    try:
        yield
    finally:
        module.SearchCache, module.CircuitBreaker, module.AsyncClient = saved


def _scenario(emulator: EmulatorProcess, players: int, cached: bool) -> dict[str, float]:
    sys.path.insert(0, str(ROOT))
    from examples import game_zone_music
    from tests.serving.game_scenario import AppServer, enter_zones

    emulator.reset()
    with contextlib.ExitStack() as stack:
        stack.enter_context(_environment(emulator))
        if not cached:
            stack.enter_context(_without_cache(game_zone_music))
        server = stack.enter_context(AppServer(game_zone_music.app))
        outcome = run_async(enter_zones(server.url, players, spread=players / 400))
    return {
        "players served": outcome.served,
        "API requests": int(emulator.requests()["count"]),
        "p50 ms": outcome.percentile(50) * 1e3,
        "p99 ms": outcome.percentile(99) * 1e3,
    }


def run(settings: Settings) -> list[Result]:
    players = settings.pick(1_000, 100)
    with EmulatorProcess(tracks=2_000, rate_limit=KeyRateLimit(rate=10, burst=20)) as emulator:
        figures = {
            "cache": _scenario(emulator, players, cached=True),
            "no cache": _scenario(emulator, players, cached=False),
        }
    variants = {
        f"{variant}: {name}": value
        for variant, values in figures.items()
        for name, value in values.items()
    }
    served = figures["cache"]["players served"]
    return [
        Result(
            benchmark=f"11. player scenario, {players:,} players, 10/20 tier",
            variants=variants,
            unit="",
            ratio_label="share of players served, with the cache",
            ratio=served / players,
            target=">= 1.0",
            notes=[
                "examples/game_zone_music.py under uvicorn, emulator in another process at "
                "--rate 10/20; players arrive evenly over "
                f"{players / 400:g} s, at most 32 in flight",
                f"without the cache {figures['no cache']['players served']:.0f} of {players:,} "
                "players got music",
            ],
        )
    ]
