"""`_formats`: which format a crawl writes, and that each one holds every record, in order.

The records here are written straight through `write_records` and read back with the
format's own reader, so a format that drops a column, reorders records or differs
from one run to the next fails here, without a crawl around it. The last tests go
through `crawl_to_file` against the emulator: the format is checked before any request.
"""

from __future__ import annotations

import csv
import gzip
import importlib.util
import io
import json
import sys
from pathlib import Path
from typing import Any

import pytest

from audioscape_async import AudioScapeError, InvalidParameterError
from audioscape_async._crawl._formats import COLUMNS, FORMATS, choose_format, write_records
from audioscape_async.emulator import EmulatorServer
from tests.crawl.support import QUERY, client_for, read_records

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None


def _records(count: int) -> list[dict[str, Any]]:
    return [
        {
            "asset_id": str(1000 + index),
            "name": f'Track, "{index}"\nsecond line',
            "artist": "Zoë",
            "album": "Roads",
            "duration": 180.5 + index,
            "genre": "synthwave",
            "bpm": 110.0,
            "score": 0.9,
            "query": "night drive",
            "query_index": 0,
            "query_rank": index,
            "query_offset": index,
            "matched_queries": 1,
        }
        for index in range(count)
    ]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("tracks.jsonl", "jsonl"),
        ("tracks", "jsonl"),
        ("tracks.json", "jsonl"),
        ("TRACKS.JSONL.GZ", "jsonl.gz"),
        ("tracks.ndjson.gz", "jsonl.gz"),
        ("tracks.json.gz", "jsonl.gz"),
        ("tracks.CSV", "csv"),
        ("tracks.ndjson", "jsonl"),
    ],
)
def test_the_format_follows_the_extension(name: str, expected: str) -> None:
    """Without `format=`, the output's extension (any case) decides; none is JSON Lines."""
    assert choose_format(Path(name), None) == expected


def test_an_explicit_format_wins_over_the_extension() -> None:
    """`format=` is used whatever the file is called; with no file, JSON Lines."""
    assert choose_format(Path("tracks.csv"), "jsonl.gz") == "jsonl.gz"
    assert choose_format(None, None) == "jsonl"


def test_an_unknown_format_lists_the_known_ones() -> None:
    """A typo in `format=` is an `InvalidParameterError` naming every format."""
    with pytest.raises(InvalidParameterError, match=r"^invalid format: must be one of ") as caught:
        choose_format(Path("tracks.jsonl"), "json")
    for name in FORMATS:
        assert name in str(caught.value)


def test_parquet_without_pyarrow_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    """Asking for Parquet without pyarrow fails before any request, with the pip line."""
    monkeypatch.setitem(sys.modules, "pyarrow", None)  # import fails, as where it is missing
    with pytest.raises(AudioScapeError, match=r"pip install 'audioscape-async\[parquet\]'"):
        choose_format(Path("tracks.parquet"), None)


def test_jsonl_holds_one_record_a_line_in_order() -> None:
    """Every record, in order, one JSON object per line, with every field as given."""
    records = _records(3)
    out = io.BytesIO()
    write_records("jsonl", records, out)
    lines = out.getvalue().splitlines()
    assert [json.loads(line) for line in lines] == records


def test_gzipped_jsonl_is_the_same_lines_and_the_same_bytes_each_time() -> None:
    """jsonl.gz unpacks to the JSON lines, and two runs give identical bytes (no mtime)."""
    records = _records(5)
    first, second, plain = io.BytesIO(), io.BytesIO(), io.BytesIO()
    write_records("jsonl.gz", records, first)
    write_records("jsonl.gz", records, second)
    write_records("jsonl", records, plain)
    assert gzip.decompress(first.getvalue()) == plain.getvalue()
    assert first.getvalue() == second.getvalue()


def test_csv_has_the_columns_in_order_and_survives_commas_quotes_and_newlines() -> None:
    """A header row of `COLUMNS`, then one row per record that reads back to the same text."""
    records = _records(2)
    out = io.BytesIO()
    write_records("csv", records, out)
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"), newline="")))
    assert rows[0] == [name for name, _ in COLUMNS]
    assert len(rows) == 3
    assert rows[1][1] == records[0]["name"]
    assert rows[2][0] == "1001"
    assert rows[1][2] == "Zoë"


def test_csv_leaves_a_missing_field_empty_and_the_handle_open() -> None:
    """A record without a column gets an empty cell; the caller's handle is not closed."""
    out = io.BytesIO()
    write_records("csv", [{"asset_id": "7"}], out)
    assert not out.closed
    rows = list(csv.reader(io.StringIO(out.getvalue().decode("utf-8"))))
    assert rows[1] == ["7"] + [""] * (len(COLUMNS) - 1)


@pytest.mark.skipif(not HAS_PYARROW, reason="needs the parquet extra")
def test_parquet_has_the_typed_columns_across_row_groups() -> None:
    """Parquet holds every record (across more than one row group) with the declared types."""
    import pyarrow.parquet as pq

    from audioscape_async._crawl import _formats

    records = _records(_formats._PARQUET_ROWS + 3)
    out = io.BytesIO()
    write_records("parquet", records, out)
    table = pq.read_table(io.BytesIO(out.getvalue()))
    assert table.column_names == [name for name, _ in COLUMNS]
    assert table.num_rows == len(records)
    assert table.column("query_rank").to_pylist()[-1] == len(records) - 1
    assert str(table.schema.field("duration").type) == "double"


@pytest.mark.parametrize("name", ["tracks.xlsx", "tracks.csv.gz", "run.2026-12-05", "out.txt"])
def test_an_extension_that_names_no_format_is_refused(name: str) -> None:
    """`.xlsx` never silently holds JSON Lines: the error names the extensions and formats."""
    with pytest.raises(InvalidParameterError, match=r"^invalid out: its extension ") as caught:
        choose_format(Path(name), None)
    message = str(caught.value)
    assert Path(name).suffix in message
    for suffix in (".jsonl", ".jsonl.gz", ".csv", ".parquet"):
        assert suffix in message
    assert choose_format(Path(name), "csv") == "csv"  # an explicit format= still wins


@pytest.mark.parametrize(
    "text", ['=HYPERLINK("http://evil")', "+1+1", "-2", "@SUM(A1)", "\tx", "\rx", "'quoted"]
)
def test_csv_text_cells_cannot_start_a_formula(text: str) -> None:
    """A risky first character gets one leading quote; removing exactly one gives it back."""
    import csv

    record = dict(_records(1)[0], name=text, artist=text, album="plain", query=text)
    record["bpm"] = -120.0  # numbers are never prefixed, even negative ones
    out = io.BytesIO()
    write_records("csv", [record], out)
    header, row = list(csv.reader(io.StringIO(out.getvalue().decode(), newline="")))
    cells = dict(zip(header, row, strict=True))
    for column in ("name", "artist", "query"):
        assert cells[column] == "'" + text
        assert cells[column][1:] == text  # exactly one quote comes off
    assert cells["album"] == "plain"
    assert cells["bpm"] == "-120.0"


def test_jsonl_keeps_risky_text_as_it_is() -> None:
    """Only CSV is escaped: JSON Lines holds the text unchanged."""
    record = dict(_records(1)[0], name="=1+1")
    out = io.BytesIO()
    write_records("jsonl", [record], out)
    assert b'"name":"=1+1"' in out.getvalue()


# -- through a crawl ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_standard_output_and_formats_are_checked_first(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """out='-' refuses resume and other formats; an unknown format is refused; nothing is sent."""
    async with client_for(server) as client:
        with pytest.raises(InvalidParameterError, match="cannot be resumed"):
            await client.crawl_to_file(QUERY, "-", resume=True)
        with pytest.raises(InvalidParameterError, match="JSON Lines only"):
            await client.crawl_to_file(QUERY, "-", format="csv")
        with pytest.raises(InvalidParameterError, match="must be one of jsonl"):
            await client.crawl_to_file(QUERY, tmp_path / "x", format="xml")
        with pytest.raises(InvalidParameterError, match="at least one query"):
            await client.crawl_to_file([], tmp_path / "x")
    assert server.emulator.requests == []


@pytest.mark.anyio
async def test_format_option_beats_the_extension(server: EmulatorServer, tmp_path: Path) -> None:
    """format='jsonl.gz' writes gzip whatever the file is called."""
    out = tmp_path / "tracks.data"
    async with client_for(server) as client:
        await client.crawl_to_file(QUERY, out, max_items=120, format="jsonl.gz")
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert len(read_records(out, "jsonl.gz")) == 120
