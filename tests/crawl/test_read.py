"""`_read`: every file a crawl writes reads back to the values it had, typed, in order.

Records are written with `write_records` (the crawl's own writer) and read back
with `read_tracks`, including text a spreadsheet would take for a formula,
Unicode, numbers at their edges and rows a file should not hold; the last tests
read what a real crawl wrote, finished and unfinished.
"""

from __future__ import annotations

import gzip
import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audioscape_async import (
    CrawledTrack,
    CrawlFileError,
    InvalidParameterError,
    Track,
    read_tracks,
)
from audioscape_async._crawl._formats import FORMATS, write_records
from audioscape_async.emulator import EmulatorServer
from tests.crawl.support import MOODS, QUERY, client_for, stop_after

HAS_PYARROW = importlib.util.find_spec("pyarrow") is not None
FORMAT_FILES = {"jsonl": "t.jsonl", "jsonl.gz": "t.jsonl.gz", "csv": "t.csv", "parquet": "t.pq"}
needs_pyarrow = pytest.mark.skipif(not HAS_PYARROW, reason="pyarrow is not installed")


def _formats() -> list[Any]:
    return [pytest.param(fmt, marks=needs_pyarrow) if fmt == "parquet" else fmt for fmt in FORMATS]


def _found(number: int, text: str = "") -> CrawledTrack:
    track = Track(
        asset_id=str(1000 + number),
        name=f"{text}name {number}",
        artist=f"{text}artist",
        album=text or "album",
        duration=120.5 + number,
        genre="lo-fi",
        bpm=90.0,
        score=0.5,
    )
    return CrawledTrack(track, f"{text}query", number % 3, number + 1, number // 10 * 10, 1)


def _write(tmp_path: Path, fmt: str, found: list[CrawledTrack]) -> Path:
    path = tmp_path / FORMAT_FILES[fmt]
    with path.open("wb") as handle:
        write_records(fmt, (item.to_dict() for item in found), handle)
    return path


@pytest.mark.parametrize("fmt", _formats())
def test_every_format_reads_back_to_the_same_values(tmp_path: Path, fmt: str) -> None:
    """Typed tracks and provenance, in order, equal to what was written."""
    found = [_found(n) for n in range(250)]
    assert list(read_tracks(_write(tmp_path, fmt, found))) == found


RISKY = ["=1+2", "+SUM(A1)", "-2", "@cmd", "\tx", "\rx", "'quoted", "''two", "'", "=", "normal"]


@pytest.mark.parametrize("fmt", _formats())
@pytest.mark.parametrize("text", RISKY)
def test_text_a_spreadsheet_would_run_reads_back_as_it_was(
    tmp_path: Path, fmt: str, text: str
) -> None:
    """CSV prefixes these with one ' (never run as a formula); reading takes exactly it off."""
    found = [_found(1, text)]
    path = _write(tmp_path, fmt, found)
    if fmt == "csv" and text != "normal":
        assert f"'{text}".encode() in path.read_bytes()
    assert list(read_tracks(path)) == found


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=20), number=st.integers(0, 10**9))
def test_any_text_round_trips_through_csv(text: str, number: int) -> None:
    """Any Unicode (newlines, quotes, commas, NULs aside from CSV's own) round-trips."""
    import tempfile

    found = [_found(number % 1000, text)]
    with tempfile.TemporaryDirectory() as folder:
        path = _write(Path(folder), "csv", found)
        assert list(read_tracks(path)) == found


def test_numbers_are_never_prefixed_and_read_as_numbers(tmp_path: Path) -> None:
    """A negative or huge number is a number cell, read back as the same number."""
    item = _found(1)
    track = Track(**{**item.track.to_dict(), "duration": -1.5, "bpm": 1e300, "score": -0.0})  # type: ignore[arg-type]
    found = [CrawledTrack(track, "q", 0, 1, 0, 3)]
    path = _write(tmp_path, "csv", found)
    assert "'-1.5" not in path.read_text()
    (back,) = read_tracks(path)
    assert back == found[0]
    assert math.copysign(1, back.track.score) == -1


def test_from_dict_round_trips_to_dict_and_names_a_bad_field() -> None:
    """`CrawledTrack.from_dict(x.to_dict()) == x`; a bad field is named."""
    item = _found(7)
    assert CrawledTrack.from_dict(item.to_dict()) == item
    assert Track.from_dict(item.to_dict()) == item.track  # provenance ignored
    record = item.to_dict()
    record["query_rank"] = "7"
    with pytest.raises(InvalidParameterError, match="query_rank"):
        CrawledTrack.from_dict(record)
    with pytest.raises(InvalidParameterError, match="bpm"):
        CrawledTrack.from_dict({**item.to_dict(), "bpm": True})


@pytest.mark.parametrize(
    ("name", "content", "problem"),
    [
        ("t.jsonl", b'{"asset_id": "1"}\n', "line 1 is not a crawled track"),
        ("t.jsonl", b"not json\n", "line 1 is not a crawled track: it is not JSON"),
        ("t.jsonl.gz", b"not gzip", "not whole gzip data"),
        ("t.csv", b"a,b\n1,2\n", "its header is not a crawl's"),
        ("t.pq", b"PAR1 not really", "not a Parquet file"),
    ],
)
def test_a_file_that_is_not_a_crawls_is_a_crawl_file_error(
    tmp_path: Path, name: str, content: bytes, problem: str
) -> None:
    """Named: the file, the row or line, and what is wrong with it."""
    if name.endswith(".pq") and not HAS_PYARROW:
        pytest.skip("pyarrow is not installed")
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(CrawlFileError, match=problem) as caught:
        list(read_tracks(path))
    assert caught.value.path == str(path)


@pytest.mark.parametrize("bad", ["fast", "nan", "inf", "-inf"])
def test_a_csv_row_with_a_bad_number_is_named(tmp_path: Path, bad: str) -> None:
    """Not a number, or not a finite one (no crawl writes NaN: JSON cannot hold it)."""
    path = _write(tmp_path, "csv", [_found(1), _found(2)])
    text = path.read_text().splitlines()
    text[2] = text[2].replace("122.5", bad)
    path.write_text("\n".join(text) + "\n")
    with pytest.raises(CrawlFileError, match=rf"row 3 .*duration must be a number, got '{bad}'"):
        list(read_tracks(path))


def test_missing_files_and_bad_arguments_are_sdk_errors(tmp_path: Path) -> None:
    with pytest.raises(CrawlFileError, match=r"missing\.jsonl"):
        list(read_tracks(tmp_path / "missing.jsonl"))
    with pytest.raises(InvalidParameterError, match="out"):
        read_tracks(tmp_path / "t.xlsx")
    with pytest.raises(InvalidParameterError, match="partial=True"):
        read_tracks(tmp_path / "t.jsonl.part")
    with pytest.raises(InvalidParameterError, match="path"):
        read_tracks(42)  # type: ignore[arg-type]


def test_gzip_reads_whole_and_stops_at_a_cut(tmp_path: Path) -> None:
    """A gzip file cut short is an error, not a silently short crawl."""
    path = _write(tmp_path, "jsonl.gz", [_found(n) for n in range(500)])
    assert len(list(read_tracks(path))) == 500
    path.write_bytes(path.read_bytes()[: len(path.read_bytes()) // 2])
    with pytest.raises(CrawlFileError, match="gzip"):
        list(read_tracks(path))
    assert gzip  # the module the writer uses


# -- what a crawl wrote -------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", _formats())
async def test_a_crawls_file_reads_back_as_it_found_the_tracks(
    server: EmulatorServer, tmp_path: Path, fmt: str
) -> None:
    """Three queries into any format: the tracks and provenance the crawl found."""
    out = tmp_path / FORMAT_FILES[fmt]
    async with client_for(server) as client:
        await client.crawl_to_file(MOODS, out, max_items=150, page_size=50)
        expected: dict[str, list[str]] = {}
        for query in MOODS:
            expected[query] = [t.asset_id async for t in client.iter_tracks(query, max_items=150)]
    found = list(read_tracks(out))
    assert len({f.track.asset_id for f in found}) == len(found)
    for item in found:
        assert item.query == MOODS[item.query_index]
        assert expected[item.query][item.query_rank - 1] == item.track.asset_id
        assert item.matched_queries is not None
        assert item.matched_queries >= 1


@pytest.mark.anyio
async def test_an_unfinished_crawl_reads_on_request(server: EmulatorServer, tmp_path: Path) -> None:
    """partial=True reads OUT.part: the tracks so far, no matched_queries; OUT or the part."""
    out = tmp_path / "t.csv"

    stop = stop_after(3)

    async with client_for(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=900, on_progress=stop)
    found = list(read_tracks(out, partial=True))
    assert len(found) == 300
    assert [f.query_rank for f in found] == list(range(1, 301))
    assert all(f.matched_queries is None for f in found)
    assert list(read_tracks(out.with_name("t.csv.part"), partial=True)) == found
    with out.with_name("t.csv.part").open("ab") as handle:
        handle.write(b'{"asset_id": "cut sh')  # a kill in mid-append
    assert list(read_tracks(out, partial=True)) == found
    # A whole page written after the checkpoint's last line: a resume fetches it again.
    part = out.with_name("t.csv.part")
    lines = part.read_bytes().splitlines(keepends=True)
    part.write_bytes(b"".join(lines[:300]) + b"".join(lines[200:300]))
    assert list(read_tracks(out, partial=True)) == found
