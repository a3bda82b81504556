"""`_arrow`: a crawl straight into Arrow and pandas, in batches of bounded size."""

from __future__ import annotations

import sys

import pytest

pa = pytest.importorskip("pyarrow")

from audioscape_async import AudioScapeError, Client, InvalidParameterError  # noqa: E402
from audioscape_async.emulator import EmulatorServer  # noqa: E402
from tests.crawl.support import QUERY, client_for, walked_ids  # noqa: E402

TRACK_FIELDS = ["asset_id", "name", "artist", "album", "duration", "genre", "bpm", "score"]


@pytest.mark.anyio
async def test_arrow_batches_cut_the_crawl_into_batches_of_at_most_the_size(
    server: EmulatorServer,
) -> None:
    """1,000 tracks in batches of 300: 300, 300, 300, 100, the crawl's tracks in its order."""
    expected = await walked_ids(server, max_items=1_000)
    async with (
        client_for(server) as client,
        client.crawl(QUERY, max_items=1_000, concurrency=4) as crawl,
    ):
        batches = [batch async for batch in crawl.arrow_batches(batch_size=300)]
    assert [batch.num_rows for batch in batches] == [300, 300, 300, 100]
    assert batches[0].schema.names == TRACK_FIELDS
    assert batches[0].schema.field("bpm").type == pa.float64()
    assert [v for batch in batches for v in batch.column("asset_id").to_pylist()] == expected
    assert crawl.stats.tracks == 1_000


@pytest.mark.anyio
async def test_to_pandas_is_one_row_per_track(server: EmulatorServer) -> None:
    pytest.importorskip("pandas")
    async with client_for(server) as client:
        frame = await client.crawl(QUERY, max_items=450).to_pandas()
    assert list(frame.columns) == TRACK_FIELDS
    assert len(frame) == 450
    assert frame["asset_id"].is_unique


def test_a_sync_crawl_is_a_record_batch_reader_duckdb_reads(big_server: EmulatorServer) -> None:
    """`Client.crawl(...).to_arrow()`: a RecordBatchReader, streamed into DuckDB."""
    duckdb = pytest.importorskip("duckdb")
    big_server.emulator.reset()
    with Client(big_server.api_key, base_url=big_server.url) as client:
        reader = client.crawl(QUERY, max_items=700, concurrency=4).to_arrow(batch_size=200)
        assert isinstance(reader, pa.RecordBatchReader)
        assert reader.schema.names == TRACK_FIELDS
        rows = duckdb.sql("SELECT count(*), count(DISTINCT asset_id) FROM reader").fetchall()
        assert rows == [(700, 700)]
        frame = client.crawl(QUERY, max_items=250).to_pandas()
    assert len(frame) == 250


def test_bad_batch_sizes_and_a_missing_pyarrow_are_sdk_errors(
    big_server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    with Client(big_server.api_key, base_url=big_server.url) as client:
        with pytest.raises(InvalidParameterError, match="batch_size"):
            client.crawl(QUERY, max_items=10).to_arrow(batch_size=0)
        monkeypatch.setitem(sys.modules, "pyarrow", None)
        with pytest.raises(AudioScapeError, match=r"audioscape-async\[pandas\]"):
            client.crawl(QUERY, max_items=10).to_arrow()
