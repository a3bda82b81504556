"""The commands: `search` prints one page, `crawl` writes every track to a file."""

from __future__ import annotations

import argparse
import contextlib
import sys
import warnings
from collections.abc import AsyncIterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from audioscape_async._exceptions import InvalidParameterError
from audioscape_async._extras import missing_text
from audioscape_async._json import JSONError, dumps_pretty, loads
from audioscape_async._logs import printable

from ._progress import Progress
from ._render import AttemptStats, crawl_summary, render_table, terminal_width

if TYPE_CHECKING:
    from audioscape_async._client import AsyncClient
    from audioscape_async._crawl import CrawlQuery
    from audioscape_async._models import SearchFilters

__all__ = ["UsageError", "crawl", "search"]


class UsageError(Exception):
    """Bad command-line input, reported as one line with exit status 2."""


def _filters(args: argparse.Namespace) -> SearchFilters | None:
    from audioscape_async._models import DurationRange, SearchFilters

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
    from audioscape_async._client import AsyncClient

    options: dict[str, Any] = {**extra}
    if args.timeout is not None:
        options["timeout"] = args.timeout
    if getattr(args, "max_retry_after", None) is not None:
        from audioscape_async._retry import RetryPolicy

        retry = RetryPolicy(max_retry_after=args.max_retry_after)
        if args.max_retries is not None:
            retry = RetryPolicy(max_retries=args.max_retries, max_retry_after=args.max_retry_after)
        options["retry"] = retry
    elif args.max_retries is not None:
        options["max_retries"] = args.max_retries
    if args.emulator:
        if args.base_url:
            raise UsageError("--emulator and --base-url exclude each other")
        try:
            import httpx

            from audioscape_async.emulator import BASE_PATH, DEMO_API_KEY, create_app
        except ImportError as error:
            module = (error.name or "starlette").split(".")[0]
            raise UsageError(missing_text("--emulator", "emulator", module)) from None
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


async def search(args: argparse.Namespace) -> None:
    """`audioscape search`: one page, as a table that fits the terminal or as JSON."""
    filters = _filters(args)
    async with _open_client(args) as client:
        page = await client.search(
            args.query, limit=args.limit, offset=args.offset, filters=filters
        )
    if args.json:
        sys.stdout.write(dumps_pretty(page.to_dict()).decode() + "\n")
    else:
        render_table(page, sys.stdout, terminal_width(sys.stdout))


def _read_text(path: str, what: str) -> str:
    try:
        return Path(path).read_text(encoding="utf-8-sig")  # a BOM from an editor is not text
    except OSError as error:
        raise UsageError(f"{what} {printable(path)}: {error.strerror or error}") from None
    except UnicodeDecodeError:
        raise UsageError(f"{what} {printable(path)}: not UTF-8 text") from None


def _plan_entries(path: str) -> list[Any]:
    text = _read_text(path, "--plan")
    where = f"--plan {printable(path)}"
    if path.endswith(".toml"):
        import importlib

        try:
            tomllib: Any = importlib.import_module("tomllib")  # Python 3.11 on
        except ModuleNotFoundError:
            raise UsageError(f"{where}: TOML plans need Python 3.11 or later; use JSON") from None
        try:
            data: Any = tomllib.loads(text)
        except tomllib.TOMLDecodeError as error:
            raise UsageError(f"{where}: not valid TOML ({error})") from None
    elif path.endswith(".json"):
        try:
            data = loads(text)
        except JSONError as error:
            raise UsageError(f"{where}: not valid JSON ({error})") from None
    else:
        raise UsageError(f"{where}: must end in .json or .toml")
    entries = data.get("queries") if isinstance(data, dict) else data
    if not isinstance(entries, list) or not entries:
        raise UsageError(f"{where}: must hold a non-empty list of queries (a 'queries' list)")
    return entries


def _crawl_queries(args: argparse.Namespace) -> list[str | CrawlQuery]:
    """Every query of the command line, in order: arguments, --queries, --plan."""
    from audioscape_async._crawl import CrawlQuery
    from audioscape_async._models import coerce_filters

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
                raise UsageError(f"{where}: must be a string or a table with a 'query' string")
            unknown = set(entry) - {"query", "filters"}
            if unknown:
                raise UsageError(f"{where}: unknown keys {', '.join(sorted(unknown))}")
            try:
                filters = coerce_filters(entry.get("filters"))
            except InvalidParameterError as error:
                raise UsageError(f"{where}: {printable(error.message)}") from None
            queries.append(CrawlQuery(entry["query"], filters))
    if not queries:
        raise UsageError("give at least one query: QUERY, --queries FILE or --plan FILE")
    return queries


async def crawl(args: argparse.Namespace) -> None:
    """`audioscape crawl`: every track of the queries to OUT, with progress and a summary."""
    from audioscape_async._ratelimit import RateLimit

    queries = _crawl_queries(args)
    filters = _filters(args)
    extra: dict[str, Any] = {}
    if args.burst is not None and args.rps is None:
        raise UsageError("--burst goes with --rps")
    if args.adaptive and args.rps is None:
        raise UsageError("--adaptive goes with --rps")
    if args.adaptive and args.redis is not None:
        raise UsageError("--adaptive is per process: it does not go with --redis")
    if args.out == "-" and args.resume:
        raise UsageError("--resume: a crawl to standard output (--out -) cannot be resumed")
    async with contextlib.AsyncExitStack() as stack:
        backend = None
        if args.redis is not None:
            from audioscape_async._redis import RedisBackend

            backend = await stack.enter_async_context(RedisBackend(args.redis))
        if args.rps is not None:
            if args.adaptive:
                print(
                    "audioscape: --adaptive is deprecated: without --rps a crawl finds the API "
                    "key's rate limit from its 429s",
                    file=sys.stderr,
                )
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)  # said above, in words
                extra["rate_limit"] = RateLimit(
                    requests_per_second=args.rps,
                    burst=args.burst if args.burst is not None else 1,
                    adaptive=args.adaptive,
                    backend=backend,
                )
        # Without --rps the crawl finds the tier; with --redis, with every process.
        learned = RateLimit.auto(backend=backend) if args.rps is None else None
        attempts = AttemptStats() if args.stats else None
        if attempts is not None:
            extra["event_hooks"] = attempts.hooks()
        progress = Progress(args.progress, sys.stderr, max_items=args.max_items)
        progress.start()
        try:
            client = await stack.enter_async_context(_open_client(args, **extra))
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
                durable=args.fsync,
                rate_limit=learned,
            )
        except BaseException:
            progress.stop()
            raise
    progress.stop(stats)
    summary = crawl_summary(stats, args.out)
    if attempts is not None:
        summary += "\n" + attempts.render()
    print(summary, file=sys.stderr if args.out == "-" else sys.stdout)
