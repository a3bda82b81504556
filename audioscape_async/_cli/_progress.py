"""Crawl progress on stderr, drawn by a thread of its own from the live statistics."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING, TextIO

from ._render import fit, terminal_width

if TYPE_CHECKING:
    from audioscape_async._crawl import CrawlStats

__all__ = ["Progress"]


class Progress:
    """Crawl progress on stderr: a bar redrawn five times a second on a terminal, else lines.

    It runs in a thread of its own, reading the live `CrawlStats`, so it moves
    while a page is slow or the rate limit holds the crawl, not only per page.
    """

    def __init__(self, mode: str, stream: TextIO, *, max_items: int | None = None) -> None:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "lines"
        self.mode = mode
        self._stream = stream
        self._max_items = max_items
        self._stats: CrawlStats | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last_line = ""
        self._drawn = False

    def __call__(self, stats: CrawlStats) -> None:
        """The crawl's per-page hook: remember the stats the redraws read."""
        self._stats = stats

    def start(self) -> None:
        if self.mode == "none":
            return
        self._thread = threading.Thread(target=self._run, name="audioscape-progress", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        interval = 0.2 if self.mode == "bar" else 5.0
        while not self._stop.wait(interval):
            self._draw()

    def stop(self, final: CrawlStats | None = None) -> None:
        """Stop redrawing; with `final`, draw the last line once and end it."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self.mode == "none":
            return
        if final is not None:
            self._stats = final
            self._draw()
        if self.mode == "bar" and self._drawn:
            self._write("\n")
            self._drawn = False

    def _draw(self) -> None:
        stats = self._stats
        if stats is None:
            return
        width = terminal_width(self._stream) if self.mode == "bar" else None
        text = self.render(stats, width)
        if self.mode == "bar":
            # \r and clear-to-end: a shorter line leaves nothing of a longer one.
            self._write("\r" + text + "\x1b[K")
            self._drawn = True
        elif text != self._last_line:  # the last line too: printed once
            self._write(text + "\n")
        self._last_line = text

    def _write(self, text: str) -> None:
        with self._lock:
            try:
                self._stream.write(text)
                self._stream.flush()
            except (OSError, ValueError):
                self._stop.set()  # stderr went away: nothing left to show it on

    def _expected(self, query: CrawlStats) -> int | None:
        """What a query will write in all, once its total is known (capped by max_items)."""
        if query.total is None:
            return None
        return query.total if self._max_items is None else min(query.total, self._max_items)

    def render(self, stats: CrawlStats, width: int | None) -> str:
        """One line of progress, at most `width` columns (bar mode leaves the last free).

        A crawl of several queries shows the tracks so far against the totals known so
        far (each query's is known from its first page), the query walking now with
        its own share, and an ETA once every total is known.
        """
        queries = stats.queries or [stats]
        done = sum(q.tracks for q in queries)
        sized = [(q, e) for q in queries if (e := self._expected(q)) is not None]
        fresh = done - sum(q.resumed_tracks for q in queries)
        elapsed = stats.elapsed
        rate = fresh / elapsed if elapsed > 0 else 0.0
        parts: list[tuple[int, str]] = []  # (priority: lower goes last, text)
        expected = sum(e for _, e in sized) if len(sized) == len(queries) else None
        if expected:
            share = min(1.0, done / expected)
            parts.append((9, f"{done:,}/{expected:,} tracks ({share:.0%})"))
            if rate > 0 and done < expected:
                parts.append((3, f"ETA {(expected - done) / rate:.0f}s"))
        elif sized and (known := sum(e for _, e in sized)):
            # Some totals known: the tracks of those queries against their totals.
            known_done = sum(q.tracks for q, _ in sized)
            parts.append((9, f"{done:,} tracks"))
            parts.append(
                (6, f"{known_done:,}/{known:,} of the {len(sized)}/{len(queries)} totals known")
            )
        else:
            parts.append((9, f"{done:,} tracks"))
        if len(queries) > 1:
            # The query walking now: the last one that has fetched (or resumed) anything.
            started = [i for i, q in enumerate(queries) if q.pages or q.resumed_tracks]
            current = started[-1] if started else 0
            walking = queries[current]
            own = self._expected(walking)
            mine = f" ({walking.tracks:,}/{own:,})" if own else ""
            parts.append((7, f"query {current + 1}/{len(queries)}{mine}"))
        parts.append((2, f"{stats.pages:,} pages"))
        parts.append((5, f"{rate:,.0f} tracks/s"))
        if stats.retry_count:
            parts.append((4, f"{stats.retry_count} retries"))
        if stats.waiting_for_rate_limit:
            parts.append((8, "waiting for the rate limit"))
        limit = None if width is None else max(10, width - 1)
        bar = ""
        while True:
            text = " | ".join(part for _, part in parts)
            if limit is None or len(text) <= limit or len(parts) == 1:
                break
            parts.remove(min(parts, key=lambda part: part[0]))
        if self.mode == "bar" and expected and limit is not None:
            room = limit - len(text) - 3
            if room >= 10:
                cells = min(30, room)
                filled = int(min(1.0, done / expected) * cells)
                bar = "[" + "#" * filled + "-" * (cells - filled) + "] "
        line = bar + text
        return line if limit is None else fit(line, limit)
