"""A crawl's tracks as Arrow record batches, for pandas, DuckDB and Polars.

One schema (the track's columns of `_formats.COLUMNS`, with their types) and one
way to cut a stream of tracks into batches of at most `batch_size` rows, shared by
`Crawl.arrow_batches` (async) and `SyncCrawl.to_arrow` (a `RecordBatchReader`,
what DuckDB and ``pyarrow.dataset`` read): memory stays bounded by a batch,
whatever the crawl's size. pyarrow is imported on first use, and its absence is
a `MissingExtraError` (`_extras`) that names the extra to install.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterable, Iterator
from contextlib import aclosing
from typing import TYPE_CHECKING, Any

from audioscape_async._extras import import_extra, require
from audioscape_async._validation import check_int_range

from ._formats import COLUMNS

if TYPE_CHECKING:
    import pyarrow

    from audioscape_async._models import Track

__all__ = [
    "TRACK_COLUMNS",
    "batches",
    "batches_async",
    "check_batch_size",
    "pyarrow_module",
    "schema",
    "to_pandas",
]

#: The columns of a crawl's Arrow batches: the track's fields.
TRACK_COLUMNS = tuple(
    (name, kind) for name, kind in COLUMNS if not name.startswith(("query", "matched"))
)

#: What needs the extra, as its message says.
_WHAT = "Arrow and pandas output"


def pyarrow_module() -> Any:
    """pyarrow, or a `MissingExtraError` saying how to install it."""
    return import_extra("pyarrow", "pandas", _WHAT)


def schema() -> pyarrow.Schema:
    """The Arrow schema of a crawl's batches."""
    pa = pyarrow_module()
    types = {"string": pa.string(), "float": pa.float64()}
    return pa.schema([(name, types[kind]) for name, kind in TRACK_COLUMNS])


def check_batch_size(batch_size: object) -> int:
    return check_int_range("batch_size", batch_size, 1)


def _batch(rows: list[Track], arrow_schema: pyarrow.Schema) -> pyarrow.RecordBatch:
    pa = pyarrow_module()
    columns = [[getattr(track, name) for track in rows] for name, _ in TRACK_COLUMNS]
    arrays = [
        pa.array(column, type=field.type)
        for column, field in zip(columns, arrow_schema, strict=True)
    ]
    return pa.RecordBatch.from_arrays(arrays, schema=arrow_schema)


def _cut(
    rows: list[Track], page: list[Track], batch_size: int, arrow_schema: pyarrow.Schema
) -> Iterator[pyarrow.RecordBatch]:
    """Add `page` to `rows`; take out each full batch."""
    rows.extend(page)
    while len(rows) >= batch_size:
        yield _batch(rows[:batch_size], arrow_schema)
        del rows[:batch_size]


def batches(pages: Iterable[list[Track]], batch_size: int) -> Iterator[pyarrow.RecordBatch]:
    """Pages of tracks, re-cut into record batches of at most `batch_size` rows."""
    arrow_schema = schema()
    rows: list[Track] = []
    for page in pages:
        yield from _cut(rows, page, batch_size, arrow_schema)
    if rows:
        yield _batch(rows, arrow_schema)


async def batches_async(
    pages: AsyncGenerator[list[Track], None], batch_size: int
) -> AsyncGenerator[pyarrow.RecordBatch, None]:
    """`batches`, from an async generator of pages (closed when this one is)."""
    arrow_schema = schema()
    rows: list[Track] = []
    async with aclosing(pages):
        async for page in pages:
            for batch in _cut(rows, page, batch_size, arrow_schema):
                yield batch
    if rows:
        yield _batch(rows, arrow_schema)


def to_pandas(record_batches: list[pyarrow.RecordBatch]) -> Any:
    """A pandas DataFrame of the batches (the crawl's schema even when there are none)."""
    pa = pyarrow_module()
    require("pandas", _WHAT)
    return pa.Table.from_batches(record_batches, schema=schema()).to_pandas()
