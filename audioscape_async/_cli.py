"""The `audioscape` command: search, crawl, and serve the local emulator.

Bad input gets one line on stderr and a non-zero exit, never a traceback:
2 for a usage error, 1 for an API or file error, 130 after Ctrl-C. Every such
line has one style, ``audioscape: error: WHERE: RULE, got VALUE``, naming the
option (not the Python parameter behind it). Text that comes from the server
(track names, error messages) is escaped before it reaches a terminal: a
control character is printed as its escape (``\\x1b``), never sent raw.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import threading
import unicodedata
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TextIO

import anyio

from ._argtypes import iso_date, non_negative_int, positive_number, seconds, whole_range
from ._constants import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_LIMIT,
    DEFAULT_OFFSET,
    MAX_CONCURRENCY,
    MAX_LIMIT,
)
from ._exceptions import AudioScapeError, InvalidParameterError
from ._json import JSONError, dumps_pretty, loads
from ._version import __version__

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._crawl import CrawlQuery, CrawlStats
    from ._models import SearchFilters, SearchResponse

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EMULATOR_HINT = "the emulator needs its extra: pip install 'audioscape-async[emulator]'"
FORMAT_CHOICES = ("jsonl", "jsonl.gz", "csv", "parquet")

#: The option behind each parameter the SDK may name in an InvalidParameterError.
OPTION_NAMES = {
    "query": "QUERY",
    "limit": "--limit",
    "offset": "--offset",
    "page_size": "--page-size",
    "max_items": "--max-items",
    "concurrency": "--concurrency",
    "format": "--format",
    "resume": "--resume",
    "timeout": "--timeout",
    "max_retries": "--max-retries",
    "max_retry_after": "--max-retry-after",
    "base_url": "--base-url",
    "filters.genres": "--genre",
    "filters.duration": "--min-duration/--max-duration",
    "filters.duration.min": "--min-duration",
    "filters.duration.max": "--max-duration",
    "filters.min_play_count": "--min-plays",
    "filters.min_likes": "--min-likes",
    "filters.created_after": "--created-after",
    "rate_limit.requests_per_second": "--rps",
    "rate_limit.burst": "--burst",
}


class _UsageError(Exception):
    """Bad command-line input, reported as one line with exit status 2."""


def printable(text: str) -> str:
    """`text` with every control or format character escaped (``\\x1b``, ``\\u202e``)."""
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints said in the command's one-line style."""

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --limit: ..."; we say "--limit: ...".
        if message.startswith("argument "):
            message = message[len("argument ") :]
        print(f"audioscape: error: {printable(message)}", file=sys.stderr)
        raise SystemExit(EXIT_USAGE)


def _add_connection_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where to search")
    group.add_argument(
        "--emulator",
        action="store_true",
        help="search the embedded emulator, in this process (no key, no network)",
    )
    group.add_argument(
        "--base-url", help=f"the API's base URL (default: ${BASE_URL_ENV}, else the public API)"
    )
    group.add_argument(
        "--timeout", type=seconds, default=None, help="seconds for one attempt (default 30)"
    )
    group.add_argument(
        "--max-retries", type=non_negative_int, default=None, help="retries (default 3)"
    )


def _add_filter_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("filters")
    group.add_argument(
        "--genre",
        action="append",
        dest="genres",
        metavar="GENRE",
        help="a genre slug such as electronic or pop (repeat for more)",
    )
    group.add_argument("--min-duration", type=seconds, metavar="S", help="shortest, in seconds")
    group.add_argument("--max-duration", type=seconds, metavar="S", help="longest, in seconds")
    group.add_argument("--min-plays", type=non_negative_int, metavar="N", help="min play count")
    group.add_argument("--min-likes", type=non_negative_int, metavar="N", help="min like count")
    group.add_argument("--created-after", type=iso_date, metavar="DATE", help="YYYY-MM-DD")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (exposed for tests and for shell completion tools)."""
    parser = _Parser(
        prog="audioscape",
        description="Search the AudioScape music catalog, crawl it, or serve a local emulator.",
    )
    parser.add_argument("--version", action="version", version=f"audioscape {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    search = commands.add_parser(
        "search",
        help="search once and print a table (or JSON)",
        description=f"Search the catalog. The key comes from ${API_KEY_ENV}.",
    )
    search.add_argument("query", help='what to look for, e.g. "dark cinematic boss tension"')
    search.add_argument(
        "--limit", type=whole_range(1, MAX_LIMIT), default=DEFAULT_LIMIT, help=f"1..{MAX_LIMIT}"
    )
    search.add_argument("--offset", type=non_negative_int, default=DEFAULT_OFFSET)
    search.add_argument("--json", action="store_true", help="print the answer as JSON")
    _add_filter_arguments(search)
    _add_connection_arguments(search)

    crawl = commands.add_parser(
        "crawl",
        help="write every matching track of one query or many to a file (resumable)",
        description=(
            "Fetch every track of one query or several into OUT, each track once. While it "
            "runs the lines go to OUT.part with a checkpoint beside it; Ctrl-C or a crash "
            "leaves both, and --resume carries on where it stopped. OUT appears only when "
            "complete, as JSON Lines, .jsonl.gz, CSV or Parquet (by its extension or --format)."
        ),
    )
    crawl.add_argument("query", nargs="*", help="a query (repeat for more)")
    crawl.add_argument("--queries", metavar="FILE", help="a file of queries, one per line")
    crawl.add_argument(
        "--plan",
        metavar="FILE",
        help="a .json or .toml plan of queries, each with filters of its own",
    )
    crawl.add_argument("--out", required=True, help="the file to write, or - for standard output")
    crawl.add_argument("--format", choices=FORMAT_CHOICES, help="default: from OUT's extension")
    crawl.add_argument(
        "--concurrency",
        type=whole_range(1, MAX_CONCURRENCY),
        default=4,
        help=f"pages in flight, 1..{MAX_CONCURRENCY} (default 4)",
    )
    crawl.add_argument(
        "--rps", type=positive_number, default=None, help="at most R requests per second"
    )
    crawl.add_argument("--burst", type=whole_range(1), default=None, help="burst for --rps")
    crawl.add_argument(
        "--adaptive", action="store_true", help="with --rps: halve the rate after each 429"
    )
    crawl.add_argument(
        "--max-retry-after",
        type=seconds,
        default=None,
        metavar="S",
        help="fail rather than wait longer than S seconds for a 429's Retry-After (default 60)",
    )
    crawl.add_argument("--max-items", type=whole_range(1), default=None, help="per query")
    crawl.add_argument(
        "--page-size", type=whole_range(1, MAX_LIMIT), default=MAX_LIMIT, help=f"1..{MAX_LIMIT}"
    )
    crawl.add_argument("--resume", action="store_true", help="finish an interrupted crawl")
    crawl.add_argument(
        "--force", action="store_true", help="replace an existing OUT or discard its checkpoint"
    )
    crawl.add_argument(
        "--progress",
        choices=("auto", "bar", "lines", "none"),
        default="auto",
        help="a bar on a terminal, lines otherwise (default auto)",
    )
    _add_filter_arguments(crawl)
    _add_connection_arguments(crawl)

    serve = commands.add_parser(
        "serve",
        help="run the local AudioScape emulator",
        description="Run the AudioScape emulator on loopback until Ctrl-C.",
    )
    try:
        from .emulator._cli import add_serve_arguments
    except ImportError:
        serve.set_defaults(emulator_missing=True)
    else:
        add_serve_arguments(serve)
    return parser


def _filters(args: argparse.Namespace) -> SearchFilters | None:
    from ._models import DurationRange, SearchFilters

    duration = None
    if args.min_duration is not None or args.max_duration is not None:
        duration = DurationRange(min=args.min_duration, max=args.max_duration)
    fields: dict[str, Any] = {
        "genres": args.genres,
        "duration": duration,
        "min_play_count": args.min_plays,
        "min_likes": args.min_likes,
        "created_after": args.created_after,
    }
    if all(value is None for value in fields.values()):
        return None
    return SearchFilters(**fields)


@contextlib.asynccontextmanager
async def _open_client(args: argparse.Namespace, **extra: Any) -> AsyncIterator[AsyncClient]:
    from ._client import AsyncClient

    options: dict[str, Any] = {**extra}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if getattr(args, "max_retry_after", None) is not None:
        from ._retry import RetryPolicy

        retry = RetryPolicy(max_retry_after=args.max_retry_after)
        if args.max_retries is not None:
            retry = RetryPolicy(max_retries=args.max_retries, max_retry_after=args.max_retry_after)
        options["retry"] = retry
    elif args.max_retries is not None:
        options["max_retries"] = args.max_retries
    if args.emulator:
        if args.base_url:
            raise _UsageError("--emulator and --base-url exclude each other")
        try:
            import httpx

            from .emulator import BASE_PATH, DEMO_API_KEY, create_app
        except ImportError as error:
            raise _UsageError(f"{EMULATOR_HINT} ({error})") from None
        app = create_app()
        transport = httpx.ASGITransport(app=app)
        async with (
            httpx.AsyncClient(transport=transport) as http,
            AsyncClient(
                DEMO_API_KEY,
                base_url=f"http://emulator.localhost{BASE_PATH}",
                http_client=http,
                **options,
            ) as client,
        ):
            yield client
        return
    async with AsyncClient(base_url=args.base_url, **options) as client:
        yield client


def _terminal_width(stream: TextIO) -> int | None:
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


def _fit(text: str, width: int) -> str:
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


# -- search --------------------------------------------------------------------


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


def _render_table(page: SearchResponse, out: TextIO, width: int | None = None) -> None:
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
        fitted = [(_fit(cells[i], widths[i]), widths[i]) for i in keep]
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
    print(_fit(summary, width) if width is not None else summary, file=out)


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


async def _search(args: argparse.Namespace) -> int:
    filters = _filters(args)
    async with _open_client(args) as client:
        page = await client.search(
            args.query, limit=args.limit, offset=args.offset, filters=filters
        )
    if args.json:
        sys.stdout.write(dumps_pretty(page.to_dict()).decode() + "\n")
    else:
        _render_table(page, sys.stdout, _terminal_width(sys.stdout))
    return EXIT_OK


# -- crawl ---------------------------------------------------------------------


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
        width = _terminal_width(self._stream) if self.mode == "bar" else None
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
        return line if limit is None else _fit(line, limit)


def _summary(stats: CrawlStats, out: str) -> str:
    drift = ", ".join(f"{kind} {count}" for kind, count in sorted(stats.drift.items()))
    retries = ", ".join(f"{cause} {count}" for cause, count in sorted(stats.retries.items()))
    where = "standard output" if out == "-" else printable(out)
    before = f", {stats.resumed_tracks:,} of them before the resume" if stats.resumed_tracks else ""
    total = stats.total if stats.total is not None else "?"
    summed = f" over {len(stats.queries)} queries" if len(stats.queries) > 1 else ""
    if stats.end_reason == "already_complete":
        return (
            f"{where} is complete already: nothing to resume (it may be another crawl's; "
            "--force crawls again and replaces it)"
        )
    lines = [
        f"wrote {stats.tracks:,} tracks to {where} in {stats.elapsed:.1f} s "
        f"({stats.pages:,} pages; meta.total {total}{summed}{before})",
        f"retries: {retries or 'none'}; 429s: {stats.rate_limited}; "
        f"waited for the rate limit: {stats.rate_wait_seconds:.1f} s",
        f"drift: {drift or 'none'}",
    ]
    if len(stats.queries) > 1:
        lines.append(f"{len(stats.queries)} queries; {stats.overlap:,} tracks found again")
        for query in stats.queries:
            lines.append(
                f"  '{printable(query.query or '')}': {query.tracks:,} tracks "
                f"({query.overlap:,} found before), {query.pages:,} pages"
            )
    if stats.resumed_at is not None:
        lines.append(f"resumed at offset {stats.resumed_at}")
    return "\n".join(lines)


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")  # a BOM from an editor is not text
    except OSError as error:
        raise _UsageError(f"{what} {printable(path)}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise _UsageError(f"{what} {printable(path)}: not UTF-8 text") from None


def _plan_entries(path: str) -> list[Any]:
    text = _read_text(path, "--plan")
    where = f"--plan {printable(path)}"
    if path.endswith(".toml"):
        import importlib

        try:
            tomllib: Any = importlib.import_module("tomllib")  # Python 3.11 on
        except ModuleNotFoundError:
            raise _UsageError(f"{where}: TOML plans need Python 3.11 or later; use JSON") from None
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise _UsageError(f"{where}: not valid TOML ({error})") from None
    elif path.endswith(".json"):
        try:
            data = loads(text)
        except JSONError as error:
            raise _UsageError(f"{where}: not valid JSON ({error})") from None
    else:
        raise _UsageError(f"{where}: must end in .json or .toml")
    entries = data.get("queries") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise _UsageError(f"{where}: must hold a non-empty list of queries (a 'queries' list)")
    return entries


def _crawl_queries(args: argparse.Namespace) -> list[str | CrawlQuery]:
    """Every query of the command line, in order: arguments, --queries, --plan."""
    from ._crawl import CrawlQuery
    from ._models import coerce_filters

    queries: list[str | CrawlQuery] = list(args.query)
    if args.queries is not None:
        text = _read_text(args.queries, "--queries")
        for line in text.splitlines():
            line = line.strip()
            if line and not line.startswith("#"):
                queries.append(line)
    if args.plan is not None:
        for number, entry in enumerate(_plan_entries(args.plan), 1):
            where = f"--plan {printable(args.plan)}: query {number}"
            if isinstance(entry, str):
                queries.append(entry)
                continue
            if not isinstance(entry, dict) or not isinstance(entry.get("query"), str):
                raise _UsageError(f"{where}: must be a string or a table with a 'query' string")
            unknown = set(entry) - {"query", "filters"}
            if unknown:
                raise _UsageError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
            try:
                filters = coerce_filters(entry.get("filters"))
            except InvalidParameterError as error:
                raise _UsageError(f"{where}: {printable(error.message)}") from None
            queries.append(CrawlQuery(entry["query"], filters))
    if not queries:
        raise _UsageError("give at least one query: QUERY, --queries FILE or --plan FILE")
    return queries


async def _crawl(args: argparse.Namespace) -> int:
    from ._ratelimit import RateLimit

    queries = _crawl_queries(args)
    filters = _filters(args)
    extra: dict[str, Any] = {}
    if args.rps is not None:
        extra["rate_limit"] = RateLimit(
            requests_per_second=args.rps,
            burst=args.burst if args.burst is not None else 1,
            adaptive=args.adaptive,
        )
    elif args.burst is not None:
        raise _UsageError("--burst goes with --rps")
    elif args.adaptive:
        raise _UsageError("--adaptive goes with --rps")
    if args.out == "-" and args.resume:
        raise _UsageError("--resume: a crawl to standard output (--out -) cannot be resumed")
    progress = Progress(args.progress, sys.stderr, max_items=args.max_items)
    progress.start()
    try:
        async with _open_client(args, **extra) as client:
            stats = await client.crawl_to_file(
                queries,
                args.out,
                filters=filters,
                page_size=args.page_size,
                max_items=args.max_items,
                concurrency=args.concurrency,
                resume=args.resume,
                overwrite=args.force,
                format=args.format,
                on_progress=progress,
            )
    except BaseException:
        progress.stop()
        raise
    progress.stop(stats)
    print(_summary(stats, args.out), file=sys.stderr if args.out == "-" else sys.stdout)
    return EXIT_OK


# -- entry point -----------------------------------------------------------------


def _fail(message: str, status: int) -> int:
    print(f"audioscape: error: {printable(message)}", file=sys.stderr)
    return status


def _parameter_message(error: InvalidParameterError) -> str:
    """An SDK parameter error in the command's words: the option, then the rule."""
    base = error.parameter.split("[", 1)[0]  # "filters.genres[0]" is a --genre
    option = OPTION_NAMES.get(base, error.parameter)
    prefix = f"invalid {error.parameter}: "
    rule = error.message[len(prefix) :] if error.message.startswith(prefix) else error.message
    return f"{option}: {rule}"


def _interrupted(args: argparse.Namespace) -> int:
    out = getattr(args, "out", None)
    if args.command == "crawl" and out not in (None, "-"):
        checkpoint = Path(f"{out}.checkpoint")
        if checkpoint.exists():
            print(
                f"\ninterrupted; progress is saved in {printable(str(checkpoint))}: run the same "
                f"command with --resume to finish {printable(out)}",
                file=sys.stderr,
            )
            return EXIT_INTERRUPTED
    print("\ninterrupted", file=sys.stderr)
    return EXIT_INTERRUPTED


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit:  # a usage error (said already), --help or --version
        return int(exit.code or 0) if not isinstance(exit.code, str) else EXIT_USAGE
    if args.command == "serve":
        if getattr(args, "emulator_missing", False):
            return _fail(EMULATOR_HINT, EXIT_USAGE)
        from .emulator._cli import run_serve

        return run_serve(args)
    runners: dict[str, Callable[[argparse.Namespace], Any]] = {"search": _search, "crawl": _crawl}
    try:
        return int(anyio.run(runners[args.command], args))
    except KeyboardInterrupt:
        return _interrupted(args)
    except _UsageError as error:
        return _fail(str(error), EXIT_USAGE)
    except InvalidParameterError as error:
        return _fail(_parameter_message(error), EXIT_USAGE)
    except AudioScapeError as error:
        return _fail(str(error), EXIT_API_ERROR)
    except BrokenPipeError:
        raise
    except OSError as error:
        where = f": {error.filename}" if error.filename else ""
        return _fail(f"{error.strerror or error}{where}", EXIT_API_ERROR)


def run() -> None:
    """The console-script entry point."""
    # Keep a broken pipe (| head) quiet, the way Unix tools are.
    try:
        status = main()
        sys.stdout.flush()
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        status = EXIT_OK
    except KeyboardInterrupt:  # between the event loop's end and here
        status = EXIT_INTERRUPTED
    raise SystemExit(status)
