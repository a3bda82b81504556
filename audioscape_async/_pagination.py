"""Walking offset/limit pages up to `meta.total`, one page or several at a time.

The walk keeps a *frontier*: every track before it has been delivered, in
order. Each step plans up to `concurrency` pages from the frontier on
(``limit = min(page_size, what is left)``), fetches them at once, and then
delivers them strictly in offset order, so a concurrent walk yields exactly
what a sequential one would. The task group that fetches a step is closed
before anything is yielded: nothing runs while the consumer holds a page, and a
consumer that stops early leaves nothing behind.

The frontier moves by the tracks received, not by the page size. A page that
comes back short before `meta.total` leaves a gap, which is fetched before the
pages after it are delivered; a changed `meta.total` moves the end; an empty
page stops the walk. Each of these is drift: logged, and counted in the
statistics, never silent.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import aclosing
from typing import TYPE_CHECKING, cast

from ._models import SearchResponse, Track

if TYPE_CHECKING:
    from ._crawl import CrawlStats

logger = logging.getLogger("audioscape_async")

#: Fetch one page: ``(offset, limit) -> page``.
FetchPage = Callable[[int, int], Awaitable[SearchResponse]]


def _drift(stats: CrawlStats | None, kind: str, message: str, *args: object) -> None:
    logger.warning(message, *args)
    if stats is not None:
        stats.drift[kind] = stats.drift.get(kind, 0) + 1


#: Pages planned per step, for each request allowed in flight. A step waits for
#: its slowest page before its pages are delivered; a deeper step wastes less
#: of that wait (measured on a crawl with 10 ms latency per answer: SDK at
#: concurrency 8 over raw httpx at 8, 1.26 with one page per slot), and it
#: bounds what a walk holds to `concurrency * STEP_DEPTH` pages.
STEP_DEPTH = 4


async def _fetch_many(
    fetch: FetchPage, plan: list[tuple[int, int]], concurrency: int
) -> list[SearchResponse | Exception]:
    """Fetch the planned pages, `concurrency` at a time; each slot holds its page or its error.

    `concurrency` workers take the next planned page as soon as they are free,
    so the requests in flight stay at `concurrency` until the plan runs out.
    Errors are kept, not raised from inside the task group: a task group would
    wrap them in an ExceptionGroup, and the walk must raise the SDK's own error
    for the first failed page, after delivering the pages before it, exactly
    as a sequential walk would. Pages after a failed one are not started.
    """
    if len(plan) == 1:
        return [await fetch(*plan[0])]
    import anyio  # imported where used: `import audioscape_async` stays light

    results: list[SearchResponse | Exception | None] = [None] * len(plan)
    todo = iter(enumerate(plan))
    first_failure = len(plan)

    async def worker() -> None:
        nonlocal first_failure
        for index, (offset, limit) in todo:
            if index > first_failure:
                return
            try:
                results[index] = await fetch(offset, limit)
            except Exception as error:  # re-raised in offset order by the walk
                results[index] = error
                first_failure = min(first_failure, index)

    async with anyio.create_task_group() as tg:
        for _ in range(min(concurrency, len(plan))):
            tg.start_soon(worker)
    # Every slot up to the first failure is filled; the walk stops there.
    return cast("list[SearchResponse | Exception]", results[: first_failure + 1])


async def walk_pages(
    fetch: FetchPage,
    *,
    start: int,
    page_size: int,
    budget: Callable[[], int | None],
    concurrency: int = 1,
    stats: CrawlStats | None = None,
) -> AsyncGenerator[tuple[int, SearchResponse], None]:
    """Yield ``(offset, page)`` from `start` on; `budget()` says how many tracks are still wanted.

    `offset` is where the walk asked the page to start (the server's
    `meta.offset` is not trusted for bookkeeping).
    """
    frontier = start
    total: int | None = None  # unknown until the first page answers
    while True:
        left = budget()
        if left is not None and left <= 0:
            return
        if total is not None and frontier >= total:
            return
        # Before the total is known, one page; then a step of pages fetched
        # `concurrency` at a time (one page at a time: a sequential walk).
        plan: list[tuple[int, int]] = []
        planned_to = frontier
        width = 1 if total is None or concurrency == 1 else concurrency * STEP_DEPTH
        while len(plan) < width and (total is None or planned_to < total):
            limit = page_size if left is None else min(page_size, left - (planned_to - frontier))
            if limit <= 0:
                break
            plan.append((planned_to, limit))
            planned_to += limit
        pages = await _fetch_many(fetch, plan, concurrency)
        for (offset, limit), page in zip(plan, pages, strict=False):
            if isinstance(page, Exception):
                raise page
            received = len(page.tracks)
            new_total = page.meta.total
            if total is not None and new_total != total:
                _drift(
                    stats, "total_changed", "meta.total changed from %d to %d at offset %d",
                    total, new_total, offset,
                )  # fmt: skip
            total = new_total
            if stats is not None:
                stats.total = total
            if received == 0:
                if offset < total:
                    _drift(
                        stats, "empty_page", "empty page at offset %d although meta.total is %d;"
                        " stopping", offset, total,
                    )  # fmt: skip
                if stats is not None:
                    stats.pages += 1
                yield offset, page
                return
            if stats is not None:
                stats.pages += 1
            yield offset, page
            frontier = offset + received
            if received != limit and frontier < total:
                # A page of another size than asked, inside the result set: the
                # pages planned after it no longer line up. Re-plan from the
                # frontier (which fetches a short page's gap first).
                _drift(
                    stats, "short_page", "page at offset %d had %d of %d tracks before the end"
                    " (%d); re-planning from offset %d", offset, received, limit, total, frontier,
                )  # fmt: skip
                break


async def walk_tracks(
    fetch: FetchPage,
    *,
    start: int,
    page_size: int,
    max_items: int | None,
    concurrency: int = 1,
    stats: CrawlStats | None = None,
    seen: set[str] | None = None,
    delivered: int = 0,
) -> AsyncGenerator[tuple[list[Track], int], None]:
    """Yield, for each page, the tracks not seen before and the offset after the page.

    At most `max_items` tracks in all. A page whose tracks were all seen before
    still yields (an empty list), so a checkpoint can record the progress.
    `seen` and `delivered` carry what an earlier run delivered (a resumed crawl).
    """
    seen = set() if seen is None else seen
    yielded = delivered

    def budget() -> int | None:
        return None if max_items is None else max_items - yielded

    pages = walk_pages(
        fetch,
        start=start,
        page_size=page_size,
        budget=budget,
        concurrency=concurrency,
        stats=stats,
    )
    # Closing this walk must close the one inside it, not leave it to the collector.
    async with aclosing(pages):
        async for offset, page in pages:
            fresh = []
            for track in page.tracks:
                if track.asset_id not in seen:
                    seen.add(track.asset_id)
                    fresh.append(track)
            repeated = len(page.tracks) - len(fresh)
            if repeated:
                _drift(
                    stats, "duplicate_ids", "page at offset %d repeated %d track(s) already seen;"
                    " skipped them", offset, repeated,
                )  # fmt: skip
            if max_items is not None:
                del fresh[max_items - yielded :]
            yielded += len(fresh)
            if stats is not None:
                stats.tracks += len(fresh)
            yield fresh, offset + len(page.tracks)
