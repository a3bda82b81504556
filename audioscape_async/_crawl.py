"""Crawls: a whole result set, with statistics, and to a file that survives a kill.

A file crawl writes to ``OUT.part`` and renames it to ``OUT`` only when the
crawl is complete, so ``OUT`` is never half-written. After every page it
appends that page's lines in one write and then atomically replaces the
checkpoint ``OUT.checkpoint`` (query, filters, page size, the offset reached,
the bytes of ``OUT.part`` that are complete). A resumed crawl cuts ``OUT.part``
back to those bytes (dropping whatever a kill left after them), reads back the
ids already written, and goes on from the offset reached: every track once.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from contextlib import AsyncExitStack, aclosing
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs
import orjson

from ._exceptions import (
    APIStatusError,
    APITimeoutError,
    AudioScapeError,
    InvalidParameterError,
    RateLimitError,
)
from ._models import Track

if TYPE_CHECKING:
    from ._pagination import FetchPage, WalkOptions

__all__ = ["Crawl", "CrawlStats"]

logger = logging.getLogger("audioscape_async")

CHECKPOINT_VERSION = 1
PART_SUFFIX = ".part"
CHECKPOINT_SUFFIX = ".checkpoint"


@attrs.define
class CrawlStats:
    """What a crawl has done so far; live while it runs, final when it ends.

    `retries` counts retries by cause (``"429"``, ``"5xx"``, ``"connection"``,
    ``"timeout"``, ``"empty_page"``: an empty page before `meta.total` asked
    again); `drift` counts inconsistencies the walk met and handled
    (``"total_changed"``, ``"short_page"``, ``"empty_page"``,
    ``"duplicate_ids"``). `complete` is True only when the result set really
    ended (or `max_items` tracks were delivered).
    """

    pages: int = 0
    tracks: int = 0
    total: int | None = None
    retries: dict[str, int] = attrs.Factory(dict)
    rate_limited: int = 0
    rate_wait_seconds: float = 0.0
    drift: dict[str, int] = attrs.Factory(dict)
    resumed_at: int | None = None
    #: Whether the result set really ended (or `max_items` was reached); see `end_reason`.
    complete: bool = False
    #: Why the walk ended: "end_of_results", "max_items", "empty_page", "error", or a
    #: `PaginationError.reason`; None while it runs (or when its loop was left early).
    end_reason: str | None = None
    started: float = attrs.field(factory=time.monotonic, repr=False)
    finished: float | None = attrs.field(default=None, repr=False)

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


@attrs.frozen
class FileCrawlPlan:
    """What identifies a file crawl; a checkpoint must match it to resume."""

    query: str
    filters: dict[str, object] | None
    page_size: int
    max_items: int | None

    def to_json(self) -> dict[str, object]:
        return {
            "query": self.query,
            "filters": self.filters,
            "page_size": self.page_size,
            "max_items": self.max_items,
        }


@attrs.frozen
class ResumePoint:
    """Where a file crawl starts: fresh, or from a checkpoint."""

    offset: int
    delivered: int
    output_bytes: int
    seen: set[str]
    complete: bool = False


def part_path(out: Path) -> Path:
    return out.with_name(out.name + PART_SUFFIX)


def checkpoint_path(out: Path) -> Path:
    return out.with_name(out.name + CHECKPOINT_SUFFIX)


def _replace_atomically(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "wb") as handle:
        handle.write(data)
    os.replace(tmp, path)


def prepare_file_crawl(
    out: Path, plan: FileCrawlPlan, *, start: int, resume: bool, overwrite: bool
) -> ResumePoint:
    """Check the files of a crawl to `out` and say where it starts."""
    part, checkpoint = part_path(out), checkpoint_path(out)
    if resume and checkpoint.exists():
        return _resume_point(out, plan, part, checkpoint)
    if resume and part.exists():
        raise AudioScapeError(
            f"cannot resume: {part} exists but its checkpoint {checkpoint} does not"
        )
    if out.exists() and not overwrite and not resume:
        raise AudioScapeError(
            f"{out} already exists; pass overwrite=True (--force) to replace it, "
            "or resume=True (--resume) to finish an interrupted crawl"
        )
    if resume and out.exists():
        logger.info("%s is complete already; nothing to resume", out)
        return ResumePoint(offset=start, delivered=0, output_bytes=0, seen=set(), complete=True)
    if not out.parent.is_dir():
        raise InvalidParameterError("out", f"directory {out.parent} does not exist")
    part.write_bytes(b"")
    return ResumePoint(offset=start, delivered=0, output_bytes=0, seen=set())


def _resume_point(out: Path, plan: FileCrawlPlan, part: Path, checkpoint: Path) -> ResumePoint:
    try:
        state = orjson.loads(checkpoint.read_bytes())
        if state.get("version") != CHECKPOINT_VERSION:
            raise ValueError(f"version {state.get('version')!r} is not {CHECKPOINT_VERSION}")
        saved = state["plan"]
        offset, delivered, size = state["offset"], state["delivered"], state["output_bytes"]
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise AudioScapeError(
            f"cannot resume: checkpoint {checkpoint} is unreadable ({error})"
        ) from error
    for key, value in plan.to_json().items():
        if saved.get(key) != value:
            raise AudioScapeError(
                f"cannot resume: the checkpoint is for {key}={saved.get(key)!r}, "
                f"not {value!r}; run the same crawl again, or start afresh"
            )
    if not part.exists() or part.stat().st_size < size:
        raise AudioScapeError(
            f"cannot resume: {part} is missing or shorter than the checkpoint records"
        )
    with open(part, "r+b") as handle:
        # Whatever a kill left after the last checkpoint goes.
        handle.truncate(size)
        handle.seek(0)
        seen = {orjson.loads(line)["asset_id"] for line in handle if line.strip()}
    logger.info("resuming crawl to %s at offset %d (%d tracks written)", out, offset, delivered)
    return ResumePoint(offset, delivered, size, seen)


class FileWriter:
    """Appends pages to ``OUT.part`` and keeps the checkpoint in step with it."""

    def __init__(self, out: Path, plan: FileCrawlPlan, point: ResumePoint) -> None:
        self._out = out
        self._part = part_path(out)
        self._checkpoint = checkpoint_path(out)
        self._plan = plan.to_json()
        self._bytes = point.output_bytes
        self._delivered = point.delivered
        self._fd = os.open(self._part, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write_page(self, tracks: list[Track], next_offset: int) -> None:
        """Append one page's tracks (one write), then record the new checkpoint."""
        data = b"".join([orjson.dumps(track.to_dict()) + b"\n" for track in tracks])
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self._bytes += len(data)
        self._delivered += len(tracks)
        self._save(next_offset)

    def finish(self) -> None:
        """Make the output whole: flush it to disk, give it its final name, drop the checkpoint."""
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.replace(self._part, self._out)
        self._checkpoint.unlink()

    def close(self) -> None:
        """Close the partial file, leaving it and its checkpoint to resume from."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def _save(self, offset: int) -> None:
        state = {
            "version": CHECKPOINT_VERSION,
            "plan": self._plan,
            "offset": offset,
            "delivered": self._delivered,
            "output_bytes": self._bytes,
        }
        _replace_atomically(self._checkpoint, orjson.dumps(state, option=orjson.OPT_INDENT_2))


async def run_file_crawl(
    batches: AsyncGenerator[tuple[list[Track], int], None],
    writer: FileWriter,
    stats: CrawlStats,
    on_progress: ProgressHook | None,
) -> CrawlStats:
    """Drive a crawl into its file; on any exit but success, leave it resumable."""
    try:
        async with aclosing(batches):
            async for tracks, next_offset in batches:
                writer.write_page(tracks, next_offset)
                if on_progress is not None:
                    on_progress(stats)
        writer.finish()
    finally:
        writer.close()
        stats.finished = time.monotonic()
    return stats
