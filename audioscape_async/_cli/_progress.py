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

    def render(self, stats: CrawlStats, width: int | None) -> str:
        """One line of progress, at most `width` columns (bar mode leaves the last free)."""
        queries = stats.queries or [stats]
        done = sum(q.tracks for q in queries)
        expected: int | None = 0
        for query in queries:
            if query.total is None or expected is None:
                expected = None
                continue
            cap = query.total if self._max_items is None else min(query.total, self._max_items)
            expected += cap
        fresh = done - sum(q.resumed_tracks for q in queries)
        elapsed = stats.elapsed
        rate = fresh / elapsed if elapsed > 0 else 0.0
        parts: list[tuple[int, str]] = []  # (priority: lower goes last, text)
        if expected:
            share = min(1.0, done / expected)
            parts.append((9, f"{done:,}/{expected:,} tracks ({share:.0%})"))
            if rate > 0 and done < expected:
                parts.append((3, f"ETA {(expected - done) / rate:.0f}s"))
        else:
            parts.append((9, f"{done:,} tracks"))
        if len(queries) > 1:
            # The query walking now: the last one that has fetched (or resumed) anything.
            started = [i for i, q in enumerate(queries) if q.pages or q.resumed_tracks]
            current = started[-1] if started else 0
            parts.append((7, f"query {current + 1}/{len(queries)}"))
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
