"""The command line: its options, its exit statuses, and argparse's complaints in its style."""

from __future__ import annotations

import argparse
import sys
from typing import NoReturn

from audioscape_async._argtypes import (
    iso_date,
    non_negative_int,
    positive_number,
    seconds,
    whole_range,
)
from audioscape_async._constants import (
    API_KEY_ENV,
    BASE_URL_ENV,
    DEFAULT_LIMIT,
    DEFAULT_OFFSET,
    MAX_CONCURRENCY,
    MAX_LIMIT,
)
from audioscape_async._crawl._formats import FORMATS
from audioscape_async._version import __version__

from ._render import say_error

__all__ = [
    "EXIT_API_ERROR",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_USAGE",
    "OPTION_NAMES",
    "build_parser",
]

#: How the usage line names the command argument.
_COMMAND = "COMMAND"

EXIT_OK = 0
EXIT_API_ERROR = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130

#: The option behind each parameter the SDK may name, in an InvalidParameterError or as
#: the setting a message suggests (``overwrite=True`` is ``--force``).
OPTION_NAMES = {
    "query": "QUERY",
    "limit": "--limit",
    "offset": "--offset",
    "page_size": "--page-size",
    "max_items": "--max-items",
    "concurrency": "--concurrency",
    "format": "--format",
    "out": "--out",
    "resume": "--resume",
    "overwrite": "--force",
    "timeout": "--timeout",
    "max_retries": "--max-retries",
    "durable": "--fsync",
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


class _Parser(argparse.ArgumentParser):
    """argparse, with its complaints said in the command's one-line style."""

    #: The commands (`build_parser` fills it in), named when none is given.
    command_names: tuple[str, ...] = ()

    def error(self, message: str) -> NoReturn:
        # argparse says "argument --limit: ..."; we say "--limit: ...".
        if message.startswith("argument "):
            message = message[len("argument ") :]
        if message.endswith(f"required: {_COMMAND}"):
            # Bare `audioscape`: the usage line shows what may follow, then which commands.
            sys.stderr.write(self.format_usage())
            commands = ", ".join(self.command_names)
            message = f"no command given: choose one of {commands} (audioscape COMMAND --help)"
        say_error(message)
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
    commands = parser.add_subparsers(dest="command", required=True, metavar=_COMMAND)

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
    crawl.add_argument("--format", choices=FORMATS, help="default: from OUT's extension")
    crawl.add_argument(
        "--concurrency",
        type=whole_range(1, MAX_CONCURRENCY),
        default=4,
        help=f"pages in flight, 1..{MAX_CONCURRENCY} (default 4)",
    )
    crawl.add_argument(
        "--rps",
        type=positive_number,
        default=None,
        help="at most R requests per second (default: find the API key's limit from its 429s)",
    )
    crawl.add_argument("--burst", type=whole_range(1), default=None, help="burst for --rps")
    crawl.add_argument(
        "--redis",
        metavar="URL",
        default=None,
        help="share the rate with every process crawling with this key, through Redis",
    )
    crawl.add_argument(
        "--fsync",
        action="store_true",
        help="put each page and its checkpoint on disk before the next (survives a power cut)",
    )
    crawl.add_argument(
        "--adaptive",
        action="store_true",
        help="deprecated (leave out --rps instead): with --rps, halve the rate after each 429",
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
        "--stats",
        action="store_true",
        help="end with the HTTP attempts by status and their time (p50, p95)",
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
        from audioscape_async.emulator._cli import add_serve_arguments
    except ImportError as error:  # said when serve is run, in the words of every missing extra
        from audioscape_async._extras import missing_text

        module = (error.name or "starlette").split(".")[0]
        serve.set_defaults(emulator_missing=missing_text("audioscape serve", "emulator", module))
    else:
        add_serve_arguments(serve)
    parser.command_names = tuple(commands.choices)
    return parser
