"""(8) The crawl benchmark of issue 4: a 20,000-track crawl from the emulator in another process.

`EmulatorProcess(tracks=40_000)`, query ``"upbeat summer vibes"`` (its
``meta.total`` is over 20,000), ``max_items=20_000``: the SDK's streaming
crawl, ``async with client.crawl(...)`` (tracks in order, de-duplicated, with
statistics), at concurrency 1 (sequential), 2, 4, 8 and 16 on httpx's own
transport, against a hand-written raw httpx crawler with 8 workers
(`_crawlers`) over the same server in the same run; interleaved rounds,
medians of the seconds per crawl. The SDK at concurrency 8 on its default
transport is shown too.

On loopback both processes are CPU-bound on two shared cores, so concurrency
has nothing to overlap. A second run (8c, 8d, 8e) gives every answer 10 ms of
latency (the emulator's "latency" fault, an awaited sleep), the round trip of
a real API, where a crawl spends its time waiting and concurrency is what
pays; there the SDK at 8 meets the textbook hand-written crawler,
``asyncio.gather`` behind a semaphore of 8, on the same transport: raw httpx
(8d) and raw aiohttp (8e). "SDK c8 steps" is the plain ``async for`` over a
crawl, which fetches in steps (each waits for its slowest page).

The speed-up targets of 8 and 8a (3.0 at 0 ms) are out of reach on loopback
whatever the client does: one server process and one client process, each
single-threaded, take at best max(server, client) CPU per page at
concurrency 8 against server + client at 1, a speed-up of at most 2. Their
notes give that bound from the CPU each process spent.

(8f) The SDK's crawl against the faster of the two hand-written aiohttp
crawlers (`_crawlers.crawl_aiohttp`, `gather_aiohttp`) in the run, all at
concurrency 8 and 0 ms latency, 20,000 tracks, on the fixed-answer server
(`_server`) rather than the emulator: the emulator spends about as much CPU per
page as the client, on a shared 2-core machine, so both crawlers would wait on
it and the ratio would hide the client's cost; the fixed-answer server spends
a fraction of a client's CPU per page (about 0.05 ms), so the crawl's own
cost shows. Wall time per crawl,
interleaved rounds, medians, and the CPU each process spent per page.
"""

from __future__ import annotations

import os
import random
import statistics
import time
from collections.abc import Awaitable, Callable

import httpx

from audioscape_async import AsyncClient

from . import _crawlers
from ._common import Result, Settings, cpu_seconds, medians, optional, run_async, spread
from ._server import API_KEY, ServerProcess

NAME = "crawl"
QUERY = "upbeat summer vibes"
LEVELS = (1, 2, 4, 8, 16)
#: Seconds of latency per answer in the run that stands for a real network.
LATENCY = 0.010
#: Seconds per crawl, and (server, client) CPU seconds per crawl, of every variant.
Timed = tuple[dict[str, list[float]], dict[str, list[tuple[float, float]]]]


async def _sdk_crawl(client: AsyncClient, concurrency: int, max_items: int) -> int:
    count = 0
    async with client.crawl(
        QUERY, page_size=100, max_items=max_items, concurrency=concurrency
    ) as crawl:
        async for _ in crawl:
            count += 1
    return count


async def _sdk_steps(client: AsyncClient, concurrency: int, max_items: int) -> int:
    crawl = client.crawl(QUERY, page_size=100, max_items=max_items, concurrency=concurrency)
    count = 0
    async for _ in crawl:
        count += 1
    return count


async def _sdk_batches(client: AsyncClient, concurrency: int, max_items: int) -> int:
    count = 0
    async with client.crawl(
        QUERY, page_size=100, max_items=max_items, concurrency=concurrency
    ) as crawl:
        async for batch in crawl.batches():
            count += len(batch)
    return count


async def _measure_latency(
    url: str, api_key: str, max_items: int, settings: Settings
) -> dict[str, list[float]]:
    """Sequential vs concurrency 8 vs hand-written crawlers at 8, every answer delayed."""
    import aiohttp

    headers = {"x-api-key": api_key, "content-type": "application/json"}
    search = url + "/search"
    async with (
        AsyncClient(api_key, base_url=url, transport="httpx") as sdk,
        AsyncClient(api_key, base_url=url, transport="aiohttp") as sdk_aiohttp,
        httpx.AsyncClient(timeout=30.0) as raw,
        aiohttp.ClientSession() as session,
    ):
        variants: dict[str, Callable[[], Awaitable[int]]] = {
            "SDK c1": lambda: _sdk_crawl(sdk, 1, max_items),
            "SDK c8": lambda: _sdk_crawl(sdk, 8, max_items),
            "SDK c8 steps": lambda: _sdk_steps(sdk, 8, max_items),
            "gather httpx c8": lambda: _crawlers.gather_httpx(
                raw, search, headers, QUERY, 8, max_items
            ),
            "SDK c8 (aiohttp)": lambda: _sdk_crawl(sdk_aiohttp, 8, max_items),
            "gather aiohttp c8": lambda: _crawlers.gather_aiohttp(
                session, search, headers, QUERY, 8, max_items
            ),
        }
        for name, call in variants.items():
            got = await call()
            assert got == max_items, (name, got)
        samples: dict[str, list[float]] = {name: [] for name in variants}
        names = list(variants)
        for _ in range(settings.pick(7, 1)):
            random.shuffle(names)
            for name in names:
                start = time.perf_counter()
                await variants[name]()
                samples[name].append(time.perf_counter() - start)
        return samples


async def _measure(
    url: str, api_key: str, max_items: int, settings: Settings, server_pid: int
) -> Timed:
    headers = {"x-api-key": api_key, "content-type": "application/json"}
    async with (
        AsyncClient(api_key, base_url=url, transport="httpx") as sdk,
        AsyncClient(api_key, base_url=url) as sdk_default,
        httpx.AsyncClient(timeout=30.0) as raw,
    ):
        variants: dict[str, Callable[[], Awaitable[int]]] = {
            f"SDK c{n}": (lambda n=n: _sdk_crawl(sdk, n, max_items))  # type: ignore[misc]
            for n in LEVELS
        }
        variants["SDK c1 (default transport)"] = lambda: _sdk_crawl(sdk_default, 1, max_items)
        variants["SDK c8 (default transport)"] = lambda: _sdk_crawl(sdk_default, 8, max_items)
        variants["raw httpx c8"] = lambda: _crawlers.crawl_httpx(
            raw, url + "/search", headers, QUERY, 8, max_items
        )
        return await _rounds(variants, max_items, settings.pick(5, 1), server_pid)


async def _rounds(
    variants: dict[str, Callable[[], Awaitable[int]]],
    max_items: int,
    rounds: int,
    server_pid: int,
) -> Timed:
    """Seconds per crawl and (server, client) CPU seconds per crawl, interleaved rounds."""
    for name, call in variants.items():  # warm up; the emulator ranks the query once
        got = await call()
        assert got == max_items, (name, got)
    samples: dict[str, list[float]] = {name: [] for name in variants}
    cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
    names = list(variants)
    for _ in range(rounds):
        random.shuffle(names)
        for name in names:
            server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
            start = time.perf_counter()
            await variants[name]()
            samples[name].append(time.perf_counter() - start)
            cpu[name].append(
                (cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu)
            )
    return samples, cpu


async def _measure_fixed(url: str, max_items: int, settings: Settings, server_pid: int) -> Timed:
    """The SDK's crawl on its default transport vs the hand-written aiohttp crawlers, at 8."""
    import aiohttp

    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    search = url + "/search"
    async with (
        AsyncClient(API_KEY, base_url=url) as sdk,
        aiohttp.ClientSession() as session,
    ):
        variants: dict[str, Callable[[], Awaitable[int]]] = {
            FIXED_SDK: lambda: _sdk_crawl(sdk, 8, max_items),
            "SDK crawl c8, page by page (batches())": lambda: _sdk_batches(sdk, 8, max_items),
            FIXED_WORKERS: lambda: _crawlers.crawl_aiohttp(
                session, search, headers, QUERY, 8, max_items
            ),
            FIXED_GATHER: lambda: _crawlers.gather_aiohttp(
                session, search, headers, QUERY, 8, max_items
            ),
        }
        return await _rounds(variants, max_items, settings.pick(9, 1), server_pid)


FIXED_SDK = "SDK crawl c8 (default transport), track by track"
FIXED_WORKERS = "aiohttp workers c8 (crawl_aiohttp)"
FIXED_GATHER = "gather aiohttp c8 (gather_aiohttp)"


def _per_page(
    cpu: dict[str, list[tuple[float, float]]], pages: float
) -> dict[str, tuple[float, float]]:
    """Median (server, client) CPU ms per page of every variant."""
    return {
        name: (
            statistics.median(s for s, _ in pairs) / pages * 1e3,
            statistics.median(c for _, c in pairs) / pages * 1e3,
        )
        for name, pairs in cpu.items()
    }


def _speed_up_bound(per_page_c1: tuple[float, float], per_page_c8: tuple[float, float]) -> str:
    """The note that says how far concurrency can speed a crawl up, from the CPU spent."""
    (s1, c1), (s8, c8) = per_page_c1, per_page_c8
    return (
        "bound from the CPU each process spent per page: sequential, the emulator and the "
        f"client take turns, about s1 + c1 = {s1:.2f} + {c1:.2f} ms a page; at concurrency 8 a "
        "single-threaded process cannot go faster than its own CPU, max(s8, c8) = "
        f"max({s8:.2f}, {c8:.2f}) ms a page; so on an idle machine the speed-up is at most "
        f"{(s1 + c1) / max(s8, c8):.2f}, and (s + c) / max(s, c) <= 2 whatever the client costs: "
        "3.0 at 0 ms latency is out of reach on loopback; with latency to overlap it is met "
        "(row 8c)"
    )


def run(settings: Settings) -> list[Result]:
    from audioscape_async.emulator import EmulatorProcess, Faults

    fixed_items = settings.pick(20_000, 2_000)
    fixed: Timed | None = None
    if optional("aiohttp") is not None:
        with ServerProcess(total=fixed_items) as server:
            pid = server._process.pid if server._process is not None else 0
            fixed = run_async(_measure_fixed(server.url, fixed_items, settings, pid))

    tracks, max_items = settings.pick(40_000, 4_000), settings.pick(20_000, 2_000)
    with EmulatorProcess(tracks=tracks) as emulator:
        assert emulator.pid is not None
        samples, cpu = run_async(
            _measure(emulator.url, emulator.api_key, max_items, settings, emulator.pid)
        )
    with EmulatorProcess(
        tracks=tracks, faults=Faults({"latency": 1.0}, latency=LATENCY)
    ) as slow_emulator:
        slow = run_async(
            _measure_latency(slow_emulator.url, slow_emulator.api_key, max_items, settings)
        )
    slow_ms = {name: value * 1e3 for name, value in medians(slow).items()}
    ms = {name: value * 1e3 for name, value in medians(samples).items()}
    pages = max_items / 100
    rates = ", ".join(f"{name}: {pages / (value / 1e3):,.0f}" for name, value in ms.items())
    per_page = _per_page(cpu, pages)
    cpu_note = ", ".join(
        f"{name}: {server:.2f} / {client:.2f}" for name, (server, client) in per_page.items()
    )
    results = [
        Result(
            benchmark=f"8. crawl {max_items:,} tracks (emulator): speed-up at 8, httpx transport",
            variants=ms,
            unit="ms/crawl",
            ratio_label="SDK c1 time / SDK c8 time (httpx transport)",
            ratio=ms["SDK c1"] / ms["SDK c8"],
            target=">= 3.0",
            notes=[
                f"pages/s: {rates}",
                f"CPU ms per page, emulator / client process: {cpu_note}",
                f"{os.cpu_count()} cores: the emulator and the client each need most of one",
                _speed_up_bound(per_page["SDK c1"], per_page["SDK c8"]),
            ],
        ),
        Result(
            benchmark=f"8a. crawl {max_items:,} tracks (emulator): speed-up at 8, default"
            " transport",
            variants={
                "SDK c1 (default transport)": ms["SDK c1 (default transport)"],
                "SDK c8 (default transport)": ms["SDK c8 (default transport)"],
            },
            unit="ms/crawl",
            ratio_label="SDK c1 time / SDK c8 time (default transport)",
            ratio=ms["SDK c1 (default transport)"] / ms["SDK c8 (default transport)"],
            target=">= 3.0",
            notes=[
                _speed_up_bound(
                    per_page["SDK c1 (default transport)"], per_page["SDK c8 (default transport)"]
                )
            ],
        ),
        Result(
            benchmark=f"8c. crawl {max_items:,} tracks, {LATENCY * 1e3:g} ms latency per"
            " answer: speed-up at 8",
            variants={"SDK c1": slow_ms["SDK c1"], "SDK c8": slow_ms["SDK c8"]},
            unit="ms/crawl",
            ratio_label="SDK c1 time / SDK c8 time (httpx transport)",
            ratio=slow_ms["SDK c1"] / slow_ms["SDK c8"],
            target=">= 3.0",
            notes=["the emulator's latency fault on every answer stands for a real network"],
        ),
        Result(
            benchmark=f"8d. crawl {max_items:,} tracks, {LATENCY * 1e3:g} ms latency per"
            " answer: vs gather + semaphore, httpx",
            variants={
                name: slow_ms[name] for name in ("SDK c8", "SDK c8 steps", "gather httpx c8")
            },
            unit="ms/crawl",
            ratio_label="SDK c8 time / gather httpx c8 time",
            ratio=slow_ms["SDK c8"] / slow_ms["gather httpx c8"],
            target="<= 1.05",
            notes=["both on httpx's own transport; the SDK streams its window in order"],
        ),
        Result(
            benchmark=f"8e. crawl {max_items:,} tracks, {LATENCY * 1e3:g} ms latency per"
            " answer: vs gather + semaphore, aiohttp",
            variants={name: slow_ms[name] for name in ("SDK c8 (aiohttp)", "gather aiohttp c8")},
            unit="ms/crawl",
            ratio_label="SDK c8 (aiohttp transport) time / gather aiohttp c8 time",
            ratio=slow_ms["SDK c8 (aiohttp)"] / slow_ms["gather aiohttp c8"],
            target="<= 1.05",
        ),
        Result(
            benchmark=f"8b. crawl {max_items:,} tracks (emulator): vs raw httpx",
            variants={"SDK c8": ms["SDK c8"], "raw httpx c8": ms["raw httpx c8"]},
            unit="ms/crawl",
            ratio_label="SDK c8 time / raw httpx c8 time",
            ratio=ms["SDK c8"] / ms["raw httpx c8"],
            target="<= 1.2",
        ),
    ]
    if fixed is not None:
        results.append(_fixed_row(fixed, fixed_items))
    return results


def _fixed_row(fixed: Timed, max_items: int) -> Result:
    samples, cpu = fixed
    ms = {name: value * 1e3 for name, value in medians(samples).items()}
    pages = max_items / 100
    per_page = _per_page(cpu, pages)
    # The yardstick is the faster of the two hand-written crawlers in this run.
    raw = min((FIXED_WORKERS, FIXED_GATHER), key=ms.__getitem__)
    return Result(
        benchmark=f"8f. crawl {max_items:,} tracks, 0 ms latency, concurrency 8: SDK (default"
        " transport) vs hand-written aiohttp",
        variants=ms,
        unit="ms/crawl",
        ratio_label="SDK crawl c8 time / the faster hand-written aiohttp crawler's",
        ratio=ms[FIXED_SDK] / ms[raw],
        target="<= 2.0",
        notes=[
            "fixed-answer server in another process (a fraction of a client's CPU per page, "
            "below, so the clients' cost shows; the emulator would hold both to its own pace); "
            f"medians of {len(samples[FIXED_SDK])} interleaved rounds",
            "the SDK: async with client.crawl(...) then async for over the tracks (in order, "
            "de-duplicated, typed); the workers: orjson dicts, kept by offset",
            "CPU ms per page, server / client process: "
            + ", ".join(f"{n}: {s:.3f} / {c:.3f}" for n, (s, c) in per_page.items()),
            "pages/s: " + ", ".join(f"{n}: {pages / (v / 1e3):,.0f}" for n, v in ms.items()),
            f"yardstick: {raw}; SDK / it per round (p10-p90): "
            + spread(samples[FIXED_SDK], samples[raw]),
        ],
    )
