"""(1) CPU per call: `AsyncClient.search(limit=100)` vs the raw client of its transport + orjson.

Against the fixed-answer server in another process, one connection,
sequential calls on asyncio, the CPU time of this (the client) process,
`time.process_time`, so the server and other processes on a shared machine
are left out. Two rows, each the SDK on one transport against the same
transport used by hand (a POST, then `orjson.loads` of the body: untyped, no
retries):

- 1: the SDK on its default transport (aiohttp when the extra is installed,
  as here) vs a raw `aiohttp.ClientSession`;
- 1a: the SDK with ``transport="httpx"`` vs a raw `httpx.AsyncClient`.

Interleaved rounds, medians; the notes give the p10-p90 spread of the
per-round ratio and the wall-clock figures.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import httpx
import orjson

from audioscape_async import AsyncClient

from ._common import (
    QUERY,
    Result,
    Settings,
    interleave_async_cpu,
    medians,
    optional,
    run_async,
    spread,
)
from ._server import API_KEY, ServerProcess

NAME = "overhead"
RAW_HTTPX = "raw httpx + orjson"
RAW_AIOHTTP = "raw aiohttp + orjson"
SDK_HTTPX = "SDK (httpx transport)"
SDK_DEFAULT = "SDK (default transport)"


async def _measure(
    url: str, settings: Settings
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    aiohttp = optional("aiohttp")
    body = orjson.dumps({"query": QUERY, "limit": 100, "offset": 0})
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    search_url = url + "/search"
    closers: list[Callable[[], Awaitable[Any]]] = []
    sdk = AsyncClient(API_KEY, base_url=url, transport="httpx")
    sdk_auto = AsyncClient(API_KEY, base_url=url)
    raw = httpx.AsyncClient()
    closers += [sdk.aclose, sdk_auto.aclose, raw.aclose]

    async def raw_httpx() -> object:
        response = await raw.post(search_url, content=body, headers=headers)
        return orjson.loads(response.content)

    variants: dict[str, Callable[[], Awaitable[object]]] = {
        RAW_HTTPX: raw_httpx,
        SDK_HTTPX: lambda: sdk.search(QUERY, limit=100),
        SDK_DEFAULT: lambda: sdk_auto.search(QUERY, limit=100),
    }
    if aiohttp is not None:
        session = aiohttp.ClientSession()
        closers.append(session.close)

        async def raw_aiohttp() -> object:
            async with session.post(search_url, data=body, headers=headers) as response:
                return orjson.loads(await response.read())

        variants[RAW_AIOHTTP] = raw_aiohttp
    try:
        for call in variants.values():  # warm up: connections, imports, caches
            for _ in range(50):
                await call()
        return await interleave_async_cpu(
            variants, rounds=settings.pick(30, 3), batch=settings.pick(200, 20)
        )
    finally:
        for close in closers:
            await close()


def run(settings: Settings) -> list[Result]:
    with ServerProcess(total=10_000) as server:
        cpu, wall = run_async(_measure(server.url, settings))
    us = {name: value * 1e6 for name, value in medians(cpu).items()}
    wall_us = {name: value * 1e6 for name, value in medians(wall).items()}
    shared = "asyncio, one connection, sequential calls; fixed-answer server in another process"
    rounds = len(cpu[SDK_HTTPX])
    results = []
    if RAW_AIOHTTP in us:
        results.append(
            Result(
                benchmark="1. CPU per call, search(limit=100), default transport",
                variants={SDK_DEFAULT: us[SDK_DEFAULT], RAW_AIOHTTP: us[RAW_AIOHTTP]},
                unit="µs CPU/call",
                ratio_label="SDK (default transport) / raw aiohttp CPU",
                ratio=us[SDK_DEFAULT] / us[RAW_AIOHTTP],
                target="<= 1.5",
                notes=[
                    f"CPU time of the client process (time.process_time), medians of {rounds} "
                    f"interleaved rounds; {shared}; default transport = aiohttp (extra installed)",
                    "SDK / raw aiohttp per round (p10-p90): "
                    + spread(cpu[SDK_DEFAULT], cpu[RAW_AIOHTTP]),
                    f"wall clock: SDK {wall_us[SDK_DEFAULT]:.0f} µs, raw aiohttp "
                    f"{wall_us[RAW_AIOHTTP]:.0f} µs per call, ratio "
                    f"{wall_us[SDK_DEFAULT] / wall_us[RAW_AIOHTTP]:.2f}",
                ],
            )
        )
    results.append(
        Result(
            benchmark="1a. CPU per call, search(limit=100), httpx transport",
            variants={SDK_HTTPX: us[SDK_HTTPX], RAW_HTTPX: us[RAW_HTTPX]},
            unit="µs CPU/call",
            ratio_label="SDK (httpx transport) / raw httpx CPU",
            ratio=us[SDK_HTTPX] / us[RAW_HTTPX],
            target="<= 1.05",
            notes=[
                f"CPU time of the client process, medians of {rounds} interleaved rounds; {shared}",
                "SDK / raw httpx per round (p10-p90): " + spread(cpu[SDK_HTTPX], cpu[RAW_HTTPX]),
                f"wall clock: SDK {wall_us[SDK_HTTPX]:.0f} µs, raw httpx "
                f"{wall_us[RAW_HTTPX]:.0f} µs per call, ratio "
                f"{wall_us[SDK_HTTPX] / wall_us[RAW_HTTPX]:.2f}",
            ],
        )
    )
    return results
