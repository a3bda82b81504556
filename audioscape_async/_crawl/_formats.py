"""The output formats of a file crawl: JSON Lines, gzipped JSON Lines, CSV and Parquet.

A crawl always writes JSON lines to ``OUT.part``; the format of ``OUT`` is made
from them once, at the end (see `_file_crawl`), so every format is as resumable as
the next and ``OUT`` never holds half a file. Each record has the track's
fields and its provenance (`COLUMNS`).

CSV is written safe to open in a spreadsheet: a text cell that starts with
``=``, ``+``, ``-``, ``@``, a tab, a carriage return or ``'`` gets one leading
``'`` (OWASP's rule against formula injection, extended to ``'`` itself so that
removing exactly one leading ``'`` from a text cell gives the value back).
Numbers are never prefixed; JSON Lines and Parquet keep text as it is.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, BinaryIO

from audioscape_async._exceptions import InvalidParameterError
from audioscape_async._extras import require

__all__ = ["COLUMNS", "FORMATS", "choose_format", "write_records"]

#: The formats, by the name `format=` / ``--format`` takes.
FORMATS = ("jsonl", "jsonl.gz", "csv", "parquet")

_SUFFIXES = {
    ".jsonl": "jsonl",
    ".ndjson": "jsonl",
    ".json": "jsonl",
    ".jsonl.gz": "jsonl.gz",
    ".ndjson.gz": "jsonl.gz",
    ".json.gz": "jsonl.gz",
    ".csv": "csv",
    ".parquet": "parquet",
    ".pq": "parquet",
}

#: Every record's fields, in this order: the track, then where it was found.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("asset_id", "string"),
    ("name", "string"),
    ("artist", "string"),
    ("album", "string"),
    ("duration", "float"),
    ("genre", "string"),
    ("bpm", "float"),
    ("score", "float"),
    ("query", "string"),
    ("query_index", "int"),
    ("query_rank", "int"),
    ("query_offset", "int"),
    ("matched_queries", "int"),
)

_PARQUET_ROWS = 65_536


#: The first characters a spreadsheet reads as a formula (or that hide one), and ``'``.
_CSV_RISKY = ("=", "+", "-", "@", "\t", "\r", "'")


def choose_format(out: Path | None, explicit: str | None) -> str:
    """The format named, else the one `out`'s extension says (JSON Lines for none).

    An extension that names no format (``.xlsx``, ``.csv.gz``) is an error
    listing the formats: a file named ``.xlsx`` holding JSON Lines helps nobody.
    """
    if explicit is not None:
        if explicit not in FORMATS:
            raise InvalidParameterError("format", f"must be one of {', '.join(FORMATS)}")
        fmt = explicit
    elif out is None or not out.suffix:
        fmt = "jsonl"
    else:
        name = out.name.lower()
        found = next((f for suffix, f in _SUFFIXES.items() if name.endswith(suffix)), None)
        if found is None:
            known = ", ".join(_SUFFIXES)
            raise InvalidParameterError(
                "out",
                f"its extension {out.suffix!r} names no output format: end it in one of "
                f"{known}, or choose one with format= ({', '.join(FORMATS)})",
            )
        fmt = found
    if fmt == "parquet":
        require("parquet", "Parquet output")
    return fmt


def write_records(fmt: str, records: Iterable[dict[str, Any]], handle: BinaryIO) -> None:
    """Write every record to `handle` in `fmt`."""
    from audioscape_async._json import dumps

    if fmt == "jsonl":
        for record in records:
            handle.write(dumps(record) + b"\n")
    elif fmt == "jsonl.gz":
        import gzip  # imported where used, as csv: the sync facade imports this module

        # mtime=0: the same tracks make the same bytes.
        with gzip.GzipFile(fileobj=handle, mode="wb", mtime=0) as packed:
            for record in records:
                packed.write(dumps(record) + b"\n")
    elif fmt == "csv":
        import csv

        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        writer = csv.writer(text)
        names = [name for name, _ in COLUMNS]
        writer.writerow(names)
        for record in records:
            writer.writerow([_csv_cell(record.get(name)) for name in names])
        text.flush()
        text.detach()
    else:
        _write_parquet(records, handle)


def _csv_cell(value: object) -> object:
    """A text cell with one leading ``'`` if a spreadsheet would read it as a formula."""
    if isinstance(value, str) and value.startswith(_CSV_RISKY):
        return "'" + value
    return value


def _write_parquet(records: Iterable[dict[str, Any]], handle: BinaryIO) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    types = {"string": pa.string(), "float": pa.float64(), "int": pa.int64()}
    schema = pa.schema([(name, types[kind]) for name, kind in COLUMNS])
    names = [name for name, _ in COLUMNS]
    with pq.ParquetWriter(handle, schema) as writer:
        for chunk in _chunks(iter(records), _PARQUET_ROWS):
            columns = {name: [record.get(name) for record in chunk] for name in names}
            writer.write_table(pa.table(columns, schema=schema))


def _chunks(records: Iterator[dict[str, Any]], size: int) -> Iterator[list[dict[str, Any]]]:
    while chunk := list(islice(records, size)):
        yield chunk
