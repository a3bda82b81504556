"""Crawls: a whole result set, with statistics, and to a file that survives a kill.

A file crawl (`crawl_to_file`) walks one query or several, one after another,
and writes every track once. While it runs it holds ``OUT.lock`` and appends
JSON lines to ``OUT.part``; after every page (appended in one write) it
atomically replaces ``OUT.checkpoint``: the base URL, the queries with their
filters, the page size, and for each query the offset reached, then the bytes
of ``OUT.part`` that are complete. A resumed crawl cuts ``OUT.part`` back to
those bytes (dropping whatever a kill left after them), reads back the ids
already written, and goes on from each query's offset: every track once.

``OUT`` appears only when the crawl is complete, made from ``OUT.part`` in
the chosen format (`_formats`) into a temporary file, fsynced and renamed. The
checkpoint is marked finished before that rename and removed after it, so a
kill anywhere in between leaves a state `resume` completes.

Provenance: each track line records the query that first found it
(`query`, `query_index`), its rank among that query's tracks (`query_rank`,
from 1) and the offset of the page that brought it (`query_offset`). When a
later query finds a track again, a small ``{"again": [...]}`` line in
``OUT.part`` says so; `matched_queries` (how many queries found the track) is
only final at the end, and is filled in when ``OUT`` is assembled.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Callable,
    Iterator,
    Mapping,
    Sequence,
)
from contextlib import AbstractAsyncContextManager, AsyncExitStack, aclosing, contextmanager
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, BinaryIO, TypeAlias

import attrs

from ._config import redact_url
from ._exceptions import (
    APIStatusError,
    APITimeoutError,
    AudioScapeError,
    CrawlFileError,
    InvalidParameterError,
    RateLimitError,
)
from ._files import (
    CrawlPaths,
    OutputLock,
    check_output_path,
    exists_no_follow,
    file_errors,
    open_no_follow,
    read_no_follow,
    replace_atomically,
    write_all,
)
from ._formats import choose_format, write_records
from ._json import JSONError, dumps, dumps_pretty, loads
from ._models import SearchFilters, Track

if TYPE_CHECKING:
    from ._pagination import FetchPage, WalkOptions

__all__ = ["Crawl", "CrawlQuery", "CrawlStats"]

logger = logging.getLogger("audioscape_async")

CHECKPOINT_VERSION = 2


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


class Crawl:
    """Every track of a search, each `asset_id` once, with live `stats`.

    Open it with ``async with`` for the streaming window: `concurrency`
    requests always in flight, each page delivered as soon as every page
    before it was, and nothing left running when the block ends:

    ```python
    async with client.crawl("chill lo-fi beats", concurrency=8) as crawl:
        async for track in crawl:
            ...
    print(crawl.stats.to_dict())
    ```

    A plain ``async for track in client.crawl(...)`` works too; it fetches in
    steps (a step waits for its slowest page before delivering).
    """

    def __init__(
        self,
        fetch: FetchPage,
        options: WalkOptions,
        stats: CrawlStats,
        on_progress: ProgressHook | None = None,
        *,
        seen: set[str] | None = None,
        delivered: int = 0,
    ) -> None:
        self._fetch = fetch
        self._options = options
        self.stats = stats
        self._on_progress = on_progress
        self._seen = seen
        self._delivered = delivered
        self._exit: AsyncExitStack | None = None
        self._ended = False  # its ``async with`` block is over: the crawl is spent
        self._window: AsyncIterator[tuple[list[Track], int]] | None = None
        self._plain: AsyncGenerator[tuple[list[Track], int], None] | None = None
        self._iterators: list[AsyncGenerator[Track, None]] = []

    async def __aenter__(self) -> Crawl:
        if self._exit is not None or self._plain is not None or self._ended:
            raise AudioScapeError("this crawl has started already; a crawl runs once")
        from ._pagination import stream_tracks

        stack = AsyncExitStack()
        self._window = await stack.enter_async_context(
            stream_tracks(
                self._fetch,
                self._options,
                stats=self.stats,
                seen=self._seen,
                delivered=self._delivered,
            )
        )
        self._exit = stack
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        stack, self._exit, self._window = self._exit, None, None
        self._ended = True
        try:
            await self._close_iterators()
        finally:
            if self.stats.finished is None:
                self.stats.finished = time.monotonic()
            if stack is not None:
                # Cancels the requests in flight and waits for them to be gone.
                await stack.__aexit__(exc_type, exc, tb)

    def __aiter__(self) -> AsyncGenerator[Track, None]:
        tracks = self._tracks()
        # Kept for aclose(): after a `break`, the loop's iterator is still suspended
        # at a yield, and left to the collector trio warns about it.
        self._iterators.append(tracks)
        return tracks

    async def _tracks(self) -> AsyncGenerator[Track, None]:
        batches = self.batches()
        async with aclosing(batches):
            async for batch in batches:
                for track in batch:
                    yield track

    def _source(self) -> AsyncIterator[tuple[list[Track], int]]:
        if self._window is not None:
            return self._window
        if self._ended:
            raise AudioScapeError("this crawl's async with block has ended; a crawl runs once")
        if self._plain is None:
            from ._pagination import walk_tracks

            self._plain = walk_tracks(
                self._fetch,
                self._options,
                stats=self.stats,
                seen=self._seen,
                delivered=self._delivered,
            )
        return self._plain

    async def batches(self) -> AsyncGenerator[list[Track], None]:
        """The crawl page by page: each page's new tracks (the sync facade's unit)."""
        source = self._source()
        try:
            async for batch, _ in source:
                if self._on_progress is not None:
                    self._on_progress(self.stats)
                yield batch
        finally:
            self.stats.finished = time.monotonic()
            if source is self._plain:
                await self._plain.aclose()

    async def _close_iterators(self) -> None:
        iterators, self._iterators = self._iterators, []
        for tracks in iterators:
            await tracks.aclose()

    async def aclose(self) -> None:
        """Stop the crawl early; nothing keeps running (an ``async with`` crawl: at its end)."""
        await self._close_iterators()
        if self._plain is not None:
            await self._plain.aclose()


# -- file crawls ---------------------------------------------------------------


@attrs.frozen
class CrawlQuery:
    """One query of a many-query crawl, with filters of its own.

    ```python
    plan = [CrawlQuery("chill lo-fi beats", filters={"genres": ["lo-fi"]}),
            CrawlQuery("sad piano")]
    await client.crawl_to_file(plan, "moods.jsonl")
    ```

    Without `filters` the query takes the `filters` given to `crawl_to_file`.
    """

    query: str
    filters: SearchFilters | Mapping[str, Any] | None = None


#: One query as `crawl_to_file` takes it.
QueryInput: TypeAlias = "str | CrawlQuery | Mapping[str, Any]"
#: What `crawl_to_file` takes as its queries: one, or a sequence of them.
Queries: TypeAlias = "QueryInput | Sequence[QueryInput]"
#: What a walk yields: the page's tracks not seen before, and the offset after the page.
Batch = tuple[list[Track], int]


@attrs.define
class QueryWalk:
    """One query's walk, as the crawl asks the client to open it."""

    index: int
    query: str
    filters: dict[str, object] | None
    offset: int
    seen: set[str]
    delivered: int
    stats: CrawlStats


#: Opens one query's walk: an async context manager around its batches.
OpenBatches = Callable[[QueryWalk], AbstractAsyncContextManager[AsyncIterator[Batch]]]


def _filters_json(filters: object) -> dict[str, object] | None:
    from ._models import coerce_filters

    checked = coerce_filters(filters)  # type: ignore[arg-type]
    return checked.to_json() if checked is not None else None


def plan_queries(queries: Queries, filters: object) -> list[tuple[str, dict[str, object] | None]]:
    """Every query of a crawl, checked, as ``(query, filters JSON)``."""
    from ._validation import check_query, reject_unknown_keys

    default = _filters_json(filters)
    items = [queries] if isinstance(queries, (str, CrawlQuery, Mapping)) else list(queries)
    if not items:
        raise InvalidParameterError("query", "give at least one query")
    plan: list[tuple[str, dict[str, object] | None]] = []
    for item in items:
        if isinstance(item, str):
            plan.append((check_query(item), default))
            continue
        if isinstance(item, Mapping):
            reject_unknown_keys("query", item, ("query", "filters"))
            item = CrawlQuery(item.get("query"), item.get("filters"))  # type: ignore[arg-type]
        if not isinstance(item, CrawlQuery):
            raise InvalidParameterError(
                "query",
                f"must be a str, a CrawlQuery or a mapping, got {type(item).__name__}",
            )
        own = _filters_json(item.filters) if item.filters is not None else default
        plan.append((check_query(item.query), own))
    return plan


@attrs.frozen
class FileCrawlPlan:
    """What identifies a file crawl; a checkpoint must match it to resume."""

    base_url: str
    queries: tuple[tuple[str, dict[str, object] | None], ...]
    page_size: int
    max_items: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "base_url": self.base_url,
            "queries": [{"query": q, "filters": f} for q, f in self.queries],
            "page_size": self.page_size,
            "max_items": self.max_items,
        }

    def difference(self, saved: Mapping[str, object]) -> str | None:
        """How a checkpoint's plan differs from this one, in words; None if it does not."""
        mine = self.to_json()
        if saved.get("base_url") != self.base_url:
            return f"base URL {saved.get('base_url')!r}, not {self.base_url!r}"
        theirs = saved.get("queries")
        ours = mine["queries"]
        assert isinstance(ours, list)
        if not isinstance(theirs, list) or len(theirs) != len(ours):
            count = len(theirs) if isinstance(theirs, list) else "?"
            return f"{count} {'query' if count == 1 else 'queries'}, not {len(ours)}"
        for number, (old, new) in enumerate(zip(theirs, ours, strict=True), 1):
            for key in ("query", "filters"):
                if not isinstance(old, Mapping) or old.get(key) != new[key]:
                    old_value = old.get(key) if isinstance(old, Mapping) else old
                    return f"query {number} {key} {old_value!r}, not {new[key]!r}"
        for key in ("page_size", "max_items"):
            if saved.get(key) != mine[key]:
                return f"{key} {saved.get(key)!r}, not {mine[key]!r}"
        return None


@attrs.define
class QueryProgress:
    """How far one query of a file crawl has got."""

    offset: int = 0
    delivered: int = 0
    done: bool = False


@attrs.define
class CrawlState:
    """A file crawl's checkpoint: each query's progress and the bytes of ``OUT.part`` done."""

    queries: list[QueryProgress]
    output_bytes: int = 0
    finished: bool = False

    def to_json(self) -> dict[str, object]:
        return {
            "queries": [attrs.asdict(progress) for progress in self.queries],
            "output_bytes": self.output_bytes,
            "finished": self.finished,
        }


class _Ids:
    """The ids written, the queries that found them again, and the running query's own ids."""

    def __init__(self) -> None:
        self.written: set[str] = set()
        self.again: dict[str, int] = {}
        self.current: set[str] = set()
        self.current_index = -1

    def seen_for(self, index: int) -> set[str]:
        """The `seen` set for query `index`'s walk (query 0's ids are the ids written)."""
        if index != self.current_index:
            self.current, self.current_index = set(), index
        return self.written if index == 0 else self.current

    def matched(self, asset_id: str) -> int:
        return 1 + self.again.get(asset_id, 0)


def _damaged(path: Path, problem: str, cause: Exception | None = None) -> CrawlFileError:
    error = CrawlFileError(
        path,
        f"{problem}; the crawl cannot resume from it. Move it away to keep it, or start "
        "afresh with overwrite=True (--force)",
    )
    error.__cause__ = cause
    return error


def _load_checkpoint(paths: CrawlPaths, plan: FileCrawlPlan) -> CrawlState:
    data = read_no_follow(paths.checkpoint)
    try:
        saved = loads(data)
    except JSONError as error:
        raise _damaged(paths.checkpoint, f"it is not JSON ({error})", error) from error
    if not isinstance(saved, dict) or saved.get("version") != CHECKPOINT_VERSION:
        version = saved.get("version") if isinstance(saved, dict) else None
        raise _damaged(
            paths.checkpoint, f"its version is {version!r}, this SDK writes {CHECKPOINT_VERSION}"
        )
    saved_plan, state = saved.get("plan"), saved.get("state")
    if not isinstance(saved_plan, dict) or not isinstance(state, dict):
        raise _damaged(paths.checkpoint, "it has no plan or no state")
    difference = plan.difference(saved_plan)
    if difference is not None:
        raise CrawlFileError(
            paths.checkpoint,
            f"cannot resume: the checkpoint is for {difference}. Run the same crawl "
            "to resume it, or start afresh with overwrite=True (--force)",
        )
    try:
        progress = [
            QueryProgress(
                offset=_whole(item["offset"]),
                delivered=_whole(item["delivered"]),
                done=_flag(item["done"]),
            )
            for item in state["queries"]
        ]
        result = CrawlState(
            progress, output_bytes=_whole(state["output_bytes"]), finished=_flag(state["finished"])
        )
    except (KeyError, TypeError, ValueError) as error:
        raise _damaged(paths.checkpoint, f"its state is malformed ({error!r})", error) from error
    if len(progress) != len(plan.queries):
        raise _damaged(paths.checkpoint, "its state does not cover every query")
    return result


def _whole(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def _read_part(paths: CrawlPaths, state: CrawlState, ids: _Ids) -> None:
    """Cut ``OUT.part`` back to its checkpoint and read back what it holds."""
    part = paths.part
    if not exists_no_follow(part):
        if state.output_bytes == 0:
            return  # killed before the first page was written
        raise _damaged(part, "it is missing, but its checkpoint records written tracks")
    current = next((i for i, q in enumerate(state.queries) if not q.done), -1)
    fd = open_no_follow(part, os.O_RDWR)
    with file_errors(part, "read it back"), os.fdopen(fd, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < state.output_bytes:
            raise _damaged(
                part, f"it has {size} bytes, fewer than the {state.output_bytes} its checkpoint "
                "records (it was changed outside the crawl)",
            )  # fmt: skip
        # Whatever a kill left after the last checkpoint goes.
        handle.truncate(state.output_bytes)
        handle.seek(0)
        ids.seen_for(current)
        for number, line in enumerate(handle, 1):
            index, track_id, again = _parse_line(part, number, line, len(state.queries))
            if track_id is not None:
                ids.written.add(track_id)
                if index == current and current > 0:
                    ids.current.add(track_id)
            for other in again:
                ids.again[other] = ids.again.get(other, 0) + 1
                if index == current:
                    ids.current.add(other)


def _parse_line(
    part: Path, number: int, line: bytes, queries: int
) -> tuple[int, str | None, list[str]]:
    try:
        record = loads(line)
    except JSONError as error:
        raise _damaged(part, f"line {number} is not JSON ({error})", error) from error
    index = record.get("query_index") if isinstance(record, dict) else None
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < queries:
        raise _damaged(part, f"line {number} is not a track of this crawl (no valid query_index)")
    if isinstance(record.get("asset_id"), str):
        return index, record["asset_id"], []
    again = record.get("again")
    if isinstance(again, list) and all(isinstance(item, str) for item in again):
        return index, None, again
    raise _damaged(part, f"line {number} is neither a track nor an 'again' record")


class _FileSink:
    """Appends pages to ``OUT.part`` and keeps the checkpoint in step with it."""

    def __init__(
        self, paths: CrawlPaths, plan: FileCrawlPlan, state: CrawlState, fmt: str, ids: _Ids
    ) -> None:
        self._paths = paths
        self._plan = plan.to_json()
        self._state = state
        self._fmt = fmt
        self._ids = ids
        self._fd = -1

    def start(self, fresh: bool) -> None:
        """Open ``OUT.part``; a fresh crawl writes its checkpoint first, then an empty part."""
        part = self._paths.part
        if fresh:
            self.save()
            with file_errors(part, "replace it"):
                part.unlink(missing_ok=True)  # a link planted there goes, not its target
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        else:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._fd = open_no_follow(part, flags)

    def write_page(self, data: bytes) -> None:
        """Append one page (one write), then record the new checkpoint."""
        if data:
            write_all(self._fd, data, self._paths.part)
            self._state.output_bytes += len(data)
        self.save()

    def save(self, *, durable: bool = False) -> None:
        state = {"version": CHECKPOINT_VERSION, "plan": self._plan, "state": self._state.to_json()}
        data = dumps_pretty(state)
        replace_atomically(
            self._paths, self._paths.checkpoint, lambda handle: handle.write(data), durable=durable
        )

    def finish(self) -> None:
        """Make OUT whole: part on disk, checkpoint marked finished, OUT assembled, both removed."""
        paths = self._paths
        if self._fd >= 0:
            with file_errors(paths.part, "flush it to disk"):
                os.fsync(self._fd)
            self.close()
        if not self._state.finished:
            self._state.finished = True
            self.save(durable=True)
        replace_atomically(
            paths,
            paths.out,
            lambda handle: write_records(self._fmt, self._records(), handle),
            durable=True,
        )
        self.cleanup()

    def cleanup(self) -> None:
        for path in (self._paths.part, self._paths.checkpoint):
            with file_errors(path, "remove it"):
                path.unlink(missing_ok=True)

    def _records(self) -> Iterator[dict[str, Any]]:
        part = self._paths.part
        if not exists_no_follow(part):
            return  # a crawl that found nothing
        fd = open_no_follow(part, os.O_RDONLY)
        with file_errors(part, "read it"), os.fdopen(fd, "rb") as handle:
            for line in handle:
                record = loads(line)
                if "asset_id" in record:
                    record["matched_queries"] = self._ids.matched(record["asset_id"])
                    yield record

    def close(self) -> None:
        """Close the partial file, leaving it and its checkpoint to resume from."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class _StreamSink:
    """JSON lines straight to a stream (standard output): no checkpoint, no `matched_queries`."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write_page(self, data: bytes) -> None:
        self._stream.write(data)
        self._stream.flush()


def _lines(records: list[dict[str, Any]], index: int, again: list[str], *, stream: bool) -> bytes:
    data = b"".join([dumps(record) + b"\n" for record in records])
    if again and not stream:
        data += dumps({"again": again, "query_index": index}) + b"\n"
    return data


def _roll_up(stats: CrawlStats, ids: _Ids) -> None:
    """The crawl's totals from its queries' statistics."""
    queries = stats.queries
    stats.pages = sum(q.pages for q in queries)
    stats.tracks = len(ids.written)
    stats.overlap = sum(q.overlap for q in queries)
    stats.rate_limited = sum(q.rate_limited for q in queries)
    totals = [q.total for q in queries if q.total is not None]
    stats.total = sum(totals) if totals else None
    for name in ("retries", "drift"):
        merged: dict[str, int] = {}
        for query in queries:
            for key, count in getattr(query, name).items():
                merged[key] = merged.get(key, 0) + count
        setattr(stats, name, merged)


async def _drive(
    plan: FileCrawlPlan,
    state: CrawlState,
    ids: _Ids,
    open_batches: OpenBatches,
    sink: _FileSink | _StreamSink,
    stats: CrawlStats,
    on_progress: ProgressHook | None,
) -> None:
    """Walk each unfinished query in turn, writing each page's new tracks as it comes."""
    stream = isinstance(sink, _StreamSink)
    for index, (query, filters) in enumerate(plan.queries):
        progress = state.queries[index]
        if progress.done:
            continue
        qstats = stats.queries[index]
        walk = QueryWalk(
            index, query, filters, progress.offset, ids.seen_for(index), progress.delivered, qstats
        )
        async with open_batches(walk) as batches:
            async for fresh, offset_after in batches:
                records: list[dict[str, Any]] = []
                again: list[str] = []
                for track in fresh:
                    progress.delivered += 1
                    if index > 0:
                        if track.asset_id in ids.written:
                            again.append(track.asset_id)
                            ids.again[track.asset_id] = ids.again.get(track.asset_id, 0) + 1
                            continue
                        ids.written.add(track.asset_id)
                    record: dict[str, Any] = track.to_dict()
                    record["query"] = query
                    record["query_index"] = index
                    record["query_rank"] = progress.delivered
                    record["query_offset"] = progress.offset
                    records.append(record)
                progress.offset = offset_after
                qstats.overlap += len(again)
                sink.write_page(_lines(records, index, again, stream=stream))
                _roll_up(stats, ids)
                if on_progress is not None:
                    on_progress(stats)
        if not qstats.complete:
            # The walk ended before its result set did (a persistent empty page):
            # the query stays open, for a resume to try again.
            logger.warning(
                "query %d (%r) ended at offset %d before its result set did (%s); "
                "resume the crawl to try again",
                index, query, progress.offset, qstats.end_reason,
            )  # fmt: skip
            continue
        progress.done = True
        if isinstance(sink, _FileSink):
            sink.save()
    _roll_up(stats, ids)
    stats.complete = all(progress.done for progress in state.queries)
    stats.end_reason = next(
        (q.end_reason for q in stats.queries if not q.complete and q.end_reason), None
    ) or ("end_of_results" if stats.complete else None)


async def run_crawl_to_file(
    open_batches: OpenBatches,
    queries: Queries,
    out: str | os.PathLike[str],
    *,
    base_url: object,
    filters: object,
    page_size: int,
    max_items: int | None,
    concurrency: int,
    resume: bool,
    overwrite: bool,
    format: str | None,
    on_progress: ProgressHook | None,
) -> CrawlStats:
    """`AsyncClient.crawl_to_file`: check everything, lock, resume or start, drive, finish."""
    from ._constants import MAX_CONCURRENCY
    from ._validation import check_int_range, check_limit, check_max_items

    if not isinstance(out, (str, os.PathLike)):
        raise InvalidParameterError("out", f"must be a path or '-', got {type(out).__name__}")
    if on_progress is not None and not callable(on_progress):
        raise InvalidParameterError(
            "on_progress", f"must be a function of the stats, got {type(on_progress).__name__}"
        )
    if not isinstance(queries, (str, CrawlQuery, Mapping, Sequence)):
        raise InvalidParameterError(
            "query", f"must be a query or a list of queries, got {type(queries).__name__}"
        )
    plan = FileCrawlPlan(
        base_url=redact_url(str(base_url)),  # a checkpoint holds no secret
        queries=tuple(plan_queries(queries, filters)),
        page_size=check_limit("page_size", page_size),
        max_items=check_max_items(max_items),
    )
    check_int_range("concurrency", concurrency, 1, MAX_CONCURRENCY)
    to_stdout = os.fspath(out) == "-"
    if to_stdout and resume:
        raise InvalidParameterError("resume", "a crawl to standard output cannot be resumed")
    fmt = choose_format(None if to_stdout else Path(os.fspath(out)), format)
    if to_stdout and fmt != "jsonl":
        raise InvalidParameterError("format", "standard output gets JSON Lines only")
    stats = CrawlStats(queries=[CrawlStats(query=q) for q, _ in plan.queries])
    ids = _Ids()
    state = CrawlState([QueryProgress() for _ in plan.queries])
    if to_stdout:
        try:
            await _drive(
                plan, state, ids, open_batches, _StreamSink(sys.stdout.buffer), stats, on_progress
            )
        finally:
            stats.finished = time.monotonic()
        return stats

    paths = CrawlPaths(check_output_path(out))
    lock = OutputLock(paths)
    lock.acquire()
    try:
        paths.remove_stale_temps()
        # A resume of a crawl whose OUT is whole and whose checkpoint is gone: nothing
        # says which crawl made OUT, so this one is not claimed to have written it.
        already = resume and exists_no_follow(paths.out) and not exists_no_follow(paths.checkpoint)
        fresh, state = _prepare(paths, plan, state, ids, resume=resume, overwrite=overwrite)
        sink = _FileSink(paths, plan, state, fmt, ids)
        if state.finished:
            # Killed after the checkpoint said finished: OUT is there, or is made now.
            if not exists_no_follow(paths.out) or exists_no_follow(paths.part):
                sink.finish()
            sink.cleanup()
            _restore_stats(stats, state, ids)
            stats.complete = True
            stats.end_reason = "already_complete" if already else "end_of_results"
            stats.finished = stats.started
            return stats
        _restore_stats(stats, state, ids)
        sink.start(fresh)
        try:
            await _drive(plan, state, ids, open_batches, sink, stats, on_progress)
            if stats.complete:
                sink.finish()
        finally:
            sink.close()
            stats.finished = time.monotonic()
    finally:
        lock.release()
    return stats


def _prepare(
    paths: CrawlPaths,
    plan: FileCrawlPlan,
    state: CrawlState,
    ids: _Ids,
    *,
    resume: bool,
    overwrite: bool,
) -> tuple[bool, CrawlState]:
    """Decide from the files present whether the crawl resumes, starts, or is done already."""
    has_checkpoint = exists_no_follow(paths.checkpoint)
    has_part = exists_no_follow(paths.part)
    if has_checkpoint and resume:
        state = _load_checkpoint(paths, plan)
        if not state.finished:
            _read_part(paths, state, ids)
        else:
            _read_part_if_present(paths, state, ids)
        return False, state
    if has_checkpoint and not overwrite:
        raise CrawlFileError(
            paths.checkpoint,
            f"it holds an interrupted crawl of {paths.out}: finish it with resume=True "
            "(--resume), or discard it and start afresh with overwrite=True (--force)",
        )
    if has_part and not overwrite:
        raise CrawlFileError(
            paths.part,
            "it exists without a checkpoint, so it cannot be resumed: move it away, or "
            "replace it with overwrite=True (--force)",
        )
    if exists_no_follow(paths.out) and not overwrite:
        if resume:
            logger.info("%s is complete already; nothing to resume", paths.out)
            state.finished = True
            return False, state
        raise CrawlFileError(
            paths.out,
            "it already exists; pass overwrite=True (--force) to replace it, "
            "or resume=True (--resume) to finish an interrupted crawl",
        )
    return True, state


def _read_part_if_present(paths: CrawlPaths, state: CrawlState, ids: _Ids) -> None:
    if exists_no_follow(paths.part):
        _read_part(paths, state, ids)


def _restore_stats(stats: CrawlStats, state: CrawlState, ids: _Ids) -> None:
    stats.tracks = stats.resumed_tracks = len(ids.written)
    for progress, qstats in zip(state.queries, stats.queries, strict=True):
        qstats.tracks = qstats.resumed_tracks = progress.delivered
        if progress.offset or progress.delivered:
            qstats.resumed_at = progress.offset
    current = next((q for q in state.queries if not q.done and (q.offset or q.delivered)), None)
    if current is not None:
        stats.resumed_at = current.offset
    elif any(q.done for q in state.queries) and not state.finished:
        stats.resumed_at = 0
