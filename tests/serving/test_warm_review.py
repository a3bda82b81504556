"""`warm` under a hostile review: a long list of searches."""

from __future__ import annotations

import tracemalloc

import pytest

from audioscape_async import AsyncClient, SearchCache
from audioscape_async.emulator import EmulatorServer


@pytest.mark.anyio
async def test_a_long_warm_up_holds_memory_for_its_workers_not_for_every_item(
    emulator: EmulatorServer,
) -> None:
    """20,000 items at concurrency 4 peak under 30 MiB (a waiting task per item took ~80)."""
    items = [{"query": "calm forest exploration", "limit": 3}] * 20_000
    async with AsyncClient(
        emulator.api_key, base_url=emulator.url, cache=SearchCache(), transport="httpx"
    ) as client:
        await client.search("calm forest exploration", limit=3)
        tracemalloc.start()
        try:
            report = await client.warm(items)
            _, peak = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
    assert report.ok
    assert report.shared == 20_000
    assert len(emulator.emulator.requests) == 1
    assert peak < 30 * 2**20, f"{peak / 2**20:.1f} MiB"
