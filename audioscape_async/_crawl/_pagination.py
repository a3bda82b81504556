"""Walking offset/limit pages up to `meta.total`: always to the end, never past it, never early.

A walk's rules and its plan are `_walk`'s: however the answers arrive, a walk
yields exactly what a sequential one does, and the first failed page raises
its own SDK error after the pages before it. This module holds the two
drivers that fetch the walk's slots:

- **The streaming window** (`stream_pages`, `stream_tracks`): `concurrency`
  worker tasks keep that many requests in flight; the consumer gets each page
  the moment every page before it was delivered. The plan holds at most
  ``concurrency * depth`` slots (in flight plus the reorder buffer), so a slow
  page holds back a bounded amount. anyio and trio forbid a task group that
  spans a ``yield`` of an async generator, so the window is an async context
  manager hosting the task group; leaving it (done, break, error,
  cancellation) cancels whatever is in flight and leaves nothing running.
- **Steps** (`walk_pages`, `walk_tracks`, the plain async generators): plan up
  to ``concurrency * depth`` slots, fetch them with a task group that is closed
  before anything is yielded, deliver, repeat. Nothing runs while the consumer
  holds a page, but a step waits for its slowest page.

Both drivers tell a walk's watch (`_hooks.WalkWatch`, when something observes
it) of each page as they deliver it, and of the walk's end.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Generic, TypeVar

from audioscape_async._models import SearchResponse, Track

from ._stats import CrawlStats
from ._walk import Delivered, FetchPage, SlotState, Walk, WalkOptions

if TYPE_CHECKING:
    from audioscape_async._hooks import WalkWatch

__all__ = [
    "FetchPage",
    "WalkOptions",
    "stream_pages",
    "stream_tracks",
    "walk_pages",
    "walk_tracks",
]

T = TypeVar("T")


# -- steps: the plain async generators ------------------------------------------


async def _fetch_pending(fetch: FetchPage, walk: Walk) -> None:
    """Send every pending slot, `concurrency` at a time; return when all are back."""
    pending = sum(slot.state is SlotState.PENDING for slot in walk.slots)
    if pending == 0:
        return
    if pending == 1:
        slot = walk.next_pending()
        if slot is not None:
            await walk.send(fetch, slot)
        return
    import anyio  # imported where used: `import audioscape_async` stays light

    async def worker() -> None:
        while (slot := walk.next_pending()) is not None:
            await walk.send(fetch, slot)

    async with anyio.create_task_group() as tg:
        for _ in range(min(walk.options.concurrency, pending)):
            tg.start_soon(worker)


async def _stepped(
    fetch: FetchPage, walk: Walk, watch: WalkWatch | None
) -> AsyncGenerator[Delivered, None]:
    options = walk.options
    failure: BaseException | None = None
    try:
        while not walk.done:
            # Before the total is known, one page; then steps of pages (one: sequential).
            sequential = walk.total is None or options.concurrency == 1
            walk.fill(1 if sequential else options.concurrency * options.depth)
            await _fetch_pending(fetch, walk)
            while walk.slots and not walk.done:
                item = walk.advance()
                if item is None:
                    break  # a gap or a re-ask: the next step fetches it
                if watch is not None:
                    await watch.page(item[0], item[1], len(item[2]))
                yield item
    except BaseException as error:
        failure = error
        raise
    finally:
        if watch is not None:
            watch.close(failure)


async def walk_pages(
    fetch: FetchPage,
    options: WalkOptions,
    *,
    stats: CrawlStats | None = None,
    watch: WalkWatch | None = None,
) -> AsyncGenerator[tuple[int, SearchResponse], None]:
    """Yield ``(offset, page)`` in offset order, in steps (see the module doc).

    `offset` is where the walk asked the page to start (the server's
    `meta.offset` is not trusted for bookkeeping). `max_items` counts every
    track received.
    """
    walk = Walk(options, stats=stats, seen=None, delivered=0, unique=False)
    async with aclosing(_stepped(fetch, walk, watch)) as items:
        async for offset, page, _ in items:
            yield offset, page


async def walk_tracks(
    fetch: FetchPage,
    options: WalkOptions,
    *,
    stats: CrawlStats | None = None,
    seen: set[str] | None = None,
    delivered: int = 0,
    watch: WalkWatch | None = None,
) -> AsyncGenerator[tuple[list[Track], int], None]:
    """Yield, for each page, the tracks not seen before and the offset to resume from after it.

    At most `max_items` tracks in all. A page whose tracks were all seen before
    still yields (an empty list), so a checkpoint can record the progress.
    `seen` and `delivered` carry what an earlier run delivered (a resumed crawl).
    """
    walk = Walk(options, stats=stats, seen=seen, delivered=delivered, unique=True)
    async with aclosing(_stepped(fetch, walk, watch)) as items:
        async for _, _, fresh in items:
            yield fresh, walk.frontier


# -- the streaming window ---------------------------------------------------------


class _Window:
    """`concurrency` workers filling the plan; `next()` delivers its head as soon as it is in."""

    def __init__(self, fetch: FetchPage, walk: Walk, watch: WalkWatch | None) -> None:
        import anyio  # imported where used: `import audioscape_async` stays light

        self._anyio = anyio
        self._fetch = fetch
        self.walk = walk
        self.watch = watch
        self._capacity = walk.options.concurrency * walk.options.depth
        self._changed = anyio.Event()
        # The event loop's own Event class: anyio.Event() looks the loop up on each
        # call, a cost per page delivered (benchmarks/results.md, row 8f).
        self._new_event = type(self._changed)
        self._waiting = 0

    def _notify(self) -> None:
        """Wake every task waiting for a change of the plan (none waiting: nothing to do)."""
        if self._waiting:
            self._changed.set()
            self._changed = self._new_event()

    async def _wait(self) -> None:
        """Wait for the next `_notify()`; the caller checked the plan just before, unawaited."""
        self._waiting += 1
        try:
            await self._changed.wait()
        finally:
            self._waiting -= 1

    def _plan(self) -> bool:
        """Plan what fits; whether the walk goes on (it ends when nothing is left to ask)."""
        walk = self.walk
        if walk.fill(self._capacity):
            self._notify()  # idle workers have pages to send
        return not walk.done

    async def worker(self) -> None:
        walk = self.walk
        while not walk.done:
            self._plan()
            slot = walk.next_pending()
            if slot is None:
                await self._wait()
                continue
            await walk.send(self._fetch, slot)
            self._notify()

    async def next(self) -> Delivered:
        walk = self.walk
        while not walk.done:
            if not self._plan():
                break  # nothing was left to ask (see `Walk.fill`)
            assert walk.slots, "a walk that is not done always has a page planned"
            item = walk.advance()
            if item is not None:
                self._notify()  # room in the plan, or a gap to fetch
                if self.watch is not None:
                    await self.watch.page(item[0], item[1], len(item[2]))
                return item
            if walk.slots[0].state is SlotState.PENDING:
                self._notify()  # re-asked
            await self._wait()
        raise StopAsyncIteration


class _Stream(Generic[T]):
    """The async iterator a window hands out: each item made from a delivered page."""

    def __init__(self, window: _Window, shape: Callable[[Walk, Delivered], T]) -> None:
        self._window = window
        self._shape = shape

    def __aiter__(self) -> _Stream[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._window.next()
        return self._shape(self._window.walk, item)


@asynccontextmanager
async def _open_window(
    fetch: FetchPage, walk: Walk, watch: WalkWatch | None
) -> AsyncIterator[_Window]:
    import anyio  # imported where used: `import audioscape_async` stays light

    window = _Window(fetch, walk, watch)
    failure: BaseException | None = None
    try:
        async with anyio.create_task_group() as tg:
            for _ in range(walk.options.concurrency):
                tg.start_soon(window.worker)
            try:
                yield window
            except BaseException as error:
                # Raised again outside the task group, which would wrap it in an ExceptionGroup.
                failure = error
            finally:
                tg.cancel_scope.cancel()
    finally:
        if watch is not None:
            watch.close(failure)
    if failure is not None:
        raise failure


def _page_of(_walk: Walk, item: Delivered) -> tuple[int, SearchResponse]:
    return item[0], item[1]


def _tracks_of(walk: Walk, item: Delivered) -> tuple[list[Track], int]:
    return item[2], walk.frontier


@asynccontextmanager
async def stream_pages(
    fetch: FetchPage,
    options: WalkOptions,
    *,
    stats: CrawlStats | None = None,
    watch: WalkWatch | None = None,
) -> AsyncIterator[AsyncIterator[tuple[int, SearchResponse]]]:
    """A streaming window over the pages: ``(offset, page)`` in offset order, as `walk_pages`.

    ```python
    async with stream_pages(fetch, WalkOptions(concurrency=8)) as pages:
        async for offset, page in pages:
            ...
    ```
    """
    walk = Walk(options, stats=stats, seen=None, delivered=0, unique=False)
    async with _open_window(fetch, walk, watch) as window:
        yield _Stream(window, _page_of)


@asynccontextmanager
async def stream_tracks(
    fetch: FetchPage,
    options: WalkOptions,
    *,
    stats: CrawlStats | None = None,
    seen: set[str] | None = None,
    delivered: int = 0,
    watch: WalkWatch | None = None,
) -> AsyncIterator[AsyncIterator[tuple[list[Track], int]]]:
    """A streaming window over the tracks: the batches `walk_tracks` yields, as soon as in order.

    ```python
    async with stream_tracks(fetch, WalkOptions(concurrency=8), stats=stats) as batches:
        async for fresh, next_offset in batches:
            ...
    ```
    """
    walk = Walk(options, stats=stats, seen=seen, delivered=delivered, unique=True)
    async with _open_window(fetch, walk, watch) as window:
        yield _Stream(window, _tracks_of)
