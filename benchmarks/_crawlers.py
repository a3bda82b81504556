"""Hand-written raw crawlers, the yardsticks of the crawl and transport benchmarks.

What a competent user would write without the SDK: fetch the first page for
``meta.total``, then POST for every other offset, N at a time, parse the body
with orjson, and keep the pages by offset (put in order at the end). No
retries, no typed objects, no de-duplication, nothing delivered before the
end. Two shapes: `crawl_httpx` / `crawl_aiohttp` run N workers that take the
next offset; `gather_httpx` / `gather_aiohttp` are the textbook
``asyncio.gather`` over every page behind an ``asyncio.Semaphore(N)``.
"""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson

PAGE = 100


def _plan(first: dict[str, Any], max_items: int | None) -> list[tuple[int, int]]:
    total = first["meta"]["total"]
    end = total if max_items is None else min(total, max_items)
    return [(offset, min(PAGE, end - offset)) for offset in range(PAGE, end, PAGE)]


def _tracks(pages: dict[int, Any]) -> int:
    return sum(len(pages[offset]["tracks"]) for offset in sorted(pages))


async def _workers(fetch: Any, plan: list[tuple[int, int]], concurrency: int) -> dict[int, Any]:
    pages: dict[int, Any] = {}
    todo = iter(plan)

    async def worker() -> None:
        for offset, limit in todo:
            pages[offset] = await fetch(offset, limit)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return pages


async def _gathered(fetch: Any, plan: list[tuple[int, int]], concurrency: int) -> dict[int, Any]:
    semaphore = asyncio.Semaphore(concurrency)

    async def one(offset: int, limit: int) -> tuple[int, Any]:
        async with semaphore:
            return offset, await fetch(offset, limit)

    return dict(await asyncio.gather(*(one(offset, limit) for offset, limit in plan)))


def _httpx_fetch(client: httpx.AsyncClient, url: str, headers: dict[str, str], query: str) -> Any:
    async def fetch(offset: int, limit: int) -> Any:
        body = orjson.dumps({"query": query, "limit": limit, "offset": offset})
        response = await client.post(url, content=body, headers=headers)
        response.raise_for_status()
        return orjson.loads(response.content)

    return fetch


def _aiohttp_fetch(session: Any, url: str, headers: dict[str, str], query: str) -> Any:
    async def fetch(offset: int, limit: int) -> Any:
        body = orjson.dumps({"query": query, "limit": limit, "offset": offset})
        async with session.post(url, data=body, headers=headers) as response:
            response.raise_for_status()
            return orjson.loads(await response.read())

    return fetch


async def gather_httpx(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], query: str,
    concurrency: int, max_items: int | None = None,
) -> int:  # fmt: skip
    """Crawl with httpx, ``asyncio.gather`` behind a semaphore; return the number of tracks."""
    fetch = _httpx_fetch(client, url, headers, query)
    first = await fetch(0, PAGE)
    pages = await _gathered(fetch, _plan(first, max_items), concurrency)
    pages[0] = first
    return _tracks(pages)


async def gather_aiohttp(
    session: Any, url: str, headers: dict[str, str], query: str,
    concurrency: int, max_items: int | None = None,
) -> int:  # fmt: skip
    """Crawl with an aiohttp.ClientSession, ``asyncio.gather`` behind a semaphore."""
    fetch = _aiohttp_fetch(session, url, headers, query)
    first = await fetch(0, PAGE)
    pages = await _gathered(fetch, _plan(first, max_items), concurrency)
    pages[0] = first
    return _tracks(pages)


async def crawl_httpx(
    client: httpx.AsyncClient, url: str, headers: dict[str, str], query: str,
    concurrency: int, max_items: int | None = None,
) -> int:  # fmt: skip
    """Crawl with httpx; return the number of tracks."""
    fetch = _httpx_fetch(client, url, headers, query)
    first = await fetch(0, PAGE)
    pages = await _workers(fetch, _plan(first, max_items), concurrency)
    pages[0] = first
    return _tracks(pages)


async def crawl_aiohttp(
    session: Any, url: str, headers: dict[str, str], query: str,
    concurrency: int, max_items: int | None = None,
) -> int:  # fmt: skip
    """Crawl with an aiohttp.ClientSession; return the number of tracks."""
    fetch = _aiohttp_fetch(session, url, headers, query)
    first = await fetch(0, PAGE)
    pages = await _workers(fetch, _plan(first, max_items), concurrency)
    pages[0] = first
    return _tracks(pages)
