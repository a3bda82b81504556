"""(5) 1,000 concurrent searches through one client vs the raw httpx equivalent.

One `asyncio.gather` of 1,000 `search(limit=100)` calls through one
`AsyncClient` (httpx's default pool: 100 connections, and the SDK's 30 s
timeout), against one `httpx.AsyncClient` doing the same POSTs plus
`orjson.loads` with the same pool and timeout. Throughput (searches/s) per
burst, interleaved bursts, medians; every error is counted (a pool timeout is
an error) and must be zero. The SDK on its default transport is shown too.

(5a, 5b) Sustained load at 8 and at 64 concurrent: N workers on one client,
each looping over its share of a fixed number of searches (so a run at 64 does
the same work as a run at 8, with 64 requests in flight), searches/s per run,
interleaved runs, medians, and the CPU time of this process per search. The
target: throughput at 64 not below 8, for the SDK on each transport (one row
each); raw httpx (whose own pool loses at 64) and raw aiohttp for reference.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Awaitable, Callable

import httpx
import orjson

from audioscape_async import AsyncClient

from ._common import QUERY, Result, Settings, medians, optional, run_async, spread
from ._server import API_KEY, ServerProcess

NAME = "concurrency"
#: The two levels of the sustained runs (5a, 5b): what a crawl uses, and many more.
SUSTAINED = (8, 64)


async def _burst(call: Callable[[], Awaitable[object]], n: int) -> tuple[float, int]:
    start = time.perf_counter()
    outcomes = await asyncio.gather(*(call() for _ in range(n)), return_exceptions=True)
    elapsed = time.perf_counter() - start
    errors = [o for o in outcomes if isinstance(o, BaseException)]
    if errors:
        print(f"    {len(errors)} errors, e.g. {type(errors[0]).__name__}: {errors[0]}")
    return n / elapsed, len(errors)


async def _measure(url: str, settings: Settings) -> tuple[dict[str, list[float]], int]:
    n = settings.pick(1_000, 100)
    body = orjson.dumps({"query": QUERY, "limit": 100, "offset": 0})
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    async with (
        AsyncClient(API_KEY, base_url=url, transport="httpx") as sdk,
        AsyncClient(API_KEY, base_url=url) as sdk_auto,
        httpx.AsyncClient(timeout=30.0) as raw,
    ):

        async def raw_call() -> object:
            response = await raw.post(url + "/search", content=body, headers=headers)
            response.raise_for_status()
            return orjson.loads(response.content)

        variants: dict[str, Callable[[], Awaitable[object]]] = {
            "raw httpx + orjson": raw_call,
            "SDK (httpx transport)": lambda: sdk.search(QUERY, limit=100),
            "SDK (default transport)": lambda: sdk_auto.search(QUERY, limit=100),
        }
        for call in variants.values():
            await _burst(call, min(n, 200))
        samples: dict[str, list[float]] = {name: [] for name in variants}
        errors = 0
        names = list(variants)
        for _ in range(settings.pick(3, 1)):
            random.shuffle(names)
            for name in names:
                rate, failed = await _burst(variants[name], n)
                samples[name].append(rate)
                errors += failed
        return samples, errors


async def _workers(call: Callable[[], Awaitable[object]], workers: int, total: int) -> None:
    async def worker(count: int) -> None:
        for _ in range(count):
            await call()

    share, extra = divmod(total, workers)
    await asyncio.gather(*(worker(share + (i < extra)) for i in range(workers)))


async def _measure_sustained(
    url: str, settings: Settings
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    """Searches/s and CPU seconds per search of every client at every level, interleaved."""
    aiohttp = optional("aiohttp")
    total = settings.pick(1_024, 128)
    body = orjson.dumps({"query": QUERY, "limit": 100, "offset": 0})
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    search = url + "/search"
    closers: list[Callable[[], Awaitable[object]]] = []
    sdk = AsyncClient(API_KEY, base_url=url, transport="httpx")
    sdk_auto = AsyncClient(API_KEY, base_url=url)
    raw = httpx.AsyncClient(timeout=30.0)
    closers += [sdk.aclose, sdk_auto.aclose, raw.aclose]

    async def raw_httpx() -> object:
        response = await raw.post(search, content=body, headers=headers)
        response.raise_for_status()
        return orjson.loads(response.content)

    calls: dict[str, Callable[[], Awaitable[object]]] = {
        "SDK (default transport)": lambda: sdk_auto.search(QUERY, limit=100),
        "SDK (httpx transport)": lambda: sdk.search(QUERY, limit=100),
        "raw httpx + orjson": raw_httpx,
    }
    if aiohttp is not None:
        session = aiohttp.ClientSession()
        closers.append(session.close)

        async def raw_aiohttp() -> object:
            async with session.post(search, data=body, headers=headers) as response:
                response.raise_for_status()
                return orjson.loads(await response.read())

        calls["raw aiohttp + orjson"] = raw_aiohttp
    runs = {f"{name} at {n}": (call, n) for name, call in calls.items() for n in SUSTAINED}
    try:
        for call, n in runs.values():  # warm up: open every level's connections
            await _workers(call, n, max(4 * n, total // 8))
        rates: dict[str, list[float]] = {name: [] for name in runs}
        cpu: dict[str, list[float]] = {name: [] for name in runs}
        names = list(runs)
        for _ in range(settings.pick(5, 1)):
            random.shuffle(names)
            for name in names:
                call, n = runs[name]
                gc.collect()
                start_cpu, start = time.process_time(), time.perf_counter()
                await _workers(call, n, total)
                rates[name].append(total / (time.perf_counter() - start))
                cpu[name].append((time.process_time() - start_cpu) / total)
        return rates, cpu
    finally:
        for close in closers:
            await close()


def _sustained_row(
    label: str,
    sdk: str,
    raw: str,
    samples: dict[str, list[float]],
    cpu_us: dict[str, float],
    why: str = "",
) -> Result:
    rates = medians(samples)
    low, high = SUSTAINED
    shown = [f"{name} at {n}" for name in (sdk, raw) for n in SUSTAINED]
    shown = [name for name in shown if name in rates]
    notes = [
        "one client per variant, N workers each looping over its share of a fixed count of "
        "search(limit=100); fixed-answer server in another process; medians of interleaved runs",
        "µs CPU of the client process per search: "
        + ", ".join(f"{name}: {cpu_us[name]:.0f}" for name in shown),
        f"{sdk} {high} / {low} per round (p10-p90): "
        + spread(samples[f"{sdk} at {high}"], samples[f"{sdk} at {low}"]),
    ]
    if why:
        notes.append(why)
    if f"{raw} at {high}" in rates:
        notes.append(
            f"{raw} {high} / {low}: {rates[f'{raw} at {high}'] / rates[f'{raw} at {low}']:.2f}"
        )
    return Result(
        benchmark=f"5{label}. {high} vs {low} concurrent searches, sustained, {sdk[5:-1]}",
        variants={name: rates[name] for name in shown},
        unit="searches/s",
        ratio_label=f"{sdk} throughput at {high} / at {low}",
        ratio=rates[f"{sdk} at {high}"] / rates[f"{sdk} at {low}"],
        target=">= 1.0",
        notes=notes,
    )


def run(settings: Settings) -> list[Result]:
    with ServerProcess() as server:
        samples, errors = run_async(_measure(server.url, settings))
        sustained, sustained_cpu = run_async(_measure_sustained(server.url, settings))
    rates = medians(samples)
    cpu_us = {name: value * 1e6 for name, value in medians(sustained_cpu).items()}
    ratio = rates["SDK (httpx transport)"] / rates["raw httpx + orjson"]
    return [
        Result(
            benchmark=f"5. {settings.pick(1_000, 100):,} concurrent searches, one client",
            variants=rates,
            unit="searches/s",
            ratio_label="SDK (httpx transport) / raw httpx throughput",
            ratio=ratio,
            target=">= 0.87",
            notes=[
                f"errors (pool timeouts included) in all bursts: {errors} (must be 0)",
                "target 0.87 = 1/1.15, the per-call budget (the issue sets no number)",
                f"SDK on its default transport / raw httpx: "
                f"{rates['SDK (default transport)'] / rates['raw httpx + orjson']:.2f}",
            ],
            extra={"errors": errors},
        ),
        _sustained_row("a", "SDK (default transport)", "raw aiohttp + orjson", sustained, cpu_us),
        _sustained_row(
            "b",
            "SDK (httpx transport)",
            "raw httpx + orjson",
            sustained,
            cpu_us,
            "httpcore's pool checks every connection (is_idle, has_expired, a socket "
            "readability poll) each time a request enters or leaves it: the CPU per search "
            "grows with the connections open",
        ),
    ]
