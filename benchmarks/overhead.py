"""(1) Per-call overhead: `AsyncClient.search(limit=100)` vs a raw httpx POST plus `orjson.loads`.

Both run on asyncio against the same fixed-answer server in another process,
over httpx's own transport (``transport="httpx"``), so the ratio is the SDK's
own cost: argument checks, the body, the retry and rate gate, the typed
decode. The SDK on its default transport (aiohttp when installed) is shown too.
"""

from __future__ import annotations

import httpx
import orjson

from audioscape_async import AsyncClient

from ._common import QUERY, Result, Settings, interleave_async, medians, run_async
from ._server import API_KEY, ServerProcess

NAME = "overhead"


async def _measure(url: str, settings: Settings) -> dict[str, list[float]]:
    body = orjson.dumps({"query": QUERY, "limit": 100, "offset": 0})
    headers = {"x-api-key": API_KEY, "content-type": "application/json"}
    async with (
        AsyncClient(API_KEY, base_url=url, transport="httpx") as sdk,
        AsyncClient(API_KEY, base_url=url) as sdk_auto,
        httpx.AsyncClient() as raw,
    ):
        search_url = url + "/search"

        async def raw_call() -> object:
            response = await raw.post(search_url, content=body, headers=headers)
            return orjson.loads(response.content)

        variants = {
            "raw httpx + orjson": raw_call,
            "SDK (httpx transport)": lambda: sdk.search(QUERY, limit=100),
            "SDK (default transport)": lambda: sdk_auto.search(QUERY, limit=100),
        }
        for call in variants.values():  # warm up: connections, imports, caches
            for _ in range(20):
                await call()
        return await interleave_async(
            variants, rounds=settings.pick(25, 3), batch=settings.pick(200, 20)
        )


def run(settings: Settings) -> list[Result]:
    with ServerProcess(total=10_000) as server:
        samples = run_async(_measure(server.url, settings))
    us = {name: value * 1e6 for name, value in medians(samples).items()}
    ratio = us["SDK (httpx transport)"] / us["raw httpx + orjson"]
    return [
        Result(
            benchmark="1. per-call overhead, search(limit=100)",
            variants=us,
            unit="µs/call",
            ratio_label="SDK (httpx transport) / raw httpx",
            ratio=ratio,
            target="<= 1.15",
            notes=[
                "asyncio, one connection, sequential calls; fixed-answer server in another process",
                f"SDK on its default transport / raw httpx: "
                f"{us['SDK (default transport)'] / us['raw httpx + orjson']:.2f}",
            ],
        )
    ]
