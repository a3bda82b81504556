"""Crawls against the emulator over real loopback sockets: exact, ordered, polite, drift-aware."""

from __future__ import annotations

import logging
import os
import time as _time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from audioscape_async import AsyncClient, Client, CrawlStats, RateLimit, RetryPolicy
from audioscape_async.emulator import EmulatorServer, Faults, generate_catalog

QUERY = "chill lo-fi beats"
#: Fast retries: the faults here are meant to be retried, not waited for.
QUICK = RetryPolicy(max_retries=8, initial_backoff=0.001, max_backoff=0.01)


@pytest.fixture(scope="module")
def big_server() -> Iterator[EmulatorServer]:
    """An emulator whose catalog matches more than 20,000 tracks for QUERY."""
    with EmulatorServer(tracks=40_000, seed=1) as server:
        yield server


@pytest.fixture
def server(big_server: EmulatorServer) -> Iterator[EmulatorServer]:
    """The big emulator for one test, reset before and after."""
    big_server.emulator.reset()
    yield big_server
    big_server.emulator.reset()


def _client(server: EmulatorServer, **options: object) -> AsyncClient:
    options.setdefault("retry", QUICK)
    return AsyncClient(server.api_key, base_url=server.url, timeout=5.0, **options)  # type: ignore[arg-type]


async def _ids(server: EmulatorServer, **walk: object) -> list[str]:
    async with _client(server) as client:
        return [track.asset_id async for track in client.iter_tracks(QUERY, **walk)]  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_crawl_under_faults_is_exact(server: EmulatorServer) -> None:
    """20,000 tracks through 10% 5xx, 5% 429 and dropped connections: none lost, none twice."""
    expected = await _ids(server, max_items=20_000)
    server.emulator.set_faults(
        Faults({"500": 0.05, "503": 0.05, "429": 0.05, "drop": 0.01}, retry_after=0)
    )
    async with _client(server) as client:
        crawl = client.crawl(QUERY, max_items=20_000, concurrency=8)
        got = [track.asset_id async for track in crawl]
    assert got == expected
    assert len(set(got)) == 20_000
    stats = crawl.stats
    assert stats.tracks == 20_000
    assert stats.retries.get("5xx", 0) > 0
    assert stats.retries.get("429", 0) > 0
    assert stats.rate_limited == stats.retries["429"]
    assert stats.retries.get("connection", 0) > 0
    faults = [record.faults for record in server.emulator.requests if record.faults]
    assert len(faults) == stats.retry_count


@pytest.mark.anyio
@pytest.mark.parametrize("concurrency", [2, 8])
async def test_concurrent_walk_equals_sequential(server: EmulatorServer, concurrency: int) -> None:
    """A concurrent walk yields the same tracks in the same order as a sequential one."""
    sequential = await _ids(server, max_items=3_000, page_size=97)
    concurrent = await _ids(server, max_items=3_000, page_size=97, concurrency=concurrency)
    assert concurrent == sequential
    assert len(sequential) == 3_000


@pytest.mark.anyio
async def test_concurrency_keeps_at_most_n_requests_in_flight(server: EmulatorServer) -> None:
    """With concurrency N the emulator never sees more than N requests of the walk at once."""
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.02))
    await _ids(server, max_items=2_000, concurrency=4)
    records = server.emulator.requests
    assert records
    # Each record spans arrival .. arrival + latency at least; count overlaps at each arrival.
    arrivals = sorted(record.time for record in records)
    for time in arrivals:
        in_flight = sum(1 for other in arrivals if time - 0.02 < other <= time)
        assert in_flight <= 4


@pytest.mark.anyio
async def test_client_rate_limit_is_observed_by_the_server(server: EmulatorServer) -> None:
    """With a 20 rps limit and a burst of 5, no second of arrivals holds more than 25."""
    limit = RateLimit(requests_per_second=20, burst=5)
    async with _client(server, rate_limit=limit) as client:
        crawl = client.crawl(QUERY, max_items=4_000, page_size=100, concurrency=8)
        count = sum([1 async for _ in crawl])
    assert count == 4_000
    arrivals = sorted(record.time for record in server.emulator.requests)
    assert len(arrivals) == 40
    for index, start in enumerate(arrivals):
        window = [t for t in arrivals[index:] if t < start + 1.0]
        assert len(window) <= 20 + 5
    # 40 requests at 20 per second after a burst of 5 take at least 1.75 s.
    assert arrivals[-1] - arrivals[0] >= (40 - 5) / 20 - 0.05
    assert crawl.stats.rate_wait_seconds > 0


@pytest.mark.anyio
async def test_one_429_pauses_every_task_of_the_client(server: EmulatorServer) -> None:
    """After a 429 with Retry-After: 1, no request of the client arrives within that second."""
    server.emulator.set_faults(Faults(retry_after=1))
    async with _client(server) as client:
        await client.search(QUERY, limit=1)
        server.emulator.force_fault("429")
        pages = [page async for page in client.iter_pages(QUERY, max_items=1_500, concurrency=8)]
    assert sum(len(page.tracks) for page in pages) == 1_500
    records = server.emulator.requests
    limited = [record for record in records if record.status == 429]
    assert len(limited) == 1
    t0 = limited[0].time
    # Requests already on the wire when the 429 was answered may land just after it.
    too_early = [r for r in records if t0 + 0.05 < r.time < t0 + 1.0]
    assert too_early == []


@pytest.mark.anyio
async def test_a_long_retry_after_fails_fast_and_pauses_only_up_to_the_cap(
    server: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Retry-After past the policy's limit raises at once; the pause lasts only up to the cap."""
    from audioscape_async import RateLimitError
    from audioscape_async import _retry as retry_module

    slept: list[float] = []

    async def record(seconds: float) -> None:
        slept.append(seconds)

    monkeypatch.setattr(retry_module, "sleep", record)
    server.emulator.set_faults(Faults(retry_after=11 * 86_400))
    server.emulator.force_fault("429")
    async with _client(server) as client:
        with pytest.raises(RateLimitError) as first:
            await client.search(QUERY)
        assert slept == []
        page = await client.search(QUERY)  # waits out the capped pause, then asks again
    assert first.value.retry_after == 11 * 86_400
    assert len(slept) == 1
    assert QUICK.max_retry_after - 0.5 < slept[0] <= QUICK.max_retry_after
    assert page.tracks
    assert len(server.emulator.requests) == 2


@pytest.mark.anyio
async def test_adaptive_rate_halves_after_a_429(server: EmulatorServer) -> None:
    """An adaptive limit slows down after a 429 and climbs back with successes."""
    server.emulator.set_faults(Faults(retry_after=0))
    limit = RateLimit(requests_per_second=200, burst=1, adaptive=True)
    async with _client(server, rate_limit=limit) as client:
        server.emulator.force_fault("429")
        await client.search(QUERY)
        slowed = client._pipeline.gate.rate
        for _ in range(30):
            await client.search(QUERY)
        recovered = client._pipeline.gate.rate
    # Halved by the 429, then one success's step (5% of the configured rate) back up.
    assert slowed == 200 / 2 + 200 * 0.05
    assert recovered == 200


@pytest.mark.anyio
async def test_catalog_change_mid_crawl_is_reported_and_handled(
    server: EmulatorServer, caplog: pytest.LogCaptureFixture
) -> None:
    """A catalog replaced mid-crawl shows up as drift in the stats and the log; no id twice."""
    replaced = False

    def change_catalog(stats: CrawlStats) -> None:
        nonlocal replaced
        if stats.pages == 5 and not replaced:
            server.emulator.replace_catalog(generate_catalog(30_000, seed=7))
            replaced = True

    caplog.set_level(logging.WARNING, logger="audioscape_async")
    async with _client(server) as client:
        crawl = client.crawl(QUERY, concurrency=4, on_progress=change_catalog)
        ids = [track.asset_id async for track in crawl]
    assert replaced
    assert len(ids) == len(set(ids))
    assert crawl.stats.drift.get("total_changed", 0) >= 1
    assert "meta.total changed" in caplog.text
    # The walk went on to the new end.
    assert crawl.stats.total is not None
    assert len(ids) >= crawl.stats.total - 1_000  # replaced ranks may hide a few


@pytest.mark.anyio
async def test_crawl_to_file_resumes_exactly(server: EmulatorServer, tmp_path: Path) -> None:
    """A crawl to a file stopped half-way and resumed writes every track once, in order."""
    out = tmp_path / "tracks.jsonl"
    expected = await _ids(server, max_items=2_500)

    class Stop(Exception):
        pass

    def stop_half_way(stats: CrawlStats) -> None:
        if stats.pages == 12:
            raise Stop

    async with _client(server) as client:
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
    async with _client(server) as client:
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


def test_sync_client_crawls(big_server: EmulatorServer, tmp_path: Path) -> None:
    """The sync Client crawls through the same core, with live stats and files."""
    big_server.emulator.reset()
    with Client(big_server.api_key, base_url=big_server.url, retry=QUICK) as client:
        crawl = client.crawl(QUERY, max_items=777, concurrency=4)
        ids = [track.asset_id for track in crawl]
        assert len(ids) == len(set(ids)) == 777
        assert crawl.stats.tracks == 777
        assert crawl.stats.pages == 8
        stats = client.crawl_to_file(QUERY, tmp_path / "out.jsonl", max_items=777, concurrency=4)
    lines = (tmp_path / "out.jsonl").read_bytes().splitlines()
    written = [orjson.loads(line)["asset_id"] for line in lines]
    assert written == ids
    assert stats.tracks == 777


# -- many queries, formats, safe files ------------------------------------------

MOODS = ["chill lo-fi beats", "lofi study", "sad piano"]


def read_records(path: Path, fmt: str = "jsonl") -> list[dict[str, object]]:
    """The records of a crawl's output file, in any format, as dicts."""
    import csv
    import gzip

    if fmt == "jsonl":
        return [orjson.loads(line) for line in path.read_bytes().splitlines()]
    if fmt == "jsonl.gz":
        return [orjson.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    if fmt == "csv":
        with path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.DictReader(handle))
        ints = ("query_index", "query_rank", "query_offset", "matched_queries")
        return [{k: int(v) if k in ints else v for k, v in row.items()} for row in rows]
    pq = pytest.importorskip("pyarrow.parquet")
    return list(pq.read_table(path).to_pylist())


def listing(directory: Path) -> list[str]:
    """The names in `directory`, sorted."""
    return sorted(p.name for p in directory.iterdir())


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every regular file in `directory` with its bytes."""
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


SUFFIX = {"jsonl": ".jsonl", "jsonl.gz": ".jsonl.gz", "csv": ".csv", "parquet": ".parquet"}


async def _expected_provenance(
    server: EmulatorServer, queries: list[str], max_items: int
) -> dict[str, tuple[int, int, int]]:
    """asset id -> (first query index, rank there, how many queries matched), from the SDK."""
    found: dict[str, tuple[int, int, int]] = {}
    for index, query in enumerate(queries):
        async with _client(server) as client:
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
    async with _client(server) as client:
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
    async with _client(server) as client:
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

    async with _client(server) as client:
        await client.crawl_to_file(MOODS, whole, max_items=300, page_size=50)
        with pytest.raises(Stop):
            await client.crawl_to_file(
                MOODS, out, max_items=300, page_size=50, on_progress=stop_in_query_two
            )
        checkpoint = orjson.loads(out.with_name("moods.jsonl.checkpoint").read_bytes())
        assert [q["done"] for q in checkpoint["state"]["queries"]] == [True, False, False]
        assert checkpoint["state"]["queries"][1]["offset"] == 100
        stats = await client.crawl_to_file(MOODS, out, max_items=300, page_size=50, resume=True)
    assert out.read_bytes() == whole.read_bytes()
    assert stats.resumed_at == 100
    assert stats.resumed_tracks > 300
    assert stats.queries[0].pages == 0  # done before the resume: not asked again
    assert stats.queries[1].pages == 4


@pytest.mark.anyio
async def test_a_second_crawl_into_the_same_out_fails_before_any_request(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """While a crawl holds OUT's lock, another crawl to OUT fails at once and sends nothing."""
    import fcntl

    from audioscape_async import CrawlFileError

    out = tmp_path / "tracks.jsonl"
    held = os.open(tmp_path / "tracks.jsonl.lock", os.O_RDWR | os.O_CREAT)
    try:
        fcntl.flock(held, fcntl.LOCK_EX)
        async with _client(server) as client:
            with pytest.raises(CrawlFileError, match="another crawl is writing it") as caught:
                await client.crawl_to_file(QUERY, out, max_items=100)
    finally:
        os.close(held)
    assert caught.value.path == str(out)
    assert server.emulator.requests == []
    assert not out.with_name("tracks.jsonl.part").exists()


@pytest.mark.anyio
async def test_resume_refuses_another_base_url_or_page_size(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A checkpoint names its base URL (no userinfo); a resume elsewhere refuses, naming why."""
    from audioscape_async import CrawlFileError

    out = tmp_path / "tracks.jsonl"
    checkpoint = out.with_name("tracks.jsonl.checkpoint")

    def stop(stats: CrawlStats) -> None:
        raise KeyboardInterrupt

    secret_url = server.url.replace("http://", "http://user:hunter2@")
    # httpx's own transport: aiohttp refuses userinfo in a URL (a separate problem).
    async with AsyncClient(
        server.api_key, base_url=secret_url, retry=QUICK, transport="httpx"
    ) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=500, on_progress=stop)
    saved = checkpoint.read_text()
    assert "hunter2" not in saved
    assert server.url in saved
    before = len(server.emulator.requests)
    other = server.url.replace("127.0.0.1", "localhost")
    async with AsyncClient(server.api_key, base_url=other, retry=QUICK) as client:
        with pytest.raises(CrawlFileError, match="base URL") as caught:
            await client.crawl_to_file(QUERY, out, max_items=500, resume=True)
    assert "--force" in str(caught.value)
    async with _client(server) as client:
        with pytest.raises(CrawlFileError, match="page_size 100, not 50"):
            await client.crawl_to_file(QUERY, out, max_items=500, page_size=50, resume=True)
        with pytest.raises(CrawlFileError, match="1 query, not 3"):
            await client.crawl_to_file(MOODS, out, max_items=500, resume=True)
    assert len(server.emulator.requests) == before
    assert checkpoint.read_text() == saved


@pytest.mark.anyio
async def test_a_checkpoint_is_never_discarded_without_overwrite(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A re-run without resume refuses, saying how to resume or replace; overwrite replaces."""
    from audioscape_async import CrawlFileError

    out = tmp_path / "tracks.jsonl"

    def stop(stats: CrawlStats) -> None:
        raise KeyboardInterrupt

    async with _client(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=500, on_progress=stop)
        saved = out.with_name("tracks.jsonl.checkpoint").read_bytes()
        with pytest.raises(CrawlFileError, match="interrupted crawl") as caught:
            await client.crawl_to_file(QUERY, out, max_items=500)
        assert "--resume" in str(caught.value)
        assert "--force" in str(caught.value)
        assert out.with_name("tracks.jsonl.checkpoint").read_bytes() == saved
        stats = await client.crawl_to_file(QUERY, out, max_items=500, overwrite=True)
    assert stats.resumed_at is None
    assert len(read_records(out)) == 500
    assert listing(tmp_path) == ["tracks.jsonl"]


@pytest.mark.anyio
async def test_a_kill_during_the_first_page_resumes(server: EmulatorServer, tmp_path: Path) -> None:
    """Cancelled during the first page: a checkpoint and an empty part, which resume finishes."""
    import anyio

    out = tmp_path / "tracks.jsonl"
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=0.5))
    async with _client(server) as client:
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

    async with _client(server) as client:
        await client.crawl_to_file(MOODS[:2], out, max_items=200, on_progress=keep_last)
        whole = out.read_bytes()
        # What a kill after the checkpoint said "finished" leaves: part, checkpoint, maybe OUT.
        state = orjson.loads(kept["checkpoint"])
        state["state"]["finished"] = True
        state["state"]["queries"][-1]["done"] = True
        checkpoint.write_bytes(orjson.dumps(state))
        part.write_bytes(kept["part"])
        if not out_there:
            out.unlink()
        before = len(server.emulator.requests)
        await client.crawl_to_file(MOODS[:2], out, max_items=200, resume=True)
    assert out.read_bytes() == whole
    assert len(server.emulator.requests) == before
    assert listing(tmp_path) == ["tracks.csv"]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("damage", "message"),
    [
        ("checkpoint-garbage", "checkpoint: it is not JSON"),
        ("checkpoint-types", "its state is malformed"),
        ("checkpoint-version", "its version is 1"),
        ("part-garbage-line", "part: line 3 is not JSON"),
        ("part-foreign-line", "part: line 2 is not a track of this crawl"),
        ("part-short", "fewer than the"),
        ("part-missing", "part: it is missing"),
    ],
)
async def test_damaged_files_are_crawl_file_errors(
    server: EmulatorServer, tmp_path: Path, damage: str, message: str
) -> None:
    """A damaged checkpoint or part line is a CrawlFileError naming the file and the problem."""
    from audioscape_async import CrawlFileError

    out = tmp_path / "tracks.jsonl"
    part = out.with_name("tracks.jsonl.part")
    checkpoint = out.with_name("tracks.jsonl.checkpoint")

    def stop(stats: CrawlStats) -> None:
        if stats.pages == 3:
            raise KeyboardInterrupt

    async with _client(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=900, on_progress=stop)
        lines = part.read_bytes().splitlines(keepends=True)
        state = orjson.loads(checkpoint.read_bytes())
        if damage == "checkpoint-garbage":
            checkpoint.write_bytes(b'{"version": 2, "pl')
        elif damage == "checkpoint-types":
            state["state"]["queries"][0]["offset"] = "300"
            checkpoint.write_bytes(orjson.dumps(state))
        elif damage == "checkpoint-version":
            state["version"] = 1
            checkpoint.write_bytes(orjson.dumps(state))
        elif damage == "part-garbage-line":
            lines[2] = b"x" * (len(lines[2]) - 1) + b"\n"
            part.write_bytes(b"".join(lines))
        elif damage == "part-foreign-line":
            lines[1] = orjson.dumps({"asset_id": "1"}).ljust(len(lines[1]) - 1) + b"\n"
            part.write_bytes(b"".join(lines))
        elif damage == "part-short":
            part.write_bytes(b"".join(lines[:-1]))
        else:
            part.unlink()
        damaged = snapshot(tmp_path)
        with pytest.raises(CrawlFileError, match=message) as caught:
            await client.crawl_to_file(QUERY, out, max_items=900, resume=True)
    assert "--force" in str(caught.value)
    assert caught.value.path in (str(part), str(checkpoint))
    assert snapshot(tmp_path) == damaged


@pytest.mark.anyio
async def test_links_planted_at_the_crawl_files_are_never_written_through(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Links at OUT, OUT.part and OUT.checkpoint are replaced, not followed; a linked lock fails."""
    from audioscape_async import CrawlFileError

    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    out = tmp_path / "tracks.jsonl"
    for name in ("tracks.jsonl", "tracks.jsonl.part", "tracks.jsonl.checkpoint"):
        (tmp_path / name).symlink_to(victim)
    async with _client(server) as client:
        with pytest.raises(CrawlFileError, match="interrupted crawl"):
            await client.crawl_to_file(QUERY, out, max_items=200)
        with pytest.raises(CrawlFileError, match="symbolic link"):
            await client.crawl_to_file(QUERY, out, max_items=200, resume=True)
        await client.crawl_to_file(QUERY, out, max_items=200, overwrite=True)
        assert victim.read_text() == "precious\n"
        assert not out.is_symlink()
        assert len(read_records(out)) == 200
        (tmp_path / "tracks.jsonl.lock").symlink_to(victim)
        with pytest.raises(CrawlFileError, match="symbolic link") as caught:
            await client.crawl_to_file(QUERY, out, max_items=200, overwrite=True)
    assert isinstance(caught.value.__cause__, OSError)
    assert victim.read_text() == "precious\n"
    assert listing(tmp_path) == [
        "tracks.jsonl",
        "tracks.jsonl.lock",
        "victim.txt",
    ]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("", "the output path is empty"),
        ("{tmp}", "it is a directory"),
        ("{tmp}/", "names a directory"),
        ("{tmp}/missing/out.jsonl", "does not exist"),
        ("{tmp}/file.txt/out.jsonl", "not a directory"),
    ],
)
async def test_the_output_path_is_checked_before_any_request(
    server: EmulatorServer, tmp_path: Path, where: str, message: str
) -> None:
    """An unusable output path is a CrawlFileError before anything is sent."""
    from audioscape_async import CrawlFileError

    (tmp_path / "file.txt").write_text("x")
    async with _client(server) as client:
        with pytest.raises(CrawlFileError, match=message):
            await client.crawl_to_file(QUERY, where.format(tmp=tmp_path), max_items=100)
    assert server.emulator.requests == []


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write anywhere")
@pytest.mark.anyio
async def test_an_unwritable_directory_is_refused_before_any_request(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A directory the user may not write in is a CrawlFileError before any request."""
    from audioscape_async import CrawlFileError

    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    async with _client(server) as client:
        with pytest.raises(CrawlFileError, match="no permission"):
            await client.crawl_to_file(QUERY, locked / "out.jsonl", max_items=100)
    assert server.emulator.requests == []


DISK_FULL = """
import resource, signal, sys
from audioscape_async import Client, CrawlFileError
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (40_000, 40_000))
with Client(sys.argv[1], base_url=sys.argv[2]) as client:
    try:
        client.crawl_to_file("chill lo-fi beats", sys.argv[3], max_items=1000)
    except CrawlFileError as error:
        print(type(error).__name__, error.path, type(error.__cause__).__name__)
        print(error)
"""


def test_a_full_disk_mid_crawl_is_a_crawl_file_error_and_resumable(
    big_server: EmulatorServer, tmp_path: Path
) -> None:
    """Writes past a file size limit fail as CrawlFileError (OSError cause); resume completes."""
    import subprocess
    import sys

    big_server.emulator.reset()
    out = tmp_path / "tracks.jsonl"
    result = subprocess.run(
        [sys.executable, "-c", DISK_FULL, big_server.api_key, big_server.url, str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    first, message = result.stdout.splitlines()
    assert first == f"CrawlFileError {out}.part OSError"
    assert "larger than this system allows" in message
    assert not out.exists()
    with Client(big_server.api_key, base_url=big_server.url, retry=QUICK) as client:
        stats = client.crawl_to_file(QUERY, out, max_items=1000, resume=True)
        expected = [t.asset_id for t in client.iter_tracks(QUERY, max_items=1000)]
    assert [r["asset_id"] for r in read_records(out)] == expected
    assert stats.resumed_tracks > 0


@pytest.mark.anyio
async def test_standard_output_and_formats_are_checked_first(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """out='-' refuses resume and other formats; an unknown format is refused; nothing is sent."""
    from audioscape_async import InvalidParameterError

    async with _client(server) as client:
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
    async with _client(server) as client:
        await client.crawl_to_file(QUERY, out, max_items=120, format="jsonl.gz")
    assert out.read_bytes()[:2] == b"\x1f\x8b"
    assert len(read_records(out, "jsonl.gz")) == 120


def test_rate_wait_is_wall_clock_not_summed() -> None:
    """Overlapping waits of concurrent tasks count once; separate waits add up."""
    stats = CrawlStats()
    live = []
    with stats.rate_wait():
        live.append(stats.waiting_for_rate_limit)
        with stats.rate_wait():
            _time.sleep(0.05)
        _time.sleep(0.05)
    live.append(stats.waiting_for_rate_limit)
    assert live == [True, False]
    assert 0.1 <= stats.rate_wait_seconds < 0.15
    # The `+=` of a wait as it ends spans [now - waited, now]: after a gap it adds,
    # and a second task's wait over the same moment does not add again.
    _time.sleep(0.05)
    stats.rate_wait_seconds += 0.02
    stats.rate_wait_seconds += 0.02
    assert 0.12 <= stats.rate_wait_seconds < 0.135


@pytest.mark.anyio
async def test_rate_wait_of_a_concurrent_crawl_is_at_most_its_duration(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Eight tasks held by a 40 rps limit: the wait reported is no longer than the crawl."""
    limit = RateLimit(requests_per_second=40, burst=1)
    async with _client(server, rate_limit=limit) as client:
        stats = await client.crawl_to_file(
            QUERY, tmp_path / "t.jsonl", max_items=2_000, page_size=50, concurrency=8
        )
    assert stats.pages == 40
    assert 0.5 < stats.rate_wait_seconds <= stats.elapsed


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
async def test_stats_say_live_when_the_crawl_waits_for_the_rate_limit(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """While a request waits for the rate limit, `waiting_for_rate_limit` says so; wall-clock."""
    import anyio

    holder: list[CrawlStats] = []
    seen: list[bool] = []
    first_page = anyio.Event()

    def progress(stats: CrawlStats) -> None:
        holder.append(stats)
        first_page.set()

    async def watch() -> None:
        await first_page.wait()
        for _ in range(60):
            seen.append(holder[0].waiting_for_rate_limit)
            await anyio.sleep(0.01)

    limit = RateLimit(requests_per_second=5, burst=1)
    async with _client(server, rate_limit=limit) as client, anyio.create_task_group() as tasks:
        tasks.start_soon(watch)
        stats = await client.crawl_to_file(
            QUERY, tmp_path / "out.jsonl", page_size=10, max_items=50, on_progress=progress
        )
    assert any(seen)
    assert not stats.waiting_for_rate_limit
    assert 0.5 < stats.rate_wait_seconds <= stats.elapsed


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
    async with _client(server) as client:
        with pytest.raises(InvalidParameterError, match=parameter):
            await client.crawl_to_file(query, out, on_progress=progress)  # type: ignore[arg-type]
    assert server.emulator.requests == []
    assert os.listdir(tmp_path) == []


@pytest.mark.anyio
async def test_resuming_a_complete_output_says_so(server: EmulatorServer, tmp_path: Path) -> None:
    """`resume=True` on a whole OUT without its checkpoint claims no crawl of its own."""
    out = tmp_path / "done.jsonl"
    async with _client(server) as client:
        first = await client.crawl_to_file(QUERY, out, max_items=30)
        again = await client.crawl_to_file("another query", out, max_items=5, resume=True)
    assert first.end_reason != "already_complete"
    assert again.complete
    assert again.end_reason == "already_complete"
    assert len(out.read_bytes().splitlines()) == 30


@pytest.mark.anyio
async def test_every_429_is_counted_with_or_without_retry_after(server: EmulatorServer) -> None:
    """The documented 429 has no Retry-After; a crawl still counts it in `rate_limited`."""
    server.emulator.set_faults(Faults({"429": 0.3}))
    async with _client(server) as client:
        crawl = client.crawl(QUERY, page_size=10, max_items=200)
        async for _ in crawl:
            pass
    assert crawl.stats.retries.get("429", 0) > 0
    assert crawl.stats.rate_limited == crawl.stats.retries["429"]
