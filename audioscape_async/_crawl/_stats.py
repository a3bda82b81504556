"""A crawl's statistics: what it has done so far, live while it runs, final when it ends.

`CrawlStats` is a leaf: the pipeline (retries, rate-limit waits) and the walk
(pages, tracks, drift) below a crawl write into it, and nothing here imports
them back.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import attrs

from audioscape_async._exceptions import APIStatusError, APITimeoutError, RateLimitError

__all__ = ["CrawlStats", "ProgressHook"]


class _WaitClock:
    """Wall-clock time during which at least one task waited: the union of the waits.

    Waits of concurrent tasks overlap; summing them would count one second of
    waiting once per task. Each wait arrives as it ends (so ends only grow),
    which lets the union be kept as a short list of disjoint spans.
    """

    __slots__ = ("_folded", "_spans", "waiting")

    def __init__(self) -> None:
        self._spans: list[tuple[float, float]] = []
        self._folded = 0.0
        self.waiting = 0

    def add(self, start: float, end: float) -> None:
        if end <= start:
            return
        spans = self._spans
        while spans and spans[-1][1] >= start:
            first, last = spans.pop()
            start, end = min(start, first), max(end, last)
        spans.append((start, end))
        if len(spans) > 256:
            # Waits last seconds, not hours: spans this old never merge again.
            self._folded += sum(b - a for a, b in spans[:128])
            del spans[:128]

    @property
    def seconds(self) -> float:
        return self._folded + sum(b - a for a, b in self._spans)

    def clear(self) -> None:
        self._spans.clear()
        self._folded = 0.0


@attrs.define
class CrawlStats:
    """What a crawl has done so far; live while it runs, final when it ends.

    `retries` counts retries by cause (``"429"``, ``"5xx"``, ``"connection"``,
    ``"timeout"``, ``"empty_page"``: an empty page before `meta.total` asked
    again); `drift` counts inconsistencies the walk met and handled
    (``"total_changed"``, ``"short_page"``, ``"empty_page"``,
    ``"duplicate_ids"``). `complete` is True only when the result set really
    ended (or `max_items` tracks were delivered).

    `rate_wait_seconds` is wall-clock time during which at least one request
    waited for the rate limit (or a 429's pause), not the waits of concurrent
    tasks summed. A file crawl keeps one `CrawlStats` per query in `queries`
    (each with its `query`, and `overlap`: its tracks an earlier query had
    written already); the crawl's own `tracks` counts the distinct tracks
    written, `resumed_tracks` of them before a resume.
    """

    pages: int = 0
    tracks: int = 0
    total: int | None = None
    retries: dict[str, int] = attrs.Factory(dict)
    rate_limited: int = 0
    drift: dict[str, int] = attrs.Factory(dict)
    resumed_at: int | None = None
    #: Whether the result set really ended (or `max_items` was reached); see `end_reason`.
    complete: bool = False
    #: Why the walk ended: "end_of_results", "max_items", "empty_page", "error", or a
    #: `PaginationError.reason`; None while it runs (or when its loop was left early).
    end_reason: str | None = None
    started: float = attrs.field(factory=time.monotonic, repr=False)
    finished: float | None = attrs.field(default=None, repr=False)
    query: str | None = None
    overlap: int = 0
    resumed_tracks: int = 0
    queries: list[CrawlStats] = attrs.Factory(list)
    _waits: _WaitClock = attrs.field(factory=_WaitClock, init=False, repr=False, eq=False)

    @property
    def rate_wait_seconds(self) -> float:
        """Wall-clock seconds during which some request waited for the rate limit."""
        return self._waits.seconds + sum(query.rate_wait_seconds for query in self.queries)

    @rate_wait_seconds.setter
    def rate_wait_seconds(self, value: float) -> None:
        # `stats.rate_wait_seconds += waited`, said as a wait ends: the wait spans
        # the last `waited` seconds, and only time not already counted adds.
        added = value - self.rate_wait_seconds
        if value <= 0:
            self._waits.clear()
        elif added > 0:
            now = time.monotonic()
            self._waits.add(now - added, now)

    @contextmanager
    def rate_wait(self) -> Iterator[None]:
        """Around one request's wait for the rate limit: counted, and live while it lasts."""
        self._waits.waiting += 1
        start = time.monotonic()
        try:
            yield
        finally:
            self._waits.waiting -= 1
            self._waits.add(start, time.monotonic())

    @property
    def waiting_for_rate_limit(self) -> bool:
        """True while a request of this crawl waits for the rate limit."""
        return self._waits.waiting > 0 or any(q.waiting_for_rate_limit for q in self.queries)

    @property
    def elapsed(self) -> float:
        """Seconds since the crawl started (until it finished, once it has)."""
        end = self.finished if self.finished is not None else time.monotonic()
        return end - self.started

    @property
    def retry_count(self) -> int:
        """All retries, whatever their cause."""
        return sum(self.retries.values())

    def record_retry(self, error: BaseException, delay: float) -> None:
        """Count one retry of a failed request."""
        if isinstance(error, RateLimitError):
            cause = "429"
        elif isinstance(error, APIStatusError):
            cause = "5xx" if error.status_code >= 500 else str(error.status_code)
        elif isinstance(error, APITimeoutError):
            cause = "timeout"
        else:
            cause = "connection"
        self.retries[cause] = self.retries.get(cause, 0) + 1

    def to_dict(self) -> dict[str, Any]:
        """The statistics as plain JSON-ready data (for logs and metrics)."""
        return {
            "pages": self.pages,
            "tracks": self.tracks,
            "total": self.total,
            "retries": dict(self.retries),
            "rate_limited": self.rate_limited,
            "rate_wait_seconds": round(self.rate_wait_seconds, 3),
            "drift": dict(self.drift),
            "resumed_at": self.resumed_at,
            "complete": self.complete,
            "end_reason": self.end_reason,
            "elapsed_seconds": round(self.elapsed, 3),
            "query": self.query,
            "overlap": self.overlap,
            "resumed_tracks": self.resumed_tracks,
            "queries": [query.to_dict() for query in self.queries],
        }


#: Told of the statistics after every page.
ProgressHook = Callable[[CrawlStats], None]
