"""Walking offset/limit pages up to `meta.total`.

The walk asks ``offset=start, limit=min(page_size, what is left)``, moves the
offset by the number of tracks it received (not by the page size: a short page
must not skip anything), and stops at `meta.total`, at an empty page, or when
the caller's budget is spent. Nothing runs between two pages, so a consumer
that stops early leaves nothing behind.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable

from ._models import SearchResponse, Track

logger = logging.getLogger("audioscape_async")

#: Fetch one page: ``(offset, limit) -> page``.
FetchPage = Callable[[int, int], Awaitable[SearchResponse]]


async def walk_pages(
    fetch: FetchPage,
    *,
    start: int,
    page_size: int,
    budget: Callable[[], int | None],
) -> AsyncGenerator[SearchResponse, None]:
    """Yield pages from `start` on; `budget()` says how many tracks are still wanted."""
    offset = start
    while True:
        left = budget()
        if left is not None and left <= 0:
            return
        limit = page_size if left is None else min(page_size, left)
        page = await fetch(offset, limit)
        received = len(page.tracks)
        yield page
        offset += received
        total = page.meta.total
        if received == 0:
            if offset < total:
                logger.warning(
                    "empty page at offset %d although meta.total is %d; stopping", offset, total
                )
            return
        if offset >= total:
            return


async def walk_tracks(
    fetch: FetchPage,
    *,
    start: int,
    page_size: int,
    max_items: int | None,
) -> AsyncGenerator[list[Track], None]:
    """Yield, page by page, the tracks not seen before, up to `max_items` in all."""
    seen: set[str] = set()
    yielded = 0

    def budget() -> int | None:
        return None if max_items is None else max_items - yielded

    async for page in walk_pages(fetch, start=start, page_size=page_size, budget=budget):
        fresh = []
        for track in page.tracks:
            if track.asset_id in seen:
                continue
            seen.add(track.asset_id)
            fresh.append(track)
        if len(fresh) < len(page.tracks):
            logger.warning(
                "page at offset %d repeated %d track(s) already seen; skipped them",
                page.meta.offset,
                len(page.tracks) - len(fresh),
            )
        if max_items is not None:
            del fresh[max_items - yielded :]
        yielded += len(fresh)
        if fresh:
            yield fresh
