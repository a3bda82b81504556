"""One walk of offset/limit pages: its rules and its plan, apart from the drivers.

One walk is one `Walk`: the rules and the *plan*, a queue of slots in offset
order (``(offset, limit)``, then the answer or the error). The walk keeps a
*frontier*: every track before it has been delivered, in order. Pages are
planned from the end of the plan (``limit = min(page_size, what max_items
leaves)``); only the slot at the head of the queue is ever delivered, so
however the answers arrive, a walk yields exactly what a sequential one does,
and the first failed page raises its own SDK error after the pages before it
(never an ExceptionGroup). The two drivers of `_pagination` only fetch its
slots.

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
- A second look goes to the server: the re-ask of an empty page and the
  request for a short page's missing part are sent with ``fresh=True``,
  which a client's fetcher sends past its cache (and its answer replaces
  the cached page). A page the cache answered (``cache_status`` "hit" or
  "stale") that looks wrong (empty or short before `meta.total`, a total
  other than the walk's, or only ids seen before) is asked again the same
  way, at once, before any rule below judges it: a cached page may be older
  than the rest of the walk, and the walk believes only the server's word
  that the result set ended or stalls.
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
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Protocol

import attrs

from audioscape_async import _retry
from audioscape_async._constants import DEFAULT_OFFSET, MAX_CONCURRENCY, MAX_LIMIT
from audioscape_async._exceptions import PaginationError
from audioscape_async._logs import logger
from audioscape_async._models import SearchResponse, Track
from audioscape_async._validation import (
    check_int_range,
    check_limit,
    check_max_items,
    check_number,
    check_offset,
    check_seconds,
)

from ._stats import CrawlStats

__all__ = ["Delivered", "FetchPage", "Slot", "SlotState", "Walk", "WalkOptions"]


class FetchPage(Protocol):
    """Fetch one page: ``await fetch(offset, limit, fresh=False)``.

    ``fresh=True`` is a second look at a page that looked wrong: it must reach
    the server, past any cache, and its answer replaces what the cache held.
    """

    def __call__(self, offset: int, limit: int, *, fresh: bool) -> Awaitable[SearchResponse]: ...


#: Where a page the walk doubts may have come from: the cache's store, not the server now.
_FROM_STORE = frozenset({"hit", "stale"})


def _at_least(low: int) -> Callable[[object, attrs.Attribute[int], object], None]:
    def check(_instance: object, attribute: attrs.Attribute[int], value: object) -> None:
        check_int_range(attribute.name, value, low)

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
    max_total_growth: float = attrs.field(
        default=2.0, validator=lambda _i, a, v: check_number(a.name, v, at_least=1.0)
    )
    #: Times an empty page before `meta.total` is asked again before the walk ends there.
    empty_page_retries: int = attrs.field(default=2, validator=_at_least(0))
    #: Seconds before the first re-ask of an empty page; doubled for each further one.
    empty_page_backoff: float = attrs.field(
        default=0.5, validator=lambda _i, a, v: check_seconds(a.name, v, zero=True)
    )


def _drift(stats: CrawlStats | None, kind: str, message: str, *args: object) -> None:
    logger.warning(message, *args)
    if stats is not None:
        stats.drift[kind] = stats.drift.get(kind, 0) + 1


class SlotState(enum.Enum):
    PENDING = "pending"
    IN_FLIGHT = "in flight"
    DONE = "done"


@attrs.define(eq=False)
class Slot:
    """One planned request and, once it is back, its page or its error."""

    offset: int
    limit: int
    state: SlotState = SlotState.PENDING
    page: SearchResponse | None = None
    error: Exception | None = None
    #: Times this page came back empty before `meta.total` and was asked again.
    reasks: int = 0
    #: Seconds to wait before (re-)sending it.
    delay: float = 0.0
    #: A second look: sent past any cache (see `FetchPage`).
    fresh: bool = False


#: A delivered page: where it was asked, the page, and its tracks not seen before.
Delivered = tuple[int, SearchResponse, list[Track]]


class Walk:
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
        self._gap = False  # the next slot planned asks for a short page's missing part
        self.slots: deque[Slot] = deque()
        self.failed = False  # a page failed: nothing after it is planned or started
        self.done = False

    # -- planning -------------------------------------------------------------

    def fill(self, capacity: int) -> bool:
        """Plan pages until the plan holds `capacity` slots or nothing more may be asked.

        Returns whether it planned any.
        """
        slots, options = self.slots, self.options
        planned = len(slots)
        while len(slots) < capacity and not self.failed and not self.done:
            if self.total is None:
                if self._planned_to > self.frontier:
                    break  # the first page tells meta.total; nothing before it is known
            elif self._planned_to >= self.total:
                break
            limit = options.page_size
            if options.max_items is not None:
                left = options.max_items - self._counted - (self._planned_to - self.frontier)
                limit = min(limit, left)
                if limit <= 0:
                    break
            slots.append(Slot(self._planned_to, limit, fresh=self._gap))
            self._gap = False
            self._planned_to += limit
        if not slots and not self.done and not self.failed:
            # Nothing left to ask and nothing in the plan: `max_items` was reached
            # before this walk began (a crawl resumed after its last page was written).
            # The walk ends here; no driver waits for a page that is never planned.
            limit_hit = options.max_items is not None and self._counted >= options.max_items
            self.finish("max_items" if limit_hit else "end_of_results", complete=True)
        return len(slots) > planned

    def next_pending(self) -> Slot | None:
        """The first slot still to send; none after a failed one."""
        for slot in self.slots:
            if slot.state is SlotState.PENDING:
                return slot
            if slot.error is not None:
                return None
        return None

    async def send(self, fetch: FetchPage, slot: Slot) -> None:
        """Fetch one slot; its error is kept for the walk to raise in offset order."""
        slot.state = SlotState.IN_FLIGHT
        try:
            if slot.delay:
                await _retry.sleep(slot.delay)
            slot.page = await fetch(slot.offset, slot.limit, fresh=slot.fresh)
        except Exception as error:  # re-raised in offset order by advance()
            slot.error = error
            self.failed = True
        slot.state = SlotState.DONE

    # -- delivering -----------------------------------------------------------

    def finish(self, reason: str, *, complete: bool) -> None:
        self.done = True
        if self.stats is not None:
            self.stats.end_reason = reason
            self.stats.complete = complete

    def _fail(self, reason: str, offset: int, message: str) -> PaginationError:
        self.finish(reason, complete=False)
        return PaginationError(message, reason=reason, offset=offset)

    def advance(self) -> Delivered | None:
        """Deliver the head of the plan if its answer is in; None while it is not.

        Raises the head's error, or `PaginationError` when the server makes no
        progress. An empty page before `meta.total` goes back into the plan to
        be asked again (None).
        """
        head = self.slots[0]
        if head.state is not SlotState.DONE:
            return None
        if head.error is not None:
            self.finish("error", complete=False)
            raise head.error
        page = head.page
        assert page is not None
        offset, limit = head.offset, head.limit
        options, stats = self.options, self.stats
        if not head.fresh and page.cache_status in _FROM_STORE and self._doubts(head, page):
            head.fresh = True
            head.state, head.page = SlotState.PENDING, None
            logger.info(
                "the cached page at offset %d looks wrong (%d tracks, meta.total %d);"
                " asking the server", offset, len(page.tracks), page.meta.total,
            )  # fmt: skip
            if stats is not None:
                stats.retries["cached_page"] = stats.retries.get("cached_page", 0) + 1
            return None
        tracks = page.tracks
        received = len(tracks)
        total = self._follow_total(page.meta.total, offset)
        if received == 0 and offset < total:
            if head.reasks < options.empty_page_retries:
                head.reasks += 1
                head.delay = options.empty_page_backoff * 2.0 ** (head.reasks - 1)
                head.state, head.page, head.fresh = SlotState.PENDING, None, True
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
                gap = Slot(self.frontier, self.slots[0].offset - self.frontier, fresh=True)
                self.slots.appendleft(gap)
            elif not self.slots:
                self._planned_to = self.frontier  # nothing planned after it: plan from here
                self._gap = True
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

    def _doubts(self, slot: Slot, page: SearchResponse) -> bool:
        """Whether a page would stop, shorten or stall the walk (see the module doc)."""
        tracks, total = page.tracks, page.meta.total
        if self.total is not None and total != self.total:
            return True
        if len(tracks) < slot.limit and slot.offset + len(tracks) < total:
            return True  # empty or short before the end
        seen = self.seen
        return bool(tracks) and all(track.asset_id in seen for track in tracks)

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
