"""Crawls to a file: every track once with its provenance, resumed exactly after any kill."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import pytest

from audioscape_async import Client, CrawlStats
from audioscape_async.emulator import EmulatorServer, Faults
from tests.crawl.support import (
    MOODS,
    QUERY,
    QUICK,
    client_for,
    listing,
    read_checkpoint,
    read_records,
    walked_ids,
)


@pytest.mark.anyio
async def test_crawl_to_file_resumes_exactly(server: EmulatorServer, tmp_path: Path) -> None:
    """A crawl to a file stopped half-way and resumed writes every track once, in order."""
    out = tmp_path / "tracks.jsonl"
    expected = await walked_ids(server, max_items=2_500)

    class Stop(Exception):
        pass

    def stop_half_way(stats: CrawlStats) -> None:
        if stats.pages == 12:
            raise Stop

    async with client_for(server) as client:
        with pytest.raises(Stop):
            await client.crawl_to_file(
                QUERY, out, max_items=2_500, concurrency=4, on_progress=stop_half_way
            )
        assert not out.exists()
        assert out.with_name("tracks.jsonl.part").exists()
        assert out.with_name("tracks.jsonl.checkpoint").exists()
        # A torn line after the checkpoint, as a kill in mid-write would leave.
        part = out.with_name("tracks.jsonl.part")
        part.write_bytes(part.read_bytes() + b'{"asset_id": "12')
        stats = await client.crawl_to_file(QUERY, out, max_items=2_500, concurrency=4, resume=True)
    lines = out.read_bytes().splitlines()
    assert [orjson.loads(line)["asset_id"] for line in lines] == expected
    assert stats.resumed_at == 1_200
    assert not out.with_name("tracks.jsonl.part").exists()
    assert not out.with_name("tracks.jsonl.checkpoint").exists()


@pytest.mark.anyio
async def test_crawl_to_file_refuses_to_clobber_or_mix(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """An existing output needs overwrite; a checkpoint of another query cannot be resumed."""
    from audioscape_async import AudioScapeError

    out = tmp_path / "tracks.jsonl"
    async with client_for(server) as client:
        await client.crawl_to_file(QUERY, out, max_items=150)
        with pytest.raises(AudioScapeError, match="already exists"):
            await client.crawl_to_file(QUERY, out, max_items=150)
        stats = await client.crawl_to_file(QUERY, out, max_items=150, overwrite=True)
        assert stats.tracks == 150

        other = tmp_path / "other.jsonl"

        def stop(stats: CrawlStats) -> None:
            raise KeyboardInterrupt

        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, other, max_items=500, on_progress=stop)
        with pytest.raises(AudioScapeError, match="the checkpoint is for query"):
            await client.crawl_to_file("upbeat summer vibes", other, max_items=500, resume=True)


SUFFIX = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "csv": ".csv", "parquet": ".parquet"}


async def _expected_provenance(
    server: EmulatorServer, queries: list[str], max_items: int
) -> dict[str, tuple[int, int, int]]:
    """asset id -> (first query index, rank there, how many queries matched), from the SDK."""
    found: dict[str, tuple[int, int, int]] = {}
    for index, query in enumerate(queries):
        async with client_for(server) as client:
            tracks = [t async for t in client.iter_tracks(query, max_items=max_items)]
        for rank, track in enumerate(tracks, 1):
            first = found.get(track.asset_id)
            found[track.asset_id] = (
                (index, rank, 1) if first is None else (first[0], first[1], first[2] + 1)
            )
    return found


@pytest.mark.anyio
@pytest.mark.parametrize("fmt", ["jsonl", "jsonl.gz", "csv", "parquet"])
async def test_many_queries_write_each_track_once_with_provenance(
    server: EmulatorServer, tmp_path: Path, fmt: str
) -> None:
    """Three overlapping queries: each track once, with its first query, rank and match count."""
    if fmt == "parquet":
        pytest.importorskip("pyarrow")
    out = tmp_path / f"moods{SUFFIX[fmt]}"
    expected = await _expected_provenance(server, MOODS, 400)
    async with client_for(server) as client:
        stats = await client.crawl_to_file(MOODS, out, max_items=400, page_size=64, concurrency=4)
    records = read_records(out, fmt)
    got = {
        str(r["asset_id"]): (r["query_index"], r["query_rank"], r["matched_queries"])
        for r in records
    }
    assert len(got) == len(records)
    assert got == expected
    assert any(count > 1 for _, _, count in expected.values())
    first = records[0]
    assert first["query"] == MOODS[0]
    assert first["query_offset"] == 0
    assert listing(tmp_path) == [out.name]  # nothing left behind
    assert stats.tracks == len(expected)
    assert [q.query for q in stats.queries] == MOODS
    assert [q.tracks for q in stats.queries] == [400, 400, 400]
    assert stats.overlap == sum(count - 1 for _, _, count in expected.values())
    assert stats.pages == sum(q.pages for q in stats.queries) == 3 * 7


@pytest.mark.anyio
async def test_plan_queries_take_their_own_filters(server: EmulatorServer, tmp_path: Path) -> None:
    """A CrawlQuery's filters apply to it; a plain query takes the crawl's filters."""
    from audioscape_async import CrawlQuery

    out = tmp_path / "plan.jsonl"
    plan: list[str | CrawlQuery | dict[str, object]] = [
        CrawlQuery(MOODS[0], filters={"genres": ["lo-fi"]}),
        {"query": MOODS[2], "filters": {"genres": ["classical"]}},
        MOODS[1],
    ]
    async with client_for(server) as client:
        await client.crawl_to_file(
            plan, out, max_items=150, filters={"genres": ["ambient"]}, concurrency=2
        )
    genres: dict[int, set[object]] = {}
    for record in read_records(out):
        genres.setdefault(int(record["query_index"]), set()).add(record["genre"])  # type: ignore[call-overload]
    assert genres[0] == {"lo-fi"}
    assert genres[1] == {"classical"}
    assert genres[2] == {"ambient"}


@pytest.mark.anyio
async def test_many_query_resume_goes_on_in_each_query(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Stopped inside the second query and resumed: the same file as an uninterrupted crawl."""
    whole = tmp_path / "whole.jsonl"
    out = tmp_path / "moods.jsonl"

    class Stop(Exception):
        pass

    def stop_in_query_two(stats: CrawlStats) -> None:
        if stats.queries[1].pages == 2:
            raise Stop

    async with client_for(server) as client:
        await client.crawl_to_file(MOODS, whole, max_items=300, page_size=50)
        with pytest.raises(Stop):
            await client.crawl_to_file(
                MOODS, out, max_items=300, page_size=50, on_progress=stop_in_query_two
            )
        checkpoint = read_checkpoint(out.with_name("moods.jsonl.checkpoint"))
        assert [q["done"] for q in checkpoint["state"]["queries"]] == [True, False, False]
        assert checkpoint["state"]["queries"][1]["offset"] == 100
        stats = await client.crawl_to_file(MOODS, out, max_items=300, page_size=50, resume=True)
    assert out.read_bytes() == whole.read_bytes()
    assert stats.resumed_at == 100
    assert stats.resumed_tracks > 300
    assert stats.queries[0].pages == 0  # done before the resume: not asked again
    assert stats.queries[1].pages == 4


@pytest.mark.anyio
async def test_a_kill_during_the_first_page_resumes(server: EmulatorServer, tmp_path: Path) -> None:
    """Cancelled during the first page: a checkpoint and an empty part, which resume finishes."""
    import anyio

    out = tmp_path / "tracks.jsonl"
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.5))
    async with client_for(server) as client:
        with anyio.move_on_after(0.1):
            await client.crawl_to_file(QUERY, out, max_items=300)
        assert out.with_name("tracks.jsonl.checkpoint").exists()
        assert out.with_name("tracks.jsonl.part").read_bytes() == b""
        server.emulator.set_faults(None)
        stats = await client.crawl_to_file(QUERY, out, max_items=300, resume=True)
    assert stats.tracks == 300
    assert len(read_records(out)) == 300


@pytest.mark.anyio
@pytest.mark.parametrize("out_there", [True, False], ids=["after-rename", "before-rename"])
async def test_a_kill_around_the_final_rename_resumes(
    server: EmulatorServer, tmp_path: Path, out_there: bool
) -> None:
    """A checkpoint marked finished, with or without OUT: resume completes and cleans up."""
    out = tmp_path / "tracks.csv"
    part = out.with_name("tracks.csv.part")
    checkpoint = out.with_name("tracks.csv.checkpoint")
    kept: dict[str, bytes] = {}

    def keep_last(stats: CrawlStats) -> None:
        kept["part"], kept["checkpoint"] = part.read_bytes(), checkpoint.read_bytes()

    async with client_for(server) as client:
        await client.crawl_to_file(MOODS[:2], out, max_items=200, on_progress=keep_last)
        whole = out.read_bytes()
        # What a kill after the checkpoint said "finished" leaves: part, checkpoint, maybe OUT.
        checkpoint.write_bytes(kept["checkpoint"])
        state = read_checkpoint(checkpoint)
        state["state"]["finished"] = True
        state["state"]["queries"][-1]["done"] = True
        checkpoint.write_bytes(orjson.dumps(state) + b"\n")
        part.write_bytes(kept["part"])
        if not out_there:
            out.unlink()
        before = len(server.emulator.requests)
        await client.crawl_to_file(MOODS[:2], out, max_items=200, resume=True)
    assert out.read_bytes() == whole
    assert len(server.emulator.requests) == before
    assert listing(tmp_path) == ["tracks.csv"]


def test_sync_client_crawls_many_queries(big_server: EmulatorServer, tmp_path: Path) -> None:
    """The sync Client's crawl_to_file takes many queries and formats, like the async one."""
    big_server.emulator.reset()
    out = tmp_path / "moods.csv"
    with Client(big_server.api_key, base_url=big_server.url, retry=QUICK) as client:
        stats = client.crawl_to_file(MOODS, out, max_items=200, concurrency=2)
    records = read_records(out, "csv")
    assert len(records) == len({r["asset_id"] for r in records}) == stats.tracks
    assert {r["query_index"] for r in records} == {0, 1, 2}


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("query", "out", "progress", "parameter"),
    [
        ("sad piano", 123, None, "out"),
        ("sad piano", None, None, "out"),
        ("sad piano", b"x.jsonl", None, "out"),
        (123, "x.jsonl", None, "query"),
        ("sad piano", "x.jsonl", 5, "on_progress"),
    ],
)
async def test_bad_crawl_arguments_are_refused_before_any_request(
    server: EmulatorServer,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    query: object,
    out: object,
    progress: object,
    parameter: str,
) -> None:
    """A wrong type of query, path or hook is an `InvalidParameterError`; nothing is written."""
    from audioscape_async import InvalidParameterError

    monkeypatch.chdir(tmp_path)
    server.emulator.reset()
    async with client_for(server) as client:
        with pytest.raises(InvalidParameterError, match=parameter):
            await client.crawl_to_file(query, out, on_progress=progress)  # type: ignore[arg-type]
    assert server.emulator.requests == []
    assert os.listdir(tmp_path) == []


@pytest.mark.anyio
async def test_resuming_a_complete_output_says_so(server: EmulatorServer, tmp_path: Path) -> None:
    """`resume=True` on a whole OUT without its checkpoint claims no crawl of its own."""
    out = tmp_path / "done.jsonl"
    async with client_for(server) as client:
        first = await client.crawl_to_file(QUERY, out, max_items=30)
        again = await client.crawl_to_file("another query", out, max_items=5, resume=True)
    assert first.end_reason != "already_complete"
    assert again.complete
    assert again.end_reason == "already_complete"
    assert len(out.read_bytes().splitlines()) == 30


@pytest.mark.anyio
@pytest.mark.parametrize("queries", [[QUERY], MOODS[:2]])
async def test_max_items_is_the_crawls_end_reason(
    server: EmulatorServer, tmp_path: Path, queries: list[str]
) -> None:
    """A crawl cut by `max_items` says so at the top, as each query's own stats do."""
    async with client_for(server) as client:
        stats = await client.crawl_to_file(queries, tmp_path / "out.jsonl", max_items=120)
    assert [query.end_reason for query in stats.queries] == ["max_items"] * len(queries)
    assert stats.complete
    assert stats.end_reason == "max_items"
