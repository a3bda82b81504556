"""(3) The sync facade: `Client.search` vs `AsyncClient.search`, per call, same server.

`Client` runs the async core in an event-loop thread of its own and forwards
each call through an anyio blocking portal; the async variant runs its batch
in an asyncio loop in the main thread. Both on the default transport (what a
user gets) and both on httpx's own.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Callable

from audioscape_async import AsyncClient, Client

from ._common import QUERY, Result, Settings, medians
from ._server import API_KEY, ServerProcess

NAME = "sync_facade"


def run(settings: Settings) -> list[Result]:
    rounds, batch = settings.pick(25, 3), settings.pick(200, 20)
    loop = asyncio.new_event_loop()
    with ServerProcess() as server:

        async def make(transport: str) -> AsyncClient:
            return AsyncClient(API_KEY, base_url=server.url, transport=transport)  # type: ignore[arg-type]

        async_default = loop.run_until_complete(make("auto"))
        async_httpx = loop.run_until_complete(make("httpx"))
        sync_default = Client(API_KEY, base_url=server.url)
        sync_httpx = Client(API_KEY, base_url=server.url, transport="httpx")

        def async_batch(client: AsyncClient) -> Callable[[int], None]:
            async def calls(n: int) -> None:
                for _ in range(n):
                    await client.search(QUERY, limit=100)

            return lambda n: loop.run_until_complete(calls(n))

        def sync_batch(client: Client) -> Callable[[int], None]:
            def calls(n: int) -> None:
                for _ in range(n):
                    client.search(QUERY, limit=100)

            return calls

        variants = {
            "AsyncClient (default transport)": async_batch(async_default),
            "Client (default transport)": sync_batch(sync_default),
            "AsyncClient (httpx)": async_batch(async_httpx),
            "Client (httpx)": sync_batch(sync_httpx),
        }
        try:
            for call in variants.values():
                call(20)
            samples: dict[str, list[float]] = {name: [] for name in variants}
            names = list(variants)
            for _ in range(rounds):
                random.shuffle(names)
                for name in names:
                    gc.collect()
                    start = time.perf_counter()
                    variants[name](batch)
                    samples[name].append((time.perf_counter() - start) / batch)
        finally:
            sync_default.close()
            sync_httpx.close()
            loop.run_until_complete(async_default.aclose())
            loop.run_until_complete(async_httpx.aclose())
            loop.close()
    us = {name: value * 1e6 for name, value in medians(samples).items()}
    ratio = us["Client (default transport)"] / us["AsyncClient (default transport)"]
    ratio_httpx = us["Client (httpx)"] / us["AsyncClient (httpx)"]
    return [
        Result(
            benchmark="3. sync facade, search(limit=100)",
            variants=us,
            unit="µs/call",
            ratio_label="Client / AsyncClient (default transport)",
            ratio=ratio,
            target="<= 1.25",
            notes=[f"on httpx's own transport: Client / AsyncClient = {ratio_httpx:.2f}"],
        )
    ]
