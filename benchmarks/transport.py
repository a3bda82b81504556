"""(7) Transport under concurrency: the SDK's concurrency-8 crawl on aiohttp vs raw aiohttp.

Against the fixed-answer server in another process (synthetic 100-track pages,
so the client's cost shows), crawls of ``meta.total`` tracks: the SDK's
`iter_pages(concurrency=8)` with ``transport="aiohttp"`` vs a hand-written
aiohttp crawler with 8 workers (`_crawlers`), pages per second, interleaved
rounds, medians. For scale: raw httpx at 1 and 8, raw aiohttp at 1, httpx over
the stock httpx-aiohttp transport at 8, the SDK at 8 on httpx's own transport.
"""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from audioscape_async import AsyncClient

from . import _crawlers
from ._common import QUERY, Result, Settings, cpu_seconds, medians, optional, run_async
from ._server import API_KEY, ServerProcess

NAME = "transport"


async def _sdk_pages(client: AsyncClient, concurrency: int) -> int:
    tracks = 0
    async for page in client.iter_pages(QUERY, page_size=100, concurrency=concurrency):
        tracks += len(page.tracks)
    return tracks


async def _measure(
    url: str, total: int, settings: Settings, server_pid: int
) -> tuple[dict[str, list[float]], dict[str, list[tuple[float, float]]]]:
    aiohttp = optional("aiohttp")
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    search = url + "/search"
    variants: dict[str, Callable[[], Awaitable[int]]] = {}
    closers: list[Callable[[], Awaitable[Any]]] = []
    raw_httpx = httpx.AsyncClient()
    closers.append(raw_httpx.aclose)
    sdk_httpx = AsyncClient(API_KEY, base_url=url, transport="httpx")
    closers.append(sdk_httpx.aclose)
    for n in (1, 8):
        variants[f"raw httpx c{n}"] = lambda n=n: _crawlers.crawl_httpx(  # type: ignore[misc]
            raw_httpx, search, headers, QUERY, n
        )
    variants["SDK httpx transport c8"] = lambda: _sdk_pages(sdk_httpx, 8)
    if aiohttp is not None and optional("httpx_aiohttp") is not None:
        from httpx_aiohttp import AiohttpTransport

        session = aiohttp.ClientSession()
        closers.append(session.close)
        stock = httpx.AsyncClient(transport=AiohttpTransport())
        closers.append(stock.aclose)
        sdk_aiohttp = AsyncClient(API_KEY, base_url=url, transport="aiohttp")
        closers.append(sdk_aiohttp.aclose)
        for n in (1, 8):
            variants[f"raw aiohttp c{n}"] = lambda n=n: _crawlers.crawl_aiohttp(  # type: ignore[misc]
                session, search, headers, QUERY, n
            )
        variants["httpx + stock httpx-aiohttp c8"] = lambda: _crawlers.crawl_httpx(
            stock, search, headers, QUERY, 8
        )
        variants["SDK aiohttp transport c8"] = lambda: _sdk_pages(sdk_aiohttp, 8)
    try:
        for call in variants.values():
            assert await call() == total
        samples: dict[str, list[float]] = {name: [] for name in variants}
        cpu: dict[str, list[tuple[float, float]]] = {name: [] for name in variants}
        names = list(variants)
        pages = total / 100
        for _ in range(settings.pick(9, 1)):
            random.shuffle(names)
            for name in names:
                server_cpu, client_cpu = cpu_seconds(server_pid), time.process_time()
                start = time.perf_counter()
                await variants[name]()
                samples[name].append(pages / (time.perf_counter() - start))
                cpu[name].append(
                    (cpu_seconds(server_pid) - server_cpu, time.process_time() - client_cpu)
                )
        return samples, cpu
    finally:
        for close in closers:
            await close()


def run(settings: Settings) -> list[Result]:
    total = settings.pick(30_000, 2_000)
    with ServerProcess(total=total) as server:
        pid = server._process.pid if server._process is not None else 0
        samples, cpu = run_async(_measure(server.url, total, settings, pid))
    rates = medians(samples)
    pages = total / 100
    per_page = {
        name: (
            statistics.median(s for s, _ in pairs) / pages * 1e3,
            statistics.median(c for _, c in pairs) / pages * 1e3,
        )
        for name, pairs in cpu.items()
    }
    have_aiohttp = "raw aiohttp c8" in rates
    return [
        Result(
            benchmark=f"7. transport, {total // 100:,}-page crawl at concurrency 8",
            variants=rates,
            unit="pages/s",
            ratio_label="SDK (aiohttp transport) / raw aiohttp",
            ratio=(rates["SDK aiohttp transport c8"] / rates["raw aiohttp c8"])
            if have_aiohttp
            else None,
            target=">= 0.7",
            notes=[
                "fixed-answer server in another process; 100-track pages",
                f"SDK (httpx transport) / raw httpx at 8: "
                f"{rates['SDK httpx transport c8'] / rates['raw httpx c8']:.2f}",
                "CPU ms per page, server / client process: "
                + ", ".join(f"{n}: {s:.3f} / {c:.3f}" for n, (s, c) in per_page.items()),
                "not bound by the machine: the server spends a fraction of a client's CPU per "
                "page (above; /proc counts it in 10 ms ticks), so each crawler's rate is its own "
                "CPU per page: the target needs the SDK's CPU per page within 1/0.7 = 1.43x "
                "raw aiohttp's",
            ],
        )
    ]
