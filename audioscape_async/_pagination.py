"""Walking offset/limit pages up to `meta.total`: always to the end, never past it, never early.

One walk is one `_Walk`: the rules and the *plan*, a queue of slots in offset
order (``(offset, limit)``, then the answer or the error). The walk keeps a
*frontier*: every track before it has been delivered, in order. Pages are
planned from the end of the plan (``limit = min(page_size, what max_items
leaves)``); only the slot at the head of the queue is ever delivered, so
however the answers arrive, a walk yields exactly what a sequential one does,
and the first failed page raises its own SDK error after the pages before it
(never an ExceptionGroup). Two drivers fetch the slots:

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

The rules (`WalkOptions` holds every bound; one implementation serves both
drivers):

- The walk ends when the frontier reaches `meta.total` ("end_of_results") or
  `max_items` tracks were delivered ("max_items"): the result set really
  ended, and `CrawlStats.complete` says so.
- A short page before `meta.total` leaves a gap: its missing part is asked for
  at once, as a slot of its own before the pages after it (which stay valid).
- An empty page before `meta.total` is re-asked, `empty_page_retries` times
  with a doubling backoff from `empty_page_backoff` (slept through
  `_retry.sleep`), before the walk accepts that the result set ended there
  ("empty_page": *not* complete, since the server's own total says more).
- No progress is an error, `PaginationError`, never a loop: the same page (two
  tracks or more, the same ids in the same order) for two offsets is an
  ignored offset ("offset_ignored"); `max_stale_pages` pages in a row of only
  ids seen before ("stale_pages"); `meta.total` taking more than
  `max_total_changes` new values, or growing past `max_total_growth` times the
  first total, counted as at least one page ("total_unstable").
- Every inconsistency met and handled (a changed total, a short page, an empty
  page accepted as the end, repeated ids) is drift: logged, and counted in
  the statistics, never silent.
"""

from __future__ import annotations

import enum
import logging
import math
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import aclosing, asynccontextmanager
from typing import TYPE_CHECKING, Generic, TypeVar

import attrs

from . import _retry
from ._constants import DEFAULT_OFFSET, MAX_CONCURRENCY, MAX_LIMIT
from ._exceptions import InvalidParameterError, PaginationError
from ._models import SearchResponse, Track
from ._validation import check_int_range, check_limit, check_max_items, check_offset

if TYPE_CHECKING:
    from ._crawl import CrawlStats

__all__ = [
    "FetchPage",
    "WalkOptions",
    "stream_pages",
    "stream_tracks",
    "walk_pages",
    "walk_tracks",
]

logger = logging.getLogger("audioscape_async")

T = TypeVar("T")

#: Fetch one page: ``(offset, limit) -> page``.
FetchPage = Callable[[int, int], Awaitable[SearchResponse]]


def _at_least(low: int) -> Callable[[object, attrs.Attribute[int], object], None]:
    def check(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        check_int_range(attribute.name, value, low)

    return check


def _number_at_least(low: float) -> Callable[[object, attrs.Attribute[float], object], None]:
    def check(_instance: object, attribute: attrs.Attribute[float], value: object) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not (math.isfinite(value) and value >= low):  # type: ignore[arg-type, operator]
            raise InvalidParameterError(attribute.name, f"must be a number >= {low}, got {value!r}")

    return check


@attrs.frozen
class WalkOptions:
    """Where a walk starts, how it pages, and the bounds that make it end (see the module doc).

    >>> WalkOptions(page_size=50, max_items=1_000, concurrency=8).max_stale_pages
    3
    """

    #: The offset of the first page.
    start: int = attrs.field(default=DEFAULT_OFFSET, validator=lambda _i, _a, v: check_offset(v))
    #: Tracks asked for per page.
    page_size: int = attrs.field(
        default=MAX_LIMIT, validator=lambda _i, _a, v: check_limit("page_size", v)
    )
    #: Tracks delivered in all (None: the whole result set).
    max_items: int | None = attrs.field(
        default=None, validator=lambda _i, _a, v: check_max_items(v)
    )
    #: Requests in flight at once.
    concurrency: int = attrs.field(
        default=1, validator=lambda _i, _a, v: check_int_range("concurrency", v, 1, MAX_CONCURRENCY)
    )
    #: Pages planned per request in flight: the window's in-flight pages plus its
    #: reorder buffer, and the width of a step, are ``concurrency * depth``.
    depth: int = attrs.field(default=4, validator=_at_least(1))
    #: Pages in a row of only already-seen ids before the walk gives up.
    max_stale_pages: int = attrs.field(default=3, validator=_at_least(1))
    #: New values of `meta.total` tolerated in one walk (a value seen before is not new).
    max_total_changes: int = attrs.field(default=20, validator=_at_least(0))
    #: How far `meta.total` may grow, as a multiple of the first total (at least one page).
    max_total_growth: float = attrs.field(default=2.0, validator=_number_at_least(1.0))
    #: Times an empty page before `meta.total` is asked again before the walk ends there.
    empty_page_retries: int = attrs.field(default=2, validator=_at_least(0))
    #: Seconds before the first re-ask of an empty page; doubled for each further one.
    empty_page_backoff: float = attrs.field(default=0.5, validator=_number_at_least(0.0))


def _drift(stats: CrawlStats | None, kind: str, message: str, *args: object) -> None:
    logger.warning(message, *args)
    if stats is not None:
        stats.drift[kind] = stats.drift.get(kind, 0) + 1


class _State(enum.Enum):
    PENDING = "pending"
    IN_FLIGHT = "in flight"
    DONE = "done"


@attrs.define(eq=False)
class _Slot:
    """One planned request and, once it is back, its page or its error."""

    offset: int
    limit: int
    state: _State = _State.PENDING
    page: SearchResponse | None = None
    error: Exception | None = None
    #: Times this page came back empty before `meta.total` and was asked again.
    reasks: int = 0
    #: Seconds to wait before (re-)sending it.
    delay: float = 0.0


#: A delivered page: where it was asked, the page, and its tracks not seen before.
_Item = tuple[int, SearchResponse, list[Track]]


class _Walk:
    """The rules and the plan of one walk; the drivers only fetch its slots."""

    def __init__(
        self,
        options: WalkOptions,
        *,
        stats: CrawlStats | None,
        seen: set[str] | None,
        delivered: int,
        unique: bool,
    ) -> None:
        self.options = options
        self.stats = stats
        self.seen: set[str] = set() if seen is None else seen
        # max_items counts the tracks delivered (a track walk: unique ones).
        self._unique = unique
        self._counted = delivered
        self.frontier = options.start
        self._planned_to = options.start
        self.total: int | None = None
        self._first_total = 0
        self._totals: set[int] = set()
        self._stale = 0
        self._previous: tuple[int, tuple[Track, ...]] | None = None
        self.slots: deque[_Slot] = deque()
        self.failed = False  # a page failed: nothing after it is planned or started
        self.done = False

    # -- planning -------------------------------------------------------------

    def fill(self, capacity: int) -> bool:
        """Plan pages until the plan holds `capacity` slots or nothing more may be asked.

        Returns whether it planned any.
        """
        slots = self.slots
        planned = len(slots)
        while len(slots) < capacity and not self.failed and not self.done:
            if self.total is None:
                if self._planned_to > self.frontier:
                    break  # the first page tells meta.total; nothing before it is known
            elif self._planned_to >= self.total:
                break
            limit = self.options.page_size
            if self.options.max_items is not None:
                left = self.options.max_items - self._counted - (self._planned_to - self.frontier)
                limit = min(limit, left)
                if limit <= 0:
                    break
            slots.append(_Slot(self._planned_to, limit))
            self._planned_to += limit
        return len(slots) > planned

    def next_pending(self) -> _Slot | None:
        """The first slot still to send; none after a failed one."""
        for slot in self.slots:
            if slot.state is _State.PENDING:
                return slot
            if slot.error is not None:
                return None
        return None

    async def send(self, fetch: FetchPage, slot: _Slot) -> None:
        """Fetch one slot; its error is kept for the walk to raise in offset order."""
        slot.state = _State.IN_FLIGHT
        try:
            if slot.delay:
                await _retry.sleep(slot.delay)
            slot.page = await fetch(slot.offset, slot.limit)
        except Exception as error:  # re-raised in offset order by advance()
            slot.error = error
            self.failed = True
        slot.state = _State.DONE

    # -- delivering -----------------------------------------------------------

    def finish(self, reason: str, *, complete: bool) -> None:
        self.done = True
        if self.stats is not None:
            self.stats.end_reason = reason
            self.stats.complete = complete

    def _fail(self, reason: str, offset: int, message: str) -> PaginationError:
        self.finish(reason, complete=False)
        return PaginationError(message, reason=reason, offset=offset)

    def advance(self) -> _Item | None:
        """Deliver the head of the plan if its answer is in; None while it is not.

        Raises the head's error, or `PaginationError` when the server makes no
        progress. An empty page before `meta.total` goes back into the plan to
        be asked again (None).
        """
        head = self.slots[0]
        if head.state is not _State.DONE:
            return None
        if head.error is not None:
            self.finish("error", complete=False)
            raise head.error
        page = head.page
        assert page is not None
        offset, limit = head.offset, head.limit
        tracks = page.tracks
        received = len(tracks)
        total = self._follow_total(page.meta.total, offset)
        options, stats = self.options, self.stats
        if received == 0 and offset < total:
            if head.reasks < options.empty_page_retries:
                head.reasks += 1
                head.delay = options.empty_page_backoff * 2.0 ** (head.reasks - 1)
                head.state, head.page = _State.PENDING, None
                logger.warning(
                    "empty page at offset %d although meta.total is %d; asking again in %.2f s"
                    " (%d of %d)", offset, total, head.delay, head.reasks,
                    options.empty_page_retries,
                )  # fmt: skip
                if stats is not None:
                    stats.retries["empty_page"] = stats.retries.get("empty_page", 0) + 1
                return None
            _drift(
                stats, "empty_page", "empty page at offset %d although meta.total is %d, %d times;"
                " the result set ends there", offset, total, head.reasks + 1,
            )  # fmt: skip
            self.finish("empty_page", complete=False)
        self.slots.popleft()

        seen, add = self.seen, self.seen.add
        # `add` returns None: each new id is kept once and recorded, in one pass.
        fresh = [
            track for track in tracks if track.asset_id not in seen and not add(track.asset_id)
        ]
        if received:
            self._check_progress(offset, tracks, fresh)
            if len(fresh) < received:
                _drift(
                    stats, "duplicate_ids", "page at offset %d repeated %d track(s) already seen;"
                    " skipped them", offset, received - len(fresh),
                )  # fmt: skip

        self.frontier = max(self.frontier, offset + received)
        if 0 < received < limit and self.frontier < total and not self.done:
            _drift(
                stats, "short_page", "page at offset %d had %d of %d tracks before the end (%d);"
                " asking for the rest from offset %d", offset, received, limit, total,
                self.frontier,
            )  # fmt: skip
            if self.slots and self.slots[0].offset > self.frontier:
                # The pages planned after this one still line up: ask for its missing part alone.
                self.slots.appendleft(_Slot(self.frontier, self.slots[0].offset - self.frontier))
            elif not self.slots:
                self._planned_to = self.frontier  # nothing planned after it: plan from here
        self._planned_to = max(self._planned_to, self.frontier)

        max_items = options.max_items
        if self._unique:
            if max_items is not None:
                del fresh[max_items - self._counted :]
            self._counted += len(fresh)
        else:
            self._counted += received
        if stats is not None:
            stats.pages += 1
            stats.tracks += len(fresh)
        if not self.done:
            if max_items is not None and self._counted >= max_items:
                self.finish("max_items", complete=True)
            elif self.frontier >= total:
                self.finish("end_of_results", complete=True)
        return offset, page, fresh

    def _follow_total(self, new_total: int, offset: int) -> int:
        options = self.options
        if self.total is None:
            self._first_total = new_total
            self._totals.add(new_total)
        elif new_total != self.total:
            _drift(
                self.stats, "total_changed", "meta.total changed from %d to %d at offset %d",
                self.total, new_total, offset,
            )  # fmt: skip
            if new_total not in self._totals:
                self._totals.add(new_total)
                if len(self._totals) - 1 > options.max_total_changes:
                    raise self._fail(
                        "total_unstable", offset,
                        f"meta.total took {len(self._totals) - 1} different values in one walk"
                        f" (at most {options.max_total_changes} are followed), now {new_total}"
                        f" at offset {offset}: the result set does not hold still",
                    )  # fmt: skip
            ceiling = options.max_total_growth * max(self._first_total, options.page_size)
            if new_total > ceiling:
                raise self._fail(
                    "total_unstable", offset,
                    f"meta.total grew from {self._first_total} to {new_total} at offset {offset},"
                    f" past {options.max_total_growth:g} times the first total",
                )  # fmt: skip
        self.total = new_total
        if self.stats is not None:
            self.stats.total = new_total
        return new_total

    def _check_progress(self, offset: int, tracks: tuple[Track, ...], fresh: list[Track]) -> None:
        previous, self._previous = self._previous, (offset, tracks)
        if fresh:
            self._stale = 0
            return
        if (
            previous is not None
            and previous[0] != offset
            and len(tracks) >= 2
            and [t.asset_id for t in previous[1]] == [t.asset_id for t in tracks]
        ):
            raise self._fail(
                "offset_ignored", offset,
                f"the server answered offset {offset} with the same {len(tracks)} tracks as"
                f" offset {previous[0]}: it ignores the offset, so the walk would never end",
            )  # fmt: skip
        self._stale += 1
        if self._stale >= self.options.max_stale_pages:
            raise self._fail(
                "stale_pages", offset,
                f"{self._stale} pages in a row, up to offset {offset}, held only tracks already"
                " seen: the server makes no progress",
            )  # fmt: skip


# -- steps: the plain async generators ------------------------------------------


async def _fetch_pending(fetch: FetchPage, walk: _Walk) -> None:
    """Send every pending slot, `concurrency` at a time; return when all are back."""
    pending = sum(slot.state is _State.PENDING for slot in walk.slots)
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


async def _stepped(fetch: FetchPage, walk: _Walk) -> AsyncGenerator[_Item, None]:
    options = walk.options
    while not walk.done:
        # Before the total is known, one page; then steps of pages (one: sequential).
        sequential = walk.total is None or options.concurrency == 1
        walk.fill(1 if sequential else options.concurrency * options.depth)
        await _fetch_pending(fetch, walk)
        while walk.slots and not walk.done:
            item = walk.advance()
            if item is None:
                break  # a gap or a re-ask: the next step fetches it
            yield item


async def walk_pages(
    fetch: FetchPage, options: WalkOptions, *, stats: CrawlStats | None = None
) -> AsyncGenerator[tuple[int, SearchResponse], None]:
    """Yield ``(offset, page)`` in offset order, in steps (see the module doc).

    `offset` is where the walk asked the page to start (the server's
    `meta.offset` is not trusted for bookkeeping). `max_items` counts every
    track received.
    """
    walk = _Walk(options, stats=stats, seen=None, delivered=0, unique=False)
    async with aclosing(_stepped(fetch, walk)) as items:
        async for offset, page, _ in items:
            yield offset, page


async def walk_tracks(
    fetch: FetchPage,
    options: WalkOptions,
    *,
    stats: CrawlStats | None = None,
    seen: set[str] | None = None,
    delivered: int = 0,
) -> AsyncGenerator[tuple[list[Track], int], None]:
    """Yield, for each page, the tracks not seen before and the offset to resume from after it.

    At most `max_items` tracks in all. A page whose tracks were all seen before
    still yields (an empty list), so a checkpoint can record the progress.
    `seen` and `delivered` carry what an earlier run delivered (a resumed crawl).
    """
    walk = _Walk(options, stats=stats, seen=seen, delivered=delivered, unique=True)
    async with aclosing(_stepped(fetch, walk)) as items:
        async for _, _, fresh in items:
            yield fresh, walk.frontier


# -- the streaming window ---------------------------------------------------------


class _Window:
    """`concurrency` workers filling the plan; `next()` delivers its head as soon as it is in."""

    def __init__(self, fetch: FetchPage, walk: _Walk) -> None:
        import anyio  # imported where used: `import audioscape_async` stays light

        self._anyio = anyio
        self._fetch = fetch
        self.walk = walk
        self._capacity = walk.options.concurrency * walk.options.depth
        self._changed = anyio.Event()
        # The event loop's own Event class: anyio.Event() looks the loop up on each
        # call, which cost ~4 µs of CPU per page delivered.
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

    def _plan(self) -> None:
        if self.walk.fill(self._capacity):
            self._notify()  # idle workers have pages to send

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

    async def next(self) -> _Item:
        walk = self.walk
        while not walk.done:
            self._plan()
            assert walk.slots, "a walk that is not done always has a page planned"
            item = walk.advance()
            if item is not None:
                self._notify()  # room in the plan, or a gap to fetch
                return item
            if walk.slots[0].state is _State.PENDING:
                self._notify()  # re-asked
            await self._wait()
        raise StopAsyncIteration


class _Stream(Generic[T]):
    """The async iterator a window hands out: each item made from a delivered page."""

    def __init__(self, window: _Window, shape: Callable[[_Walk, _Item], T]) -> None:
        self._window = window
        self._shape = shape

    def __aiter__(self) -> _Stream[T]:
        return self

    async def __anext__(self) -> T:
        item = await self._window.next()
        return self._shape(self._window.walk, item)


@asynccontextmanager
async def _open_window(fetch: FetchPage, walk: _Walk) -> AsyncIterator[_Window]:
    import anyio  # imported where used: `import audioscape_async` stays light

    window = _Window(fetch, walk)
    failure: BaseException | None = None
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
    if failure is not None:
        raise failure


def _page_of(_walk: _Walk, item: _Item) -> tuple[int, SearchResponse]:
    return item[0], item[1]


def _tracks_of(walk: _Walk, item: _Item) -> tuple[list[Track], int]:
    return item[2], walk.frontier


@asynccontextmanager
async def stream_pages(
    fetch: FetchPage, options: WalkOptions, *, stats: CrawlStats | None = None
) -> AsyncIterator[AsyncIterator[tuple[int, SearchResponse]]]:
    """A streaming window over the pages: ``(offset, page)`` in offset order, as `walk_pages`.

    ```python
    async with stream_pages(fetch, WalkOptions(concurrency=8)) as pages:
        async for offset, page in pages:
            ...
    ```
    """
    walk = _Walk(options, stats=stats, seen=None, delivered=0, unique=False)
    async with _open_window(fetch, walk) as window:
        yield _Stream(window, _page_of)


@asynccontextmanager
async def stream_tracks(
    fetch: FetchPage,
    options: WalkOptions,
    *,
    stats: CrawlStats | None = None,
    seen: set[str] | None = None,
    delivered: int = 0,
) -> AsyncIterator[AsyncIterator[tuple[list[Track], int]]]:
    """A streaming window over the tracks: the batches `walk_tracks` yields, as soon as in order.

    ```python
    async with stream_tracks(fetch, WalkOptions(concurrency=8), stats=stats) as batches:
        async for fresh, next_offset in batches:
            ...
    ```
    """
    walk = _Walk(options, stats=stats, seen=seen, delivered=delivered, unique=True)
    async with _open_window(fetch, walk) as window:
        yield _Stream(window, _tracks_of)
