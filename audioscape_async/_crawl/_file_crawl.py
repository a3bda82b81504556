"""The crawl to a file that survives a kill: lock, checkpoint, resume, assemble.

A file crawl (`crawl_to_file`) walks one query or several, one after another,
and writes every track once. While it runs it holds ``OUT.lock`` and appends
JSON lines to ``OUT.part``; ``OUT.checkpoint`` (`_checkpoint`) starts with the
base URL, the queries with their filters, the page size and each query's
progress, and after every page (appended in one write) one line is appended
to it: that query's offset reached, and the bytes of ``OUT.part`` that are
complete. A page costs the same however many queries the crawl has. A
resumed crawl cuts ``OUT.part`` back to those bytes (dropping whatever a kill
left after them), reads back the ids already written, and goes on from each
query's offset: every track once.

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

import os
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from pathlib import Path
from typing import Any, BinaryIO

import attrs

from audioscape_async._config import redact_url
from audioscape_async._exceptions import CrawlFileError, InvalidParameterError
from audioscape_async._json import dumps, loads
from audioscape_async._logs import logger
from audioscape_async._models import Track

from ._checkpoint import (
    CrawlIds,
    CrawlState,
    FileCrawlPlan,
    QueryProgress,
    dump_checkpoint,
    journal_line,
    load_checkpoint,
    read_part,
)
from ._crawl import CrawlQuery, Queries, plan_queries
from ._files import (
    CrawlPaths,
    OutputLock,
    check_output_path,
    exists_no_follow,
    file_errors,
    open_no_follow,
    replace_atomically,
    write_all,
)
from ._formats import choose_format, write_records
from ._stats import CrawlStats, ProgressHook

__all__ = ["Batch", "OpenBatches", "QueryWalk", "run_crawl_to_file"]

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


class _FileSink:
    """Appends pages to ``OUT.part`` and keeps the checkpoint's journal in step with it.

    With `durable`, each page is on disk before the journal says so, and the
    journal line before the next page is asked for (fsync of both): a power cut
    then loses at most the page in flight. Without, a killed process loses
    nothing; a power cut may cost a resume (`_checkpoint`).
    """

    def __init__(
        self,
        paths: CrawlPaths,
        plan: FileCrawlPlan,
        state: CrawlState,
        fmt: str,
        ids: CrawlIds,
        *,
        durable: bool = False,
    ) -> None:
        self._paths = paths
        self._plan = plan.to_json()
        self._state = state
        self._fmt = fmt
        self._ids = ids
        self.durable = durable
        self._fd = -1
        self._journal = -1

    def start(self, fresh: bool) -> None:
        """Write the checkpoint's first line (the state now), then open ``OUT.part``.

        A resumed crawl's journal is folded into that line: it does not grow across
        resumes. A fresh crawl's part starts empty.
        """
        part = self._paths.part
        self.save(durable=self.durable)
        if fresh:
            with file_errors(part, "replace it"):
                part.unlink(missing_ok=True)  # a link planted there goes, not its target
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_EXCL
        else:
            flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT
        self._fd = open_no_follow(part, flags)
        self._journal = open_no_follow(self._paths.checkpoint, os.O_WRONLY | os.O_APPEND)

    def write_page(self, data: bytes, index: int, progress: QueryProgress) -> None:
        """Append one page (one write), then its line of the checkpoint's journal."""
        if data:
            write_all(self._fd, data, self._paths.part)
            self._state.output_bytes += len(data)
            if self.durable:
                with file_errors(self._paths.part, "flush it to disk"):
                    os.fsync(self._fd)
        self.record(index, progress)

    def record(self, index: int, progress: QueryProgress) -> None:
        """Append query `index`'s progress to the checkpoint's journal."""
        line = journal_line(index, progress, self._state.output_bytes)
        write_all(self._journal, line, self._paths.checkpoint)
        if self.durable:
            with file_errors(self._paths.checkpoint, "flush it to disk"):
                os.fsync(self._journal)

    def save(self, *, durable: bool = False) -> None:
        """Replace the checkpoint with one line: the state now (journal folded in)."""
        data = dump_checkpoint(self._plan, self._state)
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
        """Close the partial file and the journal, leaving both to resume from."""
        for name in ("_fd", "_journal"):
            fd = getattr(self, name)
            if fd >= 0:
                setattr(self, name, -1)
                os.close(fd)


class _StreamSink:
    """JSON lines straight to a stream (standard output): no checkpoint, no `matched_queries`."""

    def __init__(self, stream: BinaryIO) -> None:
        self._stream = stream

    def write_page(self, data: bytes, index: int, progress: QueryProgress) -> None:
        self._stream.write(data)
        self._stream.flush()


def _lines(records: list[dict[str, Any]], index: int, again: list[str], *, stream: bool) -> bytes:
    data = b"".join([dumps(record) + b"\n" for record in records])
    if again and not stream:
        data += dumps({"again": again, "query_index": index}) + b"\n"
    return data


class _RollUp:
    """The crawl's totals from its queries' statistics, in time independent of their number.

    Queries are walked one after another: those before the current one are
    folded once into `base` when the walk moves on (`fold`); each page then
    adds only the current query's figures (`apply`).
    """

    _COUNTS = ("pages", "overlap", "rate_limited")

    def __init__(self) -> None:
        self.base = CrawlStats()
        self.totals = 0  # the sum of the known totals folded in
        self.known = 0  # how many folded queries had a total

    def fold(self, query: CrawlStats) -> None:
        for name in self._COUNTS:
            setattr(self.base, name, getattr(self.base, name) + getattr(query, name))
        for name in ("retries", "drift"):
            merged = getattr(self.base, name)
            for key, count in getattr(query, name).items():
                merged[key] = merged.get(key, 0) + count
        if query.total is not None:
            self.totals += query.total
            self.known += 1

    def apply(self, stats: CrawlStats, current: CrawlStats | None, ids: CrawlIds) -> None:
        """Set `stats` to the folded queries plus `current` (the query walking now)."""
        stats.tracks = len(ids.written)
        for name in self._COUNTS:
            extra = getattr(current, name) if current is not None else 0
            setattr(stats, name, getattr(self.base, name) + extra)
        for name in ("retries", "drift"):
            merged = dict(getattr(self.base, name))
            if current is not None:
                for key, count in getattr(current, name).items():
                    merged[key] = merged.get(key, 0) + count
            setattr(stats, name, merged)
        known = self.known + (current is not None and current.total is not None)
        extra = current.total if current is not None and current.total is not None else 0
        stats.total = self.totals + extra if known else None


def _roll_up(stats: CrawlStats, ids: CrawlIds) -> None:
    """The crawl's totals from all its queries' statistics (at its end)."""
    roll_up = _RollUp()
    for query in stats.queries:
        roll_up.fold(query)
    roll_up.apply(stats, None, ids)


async def _drive(
    plan: FileCrawlPlan,
    state: CrawlState,
    ids: CrawlIds,
    open_batches: OpenBatches,
    sink: _FileSink | _StreamSink,
    stats: CrawlStats,
    on_progress: ProgressHook | None,
) -> None:
    """Walk each unfinished query in turn, writing each page's new tracks as it comes."""
    stream = isinstance(sink, _StreamSink)
    roll_up = _RollUp()
    for index, (query, filters) in enumerate(plan.queries):
        progress = state.queries[index]
        qstats = stats.queries[index]
        if index:
            roll_up.fold(stats.queries[index - 1])
        if progress.done:
            continue
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
                data = _lines(records, index, again, stream=stream)
                if isinstance(sink, _FileSink) and sink.durable:
                    # Two fsyncs a page: in a worker thread, so that a slow disk does not
                    # hold the requests in flight (a cancellation waits for the write).
                    import anyio

                    await anyio.to_thread.run_sync(sink.write_page, data, index, progress)
                else:
                    sink.write_page(data, index, progress)
                roll_up.apply(stats, qstats, ids)
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
            sink.record(index, progress)
    _roll_up(stats, ids)
    stats.complete = all(progress.done for progress in state.queries)
    stats.end_reason = _end_reason(stats)


def _end_reason(stats: CrawlStats) -> str | None:
    """The crawl's reason: the first open query's, else max_items if a query stopped there."""
    reasons = [query.end_reason for query in stats.queries]
    unfinished = [query.end_reason for query in stats.queries if not query.complete]
    if unfinished:
        return next((reason for reason in unfinished if reason), None)
    return "max_items" if "max_items" in reasons else "end_of_results"


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
    durable: bool = False,
) -> CrawlStats:
    """`AsyncClient.crawl_to_file`: check everything, lock, resume or start, drive, finish."""
    from audioscape_async._constants import MAX_CONCURRENCY
    from audioscape_async._validation import check_int_range, check_limit, check_max_items

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
    if not isinstance(durable, bool):
        raise InvalidParameterError("durable", f"must be True or False, got {durable!r:.40}")
    to_stdout = os.fspath(out) == "-"
    if to_stdout and resume:
        raise InvalidParameterError("resume", "a crawl to standard output cannot be resumed")
    fmt = choose_format(None if to_stdout else Path(os.fspath(out)), format)
    if to_stdout and fmt != "jsonl":
        raise InvalidParameterError("format", "standard output gets JSON Lines only")
    stats = CrawlStats(queries=[CrawlStats(query=q) for q, _ in plan.queries])
    ids = CrawlIds()
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
        sink = _FileSink(paths, plan, state, fmt, ids, durable=durable)
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
    ids: CrawlIds,
    *,
    resume: bool,
    overwrite: bool,
) -> tuple[bool, CrawlState]:
    """Decide from the files present whether the crawl resumes, starts, or is done already."""
    has_checkpoint = exists_no_follow(paths.checkpoint)
    has_part = exists_no_follow(paths.part)
    if has_checkpoint and resume:
        state = load_checkpoint(paths, plan)
        if not state.finished:
            read_part(paths, state, ids)
        else:
            _read_part_if_present(paths, state, ids)
        return False, state
    if has_checkpoint and not overwrite:
        raise CrawlFileError(
            paths.checkpoint,
            f"it holds an interrupted crawl of {paths.out}: finish it with resume=True, "
            "or discard it and start afresh with overwrite=True",
        )
    if has_part and not overwrite:
        raise CrawlFileError(
            paths.part,
            "it exists without a checkpoint, so it cannot be resumed: move it away, or "
            "replace it with overwrite=True",
        )
    if exists_no_follow(paths.out) and not overwrite:
        if resume:
            logger.info("%s is complete already; nothing to resume", paths.out)
            state.finished = True
            return False, state
        raise CrawlFileError(
            paths.out,
            "it already exists; pass overwrite=True to replace it, "
            "or resume=True to finish an interrupted crawl",
        )
    return True, state


def _read_part_if_present(paths: CrawlPaths, state: CrawlState, ids: CrawlIds) -> None:
    if exists_no_follow(paths.part):
        read_part(paths, state, ids)


def _restore_stats(stats: CrawlStats, state: CrawlState, ids: CrawlIds) -> None:
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
