"""(3) The sync facade: `Client.search` vs `AsyncClient.search`, CPU time per call, same server.

The yardstick is `AsyncClient.search` awaited in the caller's own asyncio loop
(in the main thread); the measured variant is `Client.search` called from plain
blocking code in the main thread. Each variant runs on the default transport
(what a user gets, the target) and on httpx's own (a note). The clock is the CPU
time of the whole process (`time.process_time`: every thread, the client's
event-loop thread included, none of the server's, which runs in another
process), so the noise of the other processes on a shared machine stays out.

Also shown, with no target: what a `Client` costs called inside a running
asyncio loop (a notebook) and from 4 threads at once.

(3b) What a user waits for: the wall clock of one call to a server 20 ms away
(the fixed-answer server holds each answer that long), `Client.search` from
plain blocking code vs `AsyncClient.search` awaited in the caller's loop.
"""

from __future__ import annotations

import asyncio
import gc
import random
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from audioscape_async import AsyncClient, Client

from ._common import QUERY, Result, Settings, medians, spread
from ._server import API_KEY, ServerProcess

NAME = "sync_facade"

#: The threads of the "4 threads at once" variant.
THREADS = 4

#: Seconds the server of (3b) holds each answer: a server that far away.
LATENCY = 0.020


def run(settings: Settings) -> list[Result]:
    rounds, batch = settings.pick(25, 3), settings.pick(200, 20)
    loop = asyncio.new_event_loop()
    pool = ThreadPoolExecutor(THREADS)
    with ServerProcess() as server:

        async def make(transport: str) -> AsyncClient:
            return AsyncClient(API_KEY, base_url=server.url, transport=transport)  # type: ignore[arg-type]

        async_default = loop.run_until_complete(make("auto"))
        async_httpx = loop.run_until_complete(make("httpx"))
        sync_default = Client(API_KEY, base_url=server.url)
        sync_httpx = Client(API_KEY, base_url=server.url, transport="httpx")
        sync_notebook = Client(API_KEY, base_url=server.url)
        sync_threads = Client(API_KEY, base_url=server.url)

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

        def notebook_batch(client: Client) -> Callable[[int], None]:
            async def cell(n: int) -> None:  # blocking calls inside a running loop
                for _ in range(n):
                    client.search(QUERY, limit=100)

            return lambda n: loop.run_until_complete(cell(n))

        def threads_batch(client: Client) -> Callable[[int], None]:
            calls = sync_batch(client)

            def run_threads(n: int) -> None:
                share = n // THREADS
                for future in [pool.submit(calls, share) for _ in range(THREADS)]:
                    future.result()

            return run_threads

        variants = {
            "AsyncClient (default transport)": async_batch(async_default),
            "Client (default transport)": sync_batch(sync_default),
            "AsyncClient (httpx)": async_batch(async_httpx),
            "Client (httpx)": sync_batch(sync_httpx),
            "Client in a running loop (notebook)": notebook_batch(sync_notebook),
            f"Client from {THREADS} threads at once": threads_batch(sync_threads),
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
                    start = time.process_time()
                    variants[name](batch)
                    samples[name].append((time.process_time() - start) / batch)
        finally:
            for client in (sync_default, sync_httpx, sync_notebook, sync_threads):
                client.close()
            loop.run_until_complete(async_default.aclose())
            loop.run_until_complete(async_httpx.aclose())
            loop.close()
            pool.shutdown()
    us = {name: value * 1e6 for name, value in medians(samples).items()}
    base, base_httpx = "AsyncClient (default transport)", "AsyncClient (httpx)"
    ratio = us["Client (default transport)"] / us[base]
    ratio_httpx = us["Client (httpx)"] / us[base_httpx]
    notebook = us["Client in a running loop (notebook)"] / us[base]
    threads = us[f"Client from {THREADS} threads at once"] / us[base]
    return [
        Result(
            benchmark="3. sync facade, search(limit=100), CPU time",
            variants=us,
            unit="µs CPU/call",
            ratio_label="Client / AsyncClient (default transport)",
            ratio=ratio,
            target="<= 1.6",
            notes=[
                "CPU time of the whole process per call (time.process_time), interleaved rounds; "
                "the AsyncClient runs in the caller's own asyncio loop",
                "round-by-round spread (10th-90th percentile) of Client / AsyncClient: "
                + spread(samples["Client (default transport)"], samples[base]),
                f"on httpx's own transport: Client / AsyncClient = {ratio_httpx:.2f}",
                f"Client called inside a running loop (a notebook: its loop runs in a thread) "
                f"/ AsyncClient = {notebook:.2f}",
                f"Client shared by {THREADS} threads at once / AsyncClient = {threads:.2f}",
            ],
        ),
        _wall_clock(settings),
    ]


def _wall_clock(settings: Settings) -> Result:
    """(3b): seconds per call by the wall clock, a server `LATENCY` away."""
    rounds, batch = settings.pick(15, 2), settings.pick(20, 3)
    loop = asyncio.new_event_loop()
    with ServerProcess(latency=LATENCY) as server:
        async_client = AsyncClient(API_KEY, base_url=server.url)
        sync_client = Client(API_KEY, base_url=server.url)

        async def calls(n: int) -> None:
            for _ in range(n):
                await async_client.search(QUERY, limit=100)

        def sync_calls(n: int) -> None:
            for _ in range(n):
                sync_client.search(QUERY, limit=100)

        variants: dict[str, Callable[[int], None]] = {
            "AsyncClient": lambda n: loop.run_until_complete(calls(n)),
            "Client": sync_calls,
        }
        try:
            for call in variants.values():
                call(5)
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
            sync_client.close()
            loop.run_until_complete(async_client.aclose())
            loop.close()
    ms = {name: value * 1e3 for name, value in medians(samples).items()}
    return Result(
        benchmark=f"3b. sync facade, search(limit=100), wall clock, {LATENCY * 1e3:g} ms away",
        variants=ms,
        unit="ms/call",
        ratio_label="Client / AsyncClient (default transport)",
        ratio=ms["Client"] / ms["AsyncClient"],
        target="<= 1.03",
        notes=[
            "wall clock per call, interleaved rounds; the server holds each answer "
            f"{LATENCY * 1e3:g} ms; round-by-round spread (10th-90th percentile): "
            + spread(samples["Client"], samples["AsyncClient"]),
        ],
    )
