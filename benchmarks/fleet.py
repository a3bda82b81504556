"""14. Players never wait (issue 20, point 4): a fleet of workers behind one Redis cache.

Four worker processes (multiprocessing, spawn), each with one `AsyncClient`
whose `SearchCache(ttl=2, stale_while_revalidate=10)` lives in one
redis-server this benchmark starts, against the emulator in a process of its
own at a 10 requests/s, burst 20 tier whose every answer takes 300 ms (the
"latency" fault at rate 1). 1,000 players arrive at random over 12 s, each
entering one of 3 zones: one `client.search(zone)` in a worker, timed there
(no web server, whose CPU on 2 shared cores would dominate). The workers
warm the zones at start, all at once (`client.warm`). The fleet itself is
tests/serving/fleet_scenario.py, which the fleet test runs too.

Variants, interleaved over 3 runs: **full** (warm-up and stale-while-
revalidate), **no warm-up**, **no SWR** (``ttl=2`` only). Variants this build
cannot run (no `stale_while_revalidate`, no `warm`) are skipped with a note;
if none is left, the plain cache (neither) runs alone and is judged.

Measured, and judged on the full variant:

- players served (the call raised nothing), in the worst run;
- the players' p50 and p99 waits, median of the runs;
- upstream calls per query per TTL window, from the emulator's own log: the
  most calls for one zone in any 2-second window, sliding (no alignment flatters
  it), over the whole run from the warm-up on, in the worst run: 1 is the target,
  since a zone cannot need more than one answer per TTL (the notes add the
  calls per zone over the TTL windows the run spans, which stays at or under 1);
- the oldest page served: served at, minus its request's arrival in the log plus
  the 300 ms the emulator holds every answer, in the worst run; at most TTL + S.
"""

from __future__ import annotations

import math
import random
import shutil
import statistics
import time
from collections import Counter
from typing import Any

import attrs

from ._common import Result, Settings

NAME = "fleet"
TTL, SWR = 2.0, 10.0
#: Seconds the emulator holds every answer.
LATENCY = 0.3
RATE, BURST = 10, 20


@attrs.frozen
class _Variant:
    warm: bool
    stale_while_revalidate: float


VARIANTS = {
    "full": _Variant(warm=True, stale_while_revalidate=SWR),
    "no warm-up": _Variant(warm=False, stale_while_revalidate=SWR),
    "no SWR": _Variant(warm=True, stale_while_revalidate=0.0),
}
#: What runs when this build has neither feature.
PLAIN = {"plain cache (this build)": _Variant(warm=False, stale_while_revalidate=0.0)}


def _available() -> tuple[dict[str, _Variant], list[str]]:
    """The variants this build can run, and a note for each one it cannot."""
    from tests.serving.fleet_scenario import supports_stale_while_revalidate, supports_warm

    swr, warm = supports_stale_while_revalidate(), supports_warm()
    chosen: dict[str, _Variant] = {}
    notes = []
    for name, variant in VARIANTS.items():
        missing = [
            feature
            for feature, needed, present in (
                ("SearchCache(stale_while_revalidate=)", variant.stale_while_revalidate, swr),
                ("AsyncClient.warm", variant.warm, warm),
            )
            if needed and not present
        ]
        if missing:
            notes.append(f"{name}: skipped, this build has no {' and no '.join(missing)}")
        else:
            chosen[name] = variant
    return chosen or PLAIN, notes


def _one_run(
    emulator: Any,
    redis: Any,
    variant: _Variant,
    players: int,
    seconds: float,
    workers: int,
    seed: int,
) -> dict[str, float]:
    """One fleet run from a clean slate (an empty log, a full bucket, an empty Redis)."""
    from tests.serving import fleet_scenario as scenario

    emulator.reset()
    redis.flush()
    fleet = scenario.Fleet(
        url=emulator.url,
        api_key=emulator.api_key,
        redis_url=redis.url,
        ttl=TTL,
        stale_while_revalidate=variant.stale_while_revalidate,
        warm=variant.warm,
    )
    run = scenario.run_fleet(
        fleet, scenario.schedule(players, seconds, workers, scenario.ZONES, seed)
    )
    records = emulator.requests()["requests"]
    calls = scenario.zone_calls(records, scenario.ZONES)
    every = [t for times in calls.values() for t in times]
    # The TTL windows the run spans, from its first zone call (a warm-up or a cold miss)
    # to its last player: a zone needs at most one answer in each.
    windows = math.ceil((run.end - min(every)) / TTL) if every else 1
    statuses = Counter(player.cache_status or "error" for player in run.players)
    return {
        "served": run.served / players,
        "p50 ms": run.wait_percentile(50) * 1e3,
        "p99 ms": run.wait_percentile(99) * 1e3,
        "calls in a window": max(
            scenario.most_calls_in_a_window(times, TTL) for times in calls.values()
        ),
        "calls per window": len(every) / len(scenario.ZONES) / windows,
        "warm-up calls": sum(t < run.start for times in calls.values() for t in times),
        "warmed upstream": run.warmed["upstream"],
        "warmed shared": run.warmed["shared"],
        "warm failures": run.warmed["failed"],
        "oldest s": scenario.oldest_page(run.players, records, LATENCY),
        **{f"status {status}": count for status, count in statuses.items()},
    }


def _figures(
    settings: Settings, variants: dict[str, _Variant]
) -> dict[str, list[dict[str, float]]]:
    from audioscape_async.emulator import EmulatorProcess, Faults, KeyRateLimit
    from tests.serving.redis_server import RedisServer

    players = settings.pick(1_000, 30)
    seconds = 12.0 if not settings.smoke else 1.5
    workers = settings.pick(4, 2)
    runs = settings.pick(3, 1)
    figures: dict[str, list[dict[str, float]]] = {name: [] for name in variants}
    upstream = EmulatorProcess(
        tracks=2_000,
        rate_limit=KeyRateLimit(rate=RATE, burst=BURST),
        faults=Faults({"latency": 1.0}, latency=LATENCY),
    )
    with upstream as emulator, RedisServer() as redis:
        for number in range(runs):
            names = list(variants)
            random.shuffle(names)
            for name in names:
                figures[name].append(
                    _one_run(emulator, redis, variants[name], players, seconds, workers, number)
                )
    return figures


def run(settings: Settings) -> list[Result]:
    if shutil.which("redis-server") is None:
        print("  note: redis-server is not installed; the fleet benchmark is skipped")
        return []
    started = time.perf_counter()
    variants, skipped = _available()
    figures = _figures(settings, variants)
    print(f"  fleet benchmark: {time.perf_counter() - started:.0f} s")
    judged = "full" if "full" in variants else next(iter(variants))
    players = settings.pick(1_000, 30)
    workers = settings.pick(4, 2)
    runs = len(figures[judged])
    setup = (
        f"{workers} worker processes sharing one redis-server, {players:,} players over "
        f"{12 if not settings.smoke else 1.5:g} s into 3 zones, ttl={TTL:g} s, "
        f"stale_while_revalidate={SWR:g} s where on; emulator at {RATE}/s burst {BURST}, "
        f"every answer held {LATENCY * 1e3:.0f} ms; {runs} run(s), variants interleaved"
    )

    def per_run(measure: str, digits: int) -> str:
        return "; ".join(
            f"{name} " + ", ".join(f"{one[measure]:.{digits}f}" for one in samples)
            for name, samples in figures.items()
        )

    def row(letter: str, what: str, measure: str, unit: str, worst: Any, target: str) -> Result:
        values = [one[measure] for one in figures[judged]]
        judged_by = "median of the runs" if worst is statistics.median else "the worst run"
        return Result(
            benchmark=f"14{letter}. fleet of {workers}, {players:,} players: {what}",
            variants={
                name: statistics.median(one[measure] for one in s) for name, s in figures.items()
            },
            unit=unit,
            ratio_label=f"{judged}, {judged_by}",
            ratio=float(worst(values)),
            target=target,
            notes=[f"per run: {per_run(measure, 3 if unit in ('', 's') else 1)}"],
        )

    rows = [
        row("a", "share of players served", "served", "", min, ">= 1.0"),
        row("b", "p50 wait", "p50 ms", "ms", statistics.median, "< 5"),
        row("c", "p99 wait", "p99 ms", "ms", statistics.median, "< 50"),
        row("d", "upstream calls per query per TTL window", "calls in a window", "", max, "<= 1"),
        row("e", "oldest page served", "oldest s", "s", max, f"<= {TTL + SWR:g}"),
    ]
    rows[0].notes[:0] = [setup, *skipped]
    warm = figures[judged][0]
    rows[3].notes.append(
        "calls per query / TTL windows spanned (from the first zone call to the last player): "
        + per_run("calls per window", 2)
    )
    rows[3].notes.append(
        f"{judged}, first run: the warm-up made {warm['warm-up calls']:.0f} upstream call(s); "
        f"the workers' reports: {warm['warmed upstream']:.0f} loaded upstream, "
        f"{warm['warmed shared']:.0f} shared, {warm['warm failures']:.0f} failed"
    )
    statuses = sorted(
        {k for s in figures.values() for one in s for k in one if k.startswith("status ")}
    )
    rows[1].notes.append(
        "pages by cache_status, first run: "
        + "; ".join(
            f"{name} " + ", ".join(f"{k[7:]} {s[0].get(k, 0):.0f}" for k in statuses)
            for name, s in figures.items()
        )
    )
    return rows
