"""The `audioscape` command: search, crawl, and serve the local emulator.

Bad input gets one line on stderr and a non-zero exit, never a traceback:
2 for a usage error, 1 for an API error, 130 after Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

import anyio
import orjson

from ._argtypes import non_negative_int, positive_int, seconds
from ._constants import API_KEY_ENV, BASE_URL_ENV, DEFAULT_LIMIT, DEFAULT_OFFSET, MAX_LIMIT
from ._exceptions import AudioScapeError, InvalidParameterError
from ._version import __version__

if TYPE_CHECKING:
    from ._client import AsyncClient
    from ._crawl import CrawlStats
    from ._models import SearchFilters, SearchResponse

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

EMULATOR_HINT = "the emulator needs its extra: pip install 'audioscape-async[emulator]'"


class _UsageError(Exception):
    """Bad command-line input, reported as one line with exit status 2."""


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
    group.add_argument("--created-after", metavar="DATE", help="YYYY-MM-DD")


def build_parser() -> argparse.ArgumentParser:
    """The whole command line (exposed for tests and for shell completion tools)."""
    parser = argparse.ArgumentParser(
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
    search.add_argument("--limit", type=positive_int, default=DEFAULT_LIMIT, help=f"1..{MAX_LIMIT}")
    search.add_argument("--offset", type=non_negative_int, default=DEFAULT_OFFSET)
    search.add_argument("--json", action="store_true", help="print the answer as JSON")
    _add_filter_arguments(search)
    _add_connection_arguments(search)

    crawl = commands.add_parser(
        "crawl",
        help="write every matching track to a JSON-lines file (resumable)",
        description=(
            "Fetch every track of a search into OUT, one JSON object per line. While it runs "
            "the lines go to OUT.part with a checkpoint beside it; Ctrl-C or a crash leaves "
            "both, and --resume carries on where it stopped."
        ),
    )
    crawl.add_argument("query")
    crawl.add_argument("--out", required=True, help="the JSON-lines file to write")
    crawl.add_argument(
        "--concurrency", type=positive_int, default=4, help="pages in flight (default 4)"
    )
    crawl.add_argument("--rps", type=float, default=None, help="at most R requests per second")
    crawl.add_argument("--burst", type=positive_int, default=None, help="burst for --rps")
    crawl.add_argument("--max-items", type=positive_int, default=None)
    crawl.add_argument("--page-size", type=positive_int, default=MAX_LIMIT, help=f"1..{MAX_LIMIT}")
    crawl.add_argument("--resume", action="store_true", help="finish an interrupted crawl")
    crawl.add_argument("--force", action="store_true", help="overwrite an existing OUT")
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
    if args.max_retries is not None:
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


# -- search --------------------------------------------------------------------


def _duration(seconds: float) -> str:
    whole = round(seconds)
    return f"{whole // 60}:{whole % 60:02d}"


def _render_table(page: SearchResponse, out: TextIO) -> None:
    headers = ("ASSET ID", "NAME", "ARTIST", "ALBUM", "GENRE", "LENGTH", "BPM", "SCORE")
    rows = [
        (
            track.asset_id,
            track.name,
            track.artist,
            track.album,
            track.genre,
            _duration(track.duration),
            f"{track.bpm:g}",
            f"{track.score:.3f}",
        )
        for track in page.tracks
    ]
    caps = (14, 36, 24, 28, 14, 6, 5, 5)
    widths = [
        min(cap, max([len(header)] + [len(row[i]) for row in rows]))
        for i, (header, cap) in enumerate(zip(headers, caps, strict=True))
    ]

    def line(cells: Sequence[str]) -> str:
        fitted = [
            cell if len(cell) <= width else cell[: width - 1] + "…"
            for cell, width in zip(cells, widths, strict=True)
        ]
        return "  ".join(cell.ljust(width) for cell, width in zip(fitted, widths, strict=True))

    if rows:
        print(line(headers).rstrip(), file=out)
        for row in rows:
            print(line(row).rstrip(), file=out)
    else:
        print("no tracks matched", file=out)
    meta = page.meta
    summary = (
        f"{len(page.tracks)} of {meta.total:,} tracks (offset {meta.offset}) · "
        f"search: {meta.search_method}"
    )
    if meta.matched_artist:
        summary += f" · matched artist: {meta.matched_artist}"
    print(summary, file=out)


async def _search(args: argparse.Namespace) -> int:
    filters = _filters(args)
    async with _open_client(args) as client:
        page = await client.search(
            args.query, limit=args.limit, offset=args.offset, filters=filters
        )
    if args.json:
        sys.stdout.write(orjson.dumps(page.to_dict(), option=orjson.OPT_INDENT_2).decode() + "\n")
    else:
        _render_table(page, sys.stdout)
    return EXIT_OK


# -- crawl ---------------------------------------------------------------------


class _Progress:
    """Crawl progress on stderr: a redrawn bar on a terminal, else a line every few seconds."""

    def __init__(self, mode: str, stream: TextIO) -> None:
        if mode == "auto":
            mode = "bar" if stream.isatty() else "lines"
        self._mode = mode
        self._stream = stream
        self._last = 0.0

    def __call__(self, stats: CrawlStats) -> None:
        now = time.monotonic()
        interval = 0.1 if self._mode == "bar" else 5.0
        if self._mode == "none" or now - self._last < interval:
            return
        self._last = now
        self._show(stats)

    def _show(self, stats: CrawlStats) -> None:
        elapsed = stats.elapsed
        rate = stats.tracks / elapsed if elapsed > 0 else 0.0
        total = stats.total
        done = stats.tracks
        parts = []
        if total:
            share = min(1.0, done / total)
            remaining = (total - done) / rate if rate > 0 else float("inf")
            eta = f"{remaining:.0f}s" if remaining != float("inf") else "?"
            if self._mode == "bar":
                width = 24
                filled = int(share * width)
                parts.append("[" + "#" * filled + "-" * (width - filled) + "]")
            parts.append(f"{done:,}/{total:,} tracks ({share:.0%})")
        else:
            eta = "?"
            parts.append(f"{done:,} tracks")
        parts.append(f"{stats.pages:,} pages")
        parts.append(f"{rate:,.0f} tracks/s")
        parts.append(f"{stats.retry_count} retries")
        parts.append(f"ETA {eta}")
        text = " | ".join(parts)
        if self._mode == "bar":
            self._stream.write("\r" + text.ljust(100)[:120])
        else:
            self._stream.write(text + "\n")
        self._stream.flush()

    def finish(self, stats: CrawlStats) -> None:
        if self._mode == "none":
            return
        self._show(stats)
        if self._mode == "bar":
            self._stream.write("\n")
            self._stream.flush()


def _summary(stats: CrawlStats, out: str) -> str:
    drift = ", ".join(f"{kind} {count}" for kind, count in sorted(stats.drift.items()))
    retries = ", ".join(f"{cause} {count}" for cause, count in sorted(stats.retries.items()))
    lines = [
        f"wrote {stats.tracks:,} tracks to {out} in {stats.elapsed:.1f} s "
        f"({stats.pages:,} pages; meta.total {stats.total if stats.total is not None else '?'})",
        f"retries: {retries or 'none'}; 429s: {stats.rate_limited}; "
        f"waited for the rate limit: {stats.rate_wait_seconds:.1f} s",
        f"drift: {drift or 'none'}",
    ]
    if stats.resumed_at is not None:
        lines.append(f"resumed at offset {stats.resumed_at}")
    return "\n".join(lines)


async def _crawl(args: argparse.Namespace) -> int:
    from ._ratelimit import RateLimit

    filters = _filters(args)
    extra: dict[str, Any] = {}
    if args.rps is not None:
        extra["rate_limit"] = RateLimit(
            requests_per_second=args.rps, burst=args.burst if args.burst is not None else 1
        )
    elif args.burst is not None:
        raise _UsageError("--burst goes with --rps")
    progress = _Progress(args.progress, sys.stderr)
    async with _open_client(args, **extra) as client:
        stats = await client.crawl_to_file(
            args.query,
            args.out,
            filters=filters,
            page_size=args.page_size,
            max_items=args.max_items,
            concurrency=args.concurrency,
            resume=args.resume,
            overwrite=args.force,
            on_progress=progress,
        )
    progress.finish(stats)
    print(_summary(stats, args.out))
    return EXIT_OK


# -- entry point -----------------------------------------------------------------


def _fail(message: str, status: int) -> int:
    print(f"audioscape: error: {message}", file=sys.stderr)
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "serve":
        if getattr(args, "emulator_missing", False):
            return _fail(EMULATOR_HINT, EXIT_USAGE)
        from .emulator._cli import run_serve

        return run_serve(args)
    runners: dict[str, Callable[[argparse.Namespace], Any]] = {"search": _search, "crawl": _crawl}
    try:
        return int(anyio.run(runners[args.command], args))
    except KeyboardInterrupt:
        if args.command == "crawl":
            print(
                f"\ninterrupted; progress is saved: run the same command with --resume to "
                f"finish {args.out}",
                file=sys.stderr,
            )
        return EXIT_INTERRUPTED
    except (_UsageError, InvalidParameterError) as error:
        return _fail(str(error), EXIT_USAGE)
    except AudioScapeError as error:
        return _fail(str(error), EXIT_API_ERROR)
    except OSError as error:
        return _fail(f"{error.strerror or error}: {error.filename or ''}".rstrip(": "), 1)


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
    raise SystemExit(status)
