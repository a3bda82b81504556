"""A file crawl's checkpoint and ``OUT.part``, read back: what a resume starts from.

The checkpoint (``OUT.checkpoint``) is a journal of JSON lines. Its first line,
written whole (atomically) when the crawl starts or resumes, holds the crawl's
plan (`FileCrawlPlan`: what identifies the crawl) and its state then
(`CrawlState`: each query's offset and tracks, the bytes of ``OUT.part`` that
are complete). After every page one short line is appended (`journal_line`):
the query's progress and the bytes of ``OUT.part`` now complete. So a page
costs the same whatever the plan's size, and the state is the first line
with every later line applied in turn. A kill in the middle of an append
leaves a last line without its newline: it is ignored, as is whatever of
``OUT.part`` it would have recorded. A resume refuses a checkpoint whose plan
differs, and a damaged checkpoint or part line, naming the file; it never
guesses.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import attrs

from audioscape_async._exceptions import CrawlFileError
from audioscape_async._json import JSONError, dumps, loads

from ._files import CrawlPaths, exists_no_follow, file_errors, open_no_follow, read_no_follow

__all__ = [
    "CrawlIds",
    "CrawlState",
    "FileCrawlPlan",
    "QueryProgress",
    "damaged",
    "dump_checkpoint",
    "journal_line",
    "load_checkpoint",
    "read_part",
    "recorded_bytes",
]

CHECKPOINT_VERSION = 3


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


class CrawlIds:
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


def damaged(path: Path, problem: str, cause: Exception | None = None) -> CrawlFileError:
    error = CrawlFileError(
        path,
        f"{problem}; the crawl cannot resume from it. Move it away to keep it, or start "
        "afresh with overwrite=True",
    )
    error.__cause__ = cause
    return error


def load_checkpoint(paths: CrawlPaths, plan: FileCrawlPlan) -> CrawlState:
    data = read_no_follow(paths.checkpoint)
    first, _, rest = data.partition(b"\n")
    try:
        saved = loads(first)
    except JSONError as error:
        try:  # an earlier version's checkpoint: one JSON document over many lines
            saved, rest = loads(data), b""
        except JSONError:
            raise damaged(paths.checkpoint, f"it is not JSON ({error})", error) from error
    if not isinstance(saved, dict) or saved.get("version") != CHECKPOINT_VERSION:
        version = saved.get("version") if isinstance(saved, dict) else None
        raise damaged(
            paths.checkpoint, f"its version is {version!r}, this SDK writes {CHECKPOINT_VERSION}"
        )
    saved_plan, state = saved.get("plan"), saved.get("state")
    if not isinstance(saved_plan, dict) or not isinstance(state, dict):
        raise damaged(paths.checkpoint, "it has no plan or no state")
    difference = plan.difference(saved_plan)
    if difference is not None:
        raise CrawlFileError(
            paths.checkpoint,
            f"cannot resume: the checkpoint is for {difference}. Run the same crawl "
            "to resume it, or start afresh with overwrite=True",
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
        raise damaged(paths.checkpoint, f"its state is malformed ({error!r})", error) from error
    if len(progress) != len(plan.queries):
        raise damaged(paths.checkpoint, "its state does not cover every query")
    lines = rest.split(b"\n")
    # The last piece has no newline: empty, or an append a kill cut short (ignored).
    for number, line in enumerate(lines[:-1], 2):
        _apply(paths.checkpoint, number, line, result)
    return result


def recorded_bytes(checkpoint: Path) -> int | None:
    """The bytes of ``OUT.part`` its checkpoint records as whole (None: no readable one).

    For a reader of an unfinished crawl (`_read`): what lies past them is a page a
    resume would fetch again. No plan is checked: nothing is resumed here.
    """
    try:
        data = read_no_follow(checkpoint)
    except CrawlFileError:
        return None
    first, *journal = data.split(b"\n")
    try:
        output_bytes = loads(first)["state"]["output_bytes"]
        for line in journal[:-1]:
            output_bytes = loads(line)["output_bytes"]
    except (JSONError, KeyError, TypeError):
        return None
    return output_bytes if isinstance(output_bytes, int) else None


def _apply(path: Path, number: int, line: bytes, state: CrawlState) -> None:
    """Apply journal line `number` (from 2) to `state`."""
    try:
        entry = loads(line)
        if not isinstance(entry, dict):
            raise TypeError(f"{entry!r:.40} is not an object")
        output_bytes = _whole(entry["output_bytes"])
        if output_bytes < state.output_bytes:
            raise ValueError(f"output_bytes went back from {state.output_bytes}")
        if entry.get("finished") is True:
            state.finished = True
        else:
            index = _whole(entry["query"])
            if index >= len(state.queries):
                raise ValueError(f"query {index} is not in the plan")
            state.queries[index] = QueryProgress(
                offset=_whole(entry["offset"]),
                delivered=_whole(entry["delivered"]),
                done=_flag(entry["done"]),
            )
        state.output_bytes = output_bytes
    except (JSONError, KeyError, TypeError, ValueError) as error:
        raise damaged(path, f"line {number} is malformed ({error!r})", error) from error


def _whole(value: object) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise ValueError(f"{value!r} is not a whole number")
    return value


def _flag(value: object) -> bool:
    if not isinstance(value, bool):
        raise ValueError(f"{value!r} is not true or false")
    return value


def read_part(paths: CrawlPaths, state: CrawlState, ids: CrawlIds) -> None:
    """Cut ``OUT.part`` back to its checkpoint and read back what it holds."""
    part = paths.part
    if not exists_no_follow(part):
        if state.output_bytes == 0:
            return  # killed before the first page was written
        raise damaged(part, "it is missing, but its checkpoint records written tracks")
    current = next((i for i, q in enumerate(state.queries) if not q.done), -1)
    fd = open_no_follow(part, os.O_RDWR)
    with file_errors(part, "read it back"), os.fdopen(fd, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        if size < state.output_bytes:
            raise damaged(
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
        raise damaged(part, f"line {number} is not JSON ({error})", error) from error
    index = record.get("query_index") if isinstance(record, dict) else None
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < queries:
        raise damaged(part, f"line {number} is not a track of this crawl (no valid query_index)")
    if isinstance(record.get("asset_id"), str):
        return index, record["asset_id"], []
    again = record.get("again")
    if isinstance(again, list) and all(isinstance(item, str) for item in again):
        return index, None, again
    raise damaged(part, f"line {number} is neither a track nor an 'again' record")


def dump_checkpoint(plan: Mapping[str, object], state: CrawlState) -> bytes:
    """The checkpoint's first line: `plan` (a `FileCrawlPlan.to_json()`) and `state`."""
    return dumps({"version": CHECKPOINT_VERSION, "plan": plan, "state": state.to_json()}) + b"\n"


def journal_line(index: int, progress: QueryProgress, output_bytes: int) -> bytes:
    """One line of the checkpoint's journal: query `index`'s progress, and the part's bytes."""
    return (
        b'{"query":%d,"offset":%d,"delivered":%d,"done":%s,"output_bytes":%d}\n'
        % (index, progress.offset, progress.delivered, b"true" if progress.done else b"false",
           output_bytes)
    )  # fmt: skip
