"""`read_tracks`: a file a crawl wrote, read back into `CrawledTrack`s.

Every format `crawl_to_file` writes (`_formats`: JSON Lines, gzipped JSON
Lines, CSV, Parquet) reads back to the values the crawl had: each track
(`Track.from_dict`, the decoder's rules) and where it was found. A CSV's text
cells lose exactly the one leading ``'`` the writer gave them (the writer
prefixes every text cell that starts with ``'``, so this is always its own),
its number cells are read as numbers, and an empty cell is a missing value.
An unfinished crawl's ``OUT.part`` reads too, on request (``partial=True``):
its tracks so far (as far as its checkpoint records them: a page written after
is one a resume fetches again), without `matched_queries`, which only the
finished file has.

Rows are read one at a time (Parquet a row group at a time): a file of a
million tracks never sits in memory whole. A row that is not a crawl's
record is a `CrawlFileError` naming the file, the row and the field.
"""

from __future__ import annotations

import io
import math
import os
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import attrs

from audioscape_async._exceptions import CrawlFileError, InvalidParameterError
from audioscape_async._models import Track

from ._files import file_errors
from ._formats import COLUMNS, choose_format

__all__ = ["CrawledTrack", "read_tracks"]

_PROVENANCE = ("query", "query_index", "query_rank", "query_offset", "matched_queries")
_KINDS = dict(COLUMNS)


@attrs.frozen
class CrawledTrack:
    """A track a crawl wrote, and where it found it.

    `query` and `query_index` name the query that found it first, `query_rank`
    its rank among that query's tracks (from 1) and `query_offset` the offset
    of its page; `matched_queries` counts the queries that found it (None in
    an unfinished crawl's part file).
    """

    track: Track
    query: str
    query_index: int
    query_rank: int
    query_offset: int
    matched_queries: int | None = None

    def to_dict(self) -> dict[str, object]:
        """The record as the crawl wrote it: the track's fields, then its provenance."""
        record: dict[str, object] = dict(self.track.to_dict())
        record.update(
            query=self.query,
            query_index=self.query_index,
            query_rank=self.query_rank,
            query_offset=self.query_offset,
            matched_queries=self.matched_queries,
        )
        return record

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> CrawledTrack:
        """A record shaped like `to_dict`'s (a line of a crawl's file); unknown keys ignored.

        A bad or missing field raises `InvalidParameterError` naming it.
        """
        if not isinstance(mapping, Mapping):
            raise InvalidParameterError(
                "record", f"must be a mapping, got {type(mapping).__name__}"
            )
        track = Track.from_dict(mapping)
        query = mapping.get("query")
        if not isinstance(query, str):
            raise InvalidParameterError("query", f"must be a string, got {query!r:.40}")
        whole = {name: _whole(mapping, name) for name in _PROVENANCE[1:4]}
        matched = mapping.get("matched_queries")
        return cls(
            track,
            query,
            whole["query_index"],
            whole["query_rank"],
            whole["query_offset"],
            None if matched is None else _whole(mapping, "matched_queries"),
        )


def _whole(mapping: Mapping[str, Any], name: str) -> int:
    value = mapping.get(name)
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
        raise InvalidParameterError(name, f"must be a whole number, got {value!r:.40}")
    return value


def read_tracks(
    path: str | os.PathLike[str], *, format: str | None = None, partial: bool = False
) -> Iterator[CrawledTrack]:
    """Every track of a file `crawl_to_file` wrote, in order, with its provenance.

    ```python
    for found in read_tracks("moods.csv"):
        print(found.query_rank, found.track.name)
    ```

    `format` is one of `crawl_to_file`'s (default: from the extension). With
    `partial`, an unfinished crawl's ``OUT.part`` is read (give `OUT` or the
    part file): the tracks written so far, `matched_queries` None.
    """
    if not isinstance(path, (str, os.PathLike)):
        raise InvalidParameterError("path", f"must be a path, got {type(path).__name__}")
    if not isinstance(partial, bool):
        raise InvalidParameterError("partial", f"must be True or False, got {partial!r:.40}")
    file = Path(os.fspath(path))
    if file.name.endswith(".part"):
        if not partial:
            raise InvalidParameterError(
                "partial",
                f"{file} is an unfinished crawl's part file: pass partial=True to read it",
            )
        return _read_part(file)
    if partial:
        return _read_part(file.with_name(file.name + ".part"))
    fmt = choose_format(file, format)
    return _read(file, fmt)


def _read_part(part: Path) -> Iterator[CrawledTrack]:
    from audioscape_async._json import JSONError, loads

    from ._checkpoint import recorded_bytes

    # What the checkpoint records: a page written after it is one a resume fetches again.
    whole = recorded_bytes(part.with_name(part.name[: -len(".part")] + ".checkpoint"))

    def rows() -> Iterator[tuple[int, Mapping[str, Any]]]:
        seen = 0
        for number, line in _lines(part, gz=False):
            seen += len(line)
            if not line.endswith(b"\n") or (whole is not None and seen > whole):
                return  # not part of the crawl yet
            try:
                record = loads(line)
            except JSONError as error:
                raise _bad(part, number, f"it is not JSON ({error})") from error
            if isinstance(record, dict) and "again" in record:
                continue  # a later query found earlier tracks again: no track of its own
            yield number, record

    return _records(part, rows(), "line")


def _read(file: Path, fmt: str) -> Iterator[CrawledTrack]:
    if fmt == "csv":
        return _records(file, _csv_rows(file), "row")
    if fmt == "parquet":
        return _records(file, _parquet_rows(file), "row")
    return _records(file, _json_rows(file, gz=fmt == "jsonl.gz"), "line")


def _records(
    file: Path, rows: Iterator[tuple[int, Mapping[str, Any]]], unit: str
) -> Iterator[CrawledTrack]:
    for number, row in rows:
        try:
            yield CrawledTrack.from_dict(row)
        except InvalidParameterError as error:
            raise _bad(file, number, error.message, unit) from error


def _bad(file: Path, number: int, problem: str, unit: str = "line") -> CrawlFileError:
    return CrawlFileError(file, f"{unit} {number} is not a crawled track: {problem}")


def _lines(file: Path, *, gz: bool) -> Iterator[tuple[int, bytes]]:
    import gzip
    import zlib

    with file_errors(file, "read it"):
        raw = open(file, "rb")  # noqa: SIM115 (closed below, after the last line)
    try:
        handle: Any = gzip.GzipFile(fileobj=raw, mode="rb") if gz else raw
        number = 0
        while True:
            with file_errors(file, "read it"):
                try:
                    line = handle.readline()
                except (EOFError, zlib.error, gzip.BadGzipFile) as error:
                    raise CrawlFileError(file, f"it is not whole gzip data ({error})") from error
            if not line:
                return
            number += 1
            yield number, line
    finally:
        raw.close()


def _json_rows(file: Path, *, gz: bool) -> Iterator[tuple[int, Mapping[str, Any]]]:
    from audioscape_async._json import JSONError, loads

    for number, line in _lines(file, gz=gz):
        try:
            yield number, loads(line)
        except JSONError as error:
            raise _bad(file, number, f"it is not JSON ({error})") from error


def _csv_rows(file: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    import csv

    with file_errors(file, "read it"):
        raw = open(file, "rb")  # noqa: SIM115 (closed below)
    try:
        text = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        reader = csv.reader(text)
        with file_errors(file, "read it"):
            header = next(reader, None)
        names = [name for name, _ in COLUMNS]
        if header != names:
            raise CrawlFileError(
                file, f"its header is not a crawl's ({', '.join(names[:3])}, ...): {header!r:.80}"
            )
        number = 1
        while True:
            with file_errors(file, "read it"):
                try:
                    cells = next(reader, None)
                except (csv.Error, UnicodeDecodeError) as error:
                    raise _bad(file, number + 1, str(error), "row") from error
            if cells is None:
                return
            number += 1
            if len(cells) != len(names):
                raise _bad(file, number, f"it has {len(cells)} cells, not {len(names)}", "row")
            yield (
                number,
                {
                    name: _cell(file, number, name, cell)
                    for name, cell in zip(names, cells, strict=True)
                },
            )
    finally:
        raw.close()


def _cell(file: Path, number: int, name: str, cell: str) -> object:
    """One CSV cell as the value the crawl had (see the module docstring)."""
    kind = _KINDS[name]
    if kind == "string":
        return cell[1:] if cell.startswith("'") else cell
    if cell == "":
        return None
    try:
        value = int(cell) if kind == "int" else float(cell)
    except ValueError:
        value = None
    if value is None or not math.isfinite(value):
        raise _bad(file, number, f"{name} must be a number, got {cell!r:.40}", "row")
    return value


def _parquet_rows(file: Path) -> Iterator[tuple[int, Mapping[str, Any]]]:
    import pyarrow.parquet as pq

    with file_errors(file, "read it"):
        try:
            parquet = pq.ParquetFile(file)
        except Exception as error:  # pyarrow's own errors: ArrowInvalid and kin
            raise CrawlFileError(file, f"it is not a Parquet file ({error})") from error
    number = 0
    try:
        for batch in parquet.iter_batches():
            for row in batch.to_pylist():
                number += 1
                yield number, row
    except CrawlFileError:
        raise
    except Exception as error:
        raise CrawlFileError(file, f"cannot read row {number + 1} ({error})") from error
    finally:
        parquet.close()
