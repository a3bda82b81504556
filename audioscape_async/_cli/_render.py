"""What the command prints: server text made safe, the search table, the crawl summary.

Text that comes from the server (track names, error messages) is escaped
before it reaches a terminal: a control character is printed as its escape
(``\\x1b``), never sent raw. Every error line has one style,
``audioscape: error: ...`` (`say_error`).
"""

from __future__ import annotations

import os
import sys
import unicodedata
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, TextIO

from audioscape_async._logs import printable

if TYPE_CHECKING:
    from audioscape_async._crawl import CrawlStats
    from audioscape_async._models import SearchResponse

__all__ = [
    "AttemptStats",
    "crawl_summary",
    "fit",
    "render_table",
    "say_error",
    "terminal_width",
]


def say_error(message: str) -> None:
    """Print `message` on stderr as the command's one error line."""
    print(f"audioscape: error: {printable(message)}", file=sys.stderr)


def say_warning(message: str) -> None:
    """Print `message` on stderr as one warning line (never Python's file:line form)."""
    print(f"audioscape: warning: {printable(message)}", file=sys.stderr)


def terminal_width(stream: TextIO) -> int | None:
    """The columns of the terminal `stream` is, else $COLUMNS if set, else None (no limit)."""
    try:
        if stream.isatty():
            return os.get_terminal_size(stream.fileno()).columns or 80
    except (AttributeError, ValueError, OSError):
        pass
    columns = os.environ.get("COLUMNS", "")
    return int(columns) if columns.isdigit() and int(columns) > 0 else None


def _cells(text: str) -> int:
    """How many terminal columns `text` takes (wide East Asian characters take two)."""
    if text.isascii():
        return len(text)
    return sum(2 if unicodedata.east_asian_width(char) in "WF" else 1 for char in text)


def fit(text: str, width: int) -> str:
    """`text` cut to `width` columns, with an ellipsis where it was cut."""
    if _cells(text) <= width:
        return text
    out, used = [], 0
    for char in text:
        size = _cells(char)
        if used + size > width - 1:
            break
        out.append(char)
        used += size
    return "".join(out) + "…"


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


#: Table columns: header, widest, narrowest, and the order columns go in when even the
#: narrowest widths do not fit (0 = never).
_COLUMNS = (
    ("ASSET ID", 14, 14, 0),
    ("NAME", 36, 8, 0),
    ("ARTIST", 24, 6, 5),
    ("ALBUM", 28, 5, 1),
    ("GENRE", 14, 5, 2),
    ("LENGTH", 6, 6, 4),
    ("BPM", 5, 3, 3),
    ("SCORE", 5, 5, 6),
)


def render_table(page: SearchResponse, out: TextIO, width: int | None = None) -> None:
    rows = [
        [
            printable(track.asset_id),
            printable(track.name),
            printable(track.artist),
            printable(track.album),
            printable(track.genre),
            _duration(track.duration),
            f"{track.bpm:g}",
            f"{track.score:.3f}",
        ]
        for track in page.tracks
    ]
    keep = list(range(len(_COLUMNS)))
    widths = [
        min(cap, max([len(header)] + [_cells(row[i]) for row in rows]))
        for i, (header, cap, _, _) in enumerate(_COLUMNS)
    ]
    if width is not None:
        _shrink(keep, widths, width)

    def line(cells: Sequence[str]) -> str:
        fitted = [(fit(cells[i], widths[i]), widths[i]) for i in keep]
        padded = [cell + " " * (width - _cells(cell)) for cell, width in fitted]
        return "  ".join(padded).rstrip()

    if rows:
        print(line([header for header, *_ in _COLUMNS]), file=out)
        for row in rows:
            print(line(row), file=out)
    else:
        print("no tracks matched", file=out)
    meta = page.meta
    summary = (
        f"{len(page.tracks)} of {meta.total:,} tracks (offset {meta.offset}) · "
        f"search: {printable(meta.search_method)}"
    )
    if meta.matched_artist:
        summary += f" · matched artist: {printable(meta.matched_artist)}"
    print(fit(summary, width) if width is not None else summary, file=out)


def _shrink(keep: list[int], widths: list[int], width: int) -> None:
    """Narrow the widest flexible columns, then drop columns, until a row fits `width`."""

    def used() -> int:
        return sum(widths[i] for i in keep) + 2 * (len(keep) - 1)

    while used() > width:
        flexible = [i for i in keep if widths[i] > _COLUMNS[i][2]]
        if flexible:
            widest = max(flexible, key=lambda i: widths[i] - _COLUMNS[i][2])
            widths[widest] -= 1
            continue
        droppable = [i for i in keep if _COLUMNS[i][3]]
        if not droppable:
            return
        keep.remove(min(droppable, key=lambda i: _COLUMNS[i][3]))


def _count(number: int, noun: str) -> str:
    """ "1 page", "2 pages", "1,000 pages"."""
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def crawl_summary(stats: CrawlStats, out: str) -> str:
    drift = ", ".join(f"{kind} {count}" for kind, count in sorted(stats.drift.items()))
    retries = ", ".join(f"{cause} {count}" for cause, count in sorted(stats.retries.items()))
    where = "standard output" if out == "-" else printable(out)
    before = f", {stats.resumed_tracks:,} of them before the resume" if stats.resumed_tracks else ""
    total = f"{stats.total:,}" if stats.total is not None else "?"
    summed = f" over {len(stats.queries)} queries" if len(stats.queries) > 1 else ""
    if stats.end_reason == "already_complete":
        return (
            f"{where} is complete already: nothing to resume (it may be another crawl's; "
            "--force crawls again and replaces it)"
        )
    lines = [
        f"wrote {stats.tracks:,} tracks to {where} in {stats.elapsed:.1f} s "
        f"({_count(stats.pages, 'page')}; meta.total {total}{summed}{before})",
        f"retries: {retries or 'none'}; 429s: {stats.rate_limited}; "
        f"waited for the rate limit: {stats.rate_wait_seconds:.1f} s",
        f"drift: {drift or 'none'}",
    ]
    if len(stats.queries) > 1:
        lines.append(f"{len(stats.queries)} queries; {stats.overlap:,} tracks found again")
        for query in stats.queries:
            lines.append(
                f"  '{printable(query.query or '')}': {query.tracks:,} tracks "
                f"({query.overlap:,} found before), {_count(query.pages, 'page')}"
            )
    if stats.resumed_at is not None:
        lines.append(f"resumed at offset {stats.resumed_at}")
    return "\n".join(lines)


class AttemptStats:
    """What ``audioscape crawl --stats`` adds to its summary, tallied by event hooks."""

    def __init__(self) -> None:
        self.statuses: dict[int, int] = {}
        self.failed = 0  # attempts with no answer (a dropped connection, a timeout)
        self.elapsed: list[float] = []

    def hooks(self) -> dict[str, list[Any]]:
        return {"request": [self._request], "response": [self._response]}

    def _request(self, _event: object) -> None:
        self.failed += 1  # until its answer comes

    def _response(self, event: Any) -> None:
        self.failed -= 1
        self.statuses[event.status_code] = self.statuses.get(event.status_code, 0) + 1
        self.elapsed.append(event.elapsed)

    def render(self) -> str:
        sent = sum(self.statuses.values()) + self.failed
        by_status = ", ".join(f"{status} x{n:,}" for status, n in sorted(self.statuses.items()))
        if self.failed:
            by_status += f"{', ' if by_status else ''}no answer x{self.failed:,}"
        line = f"HTTP attempts: {sent:,} ({by_status or 'none'})"
        if self.elapsed:
            times = sorted(self.elapsed)
            p50, p95 = times[len(times) // 2], times[min(len(times) - 1, len(times) * 95 // 100)]
            line += f"; attempt time p50 {p50 * 1000:.1f} ms, p95 {p95 * 1000:.1f} ms"
        return line
