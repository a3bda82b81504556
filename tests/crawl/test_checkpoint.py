"""Checkpoints: a resume takes only its own crawl's, never discards one, names any damage."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import orjson
import pytest

from audioscape_async import AsyncClient, CrawlStats, InvalidParameterError
from audioscape_async.emulator import EmulatorServer
from tests.crawl.support import (
    MOODS,
    QUERY,
    QUICK,
    client_for,
    listing,
    read_checkpoint,
    read_records,
    stop_after,
)


def snapshot(directory: Path) -> dict[str, bytes]:
    """Every regular file in `directory` with its bytes."""
    return {p.name: p.read_bytes() for p in directory.iterdir() if p.is_file()}


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
    assert "overwrite=True" in str(caught.value)
    assert "--" not in str(caught.value).replace(str(tmp_path), "")  # parameters, not flags
    async with client_for(server) as client:
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

    async with client_for(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=500, on_progress=stop)
        saved = out.with_name("tracks.jsonl.checkpoint").read_bytes()
        with pytest.raises(CrawlFileError, match="interrupted crawl") as caught:
            await client.crawl_to_file(QUERY, out, max_items=500)
        assert "resume=True" in str(caught.value)
        assert "overwrite=True" in str(caught.value)
        assert "--" not in str(caught.value).replace(str(tmp_path), "")  # parameters, not flags
        assert out.with_name("tracks.jsonl.checkpoint").read_bytes() == saved
        stats = await client.crawl_to_file(QUERY, out, max_items=500, overwrite=True)
    assert stats.resumed_at is None
    assert len(read_records(out)) == 500
    assert listing(tmp_path) == ["tracks.jsonl"]


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

    stop = stop_after(3)

    async with client_for(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=900, on_progress=stop)
        lines = part.read_bytes().splitlines(keepends=True)
        state = read_checkpoint(checkpoint)
        if damage == "checkpoint-garbage":
            checkpoint.write_bytes(b'{"version": 3, "pl')
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
    assert "overwrite=True" in str(caught.value)
    assert "--" not in str(caught.value).replace(str(tmp_path), "")  # parameters, not flags
    assert caught.value.path in (str(part), str(checkpoint))
    assert snapshot(tmp_path) == damaged


# -- the journal: a page costs the same whatever the plan's size ----------------------


@pytest.mark.anyio
async def test_a_page_appends_one_short_line_whatever_the_plan(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A 1,500-query plan: its first line holds the plan once; each page adds under 100 bytes."""
    queries = [f"{QUERY} {number}" for number in range(1_500)]
    out = tmp_path / "many.jsonl"
    checkpoint = out.with_name("many.jsonl.checkpoint")
    sizes: list[int] = []

    def measure(stats: CrawlStats) -> None:
        sizes.append(checkpoint.stat().st_size)
        if stats.pages == 40:
            raise KeyboardInterrupt

    async with client_for(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(
                queries, out, max_items=10, page_size=10, on_progress=measure
            )
    first_line = checkpoint.read_bytes().split(b"\n")[0]
    assert len(first_line) > 1_500 * 20  # the plan, once
    steps = [later - earlier for earlier, later in itertools.pairwise(sizes)]
    assert len(steps) == 39
    assert max(steps) < 2 * 100  # a page's line, and its query's "done" line
    saved = read_checkpoint(checkpoint)
    assert sum(q["done"] for q in saved["state"]["queries"]) == 39


@pytest.mark.anyio
async def test_an_append_cut_short_by_a_kill_is_ignored(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A last journal line without its newline (a kill mid-append) and the part bytes it
    would have recorded are dropped; the resumed crawl is exact."""
    out = tmp_path / "tracks.jsonl"
    whole = tmp_path / "whole.jsonl"
    part = out.with_name("tracks.jsonl.part")
    checkpoint = out.with_name("tracks.jsonl.checkpoint")

    stop = stop_after(3)

    async with client_for(server) as client:
        await client.crawl_to_file(QUERY, whole, max_items=900)
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=900, on_progress=stop)
        with part.open("ab") as handle:
            handle.write(b'{"asset_id": "half a pa')
        with checkpoint.open("ab") as handle:
            handle.write(b'{"query":0,"offset":400,"deliv')
        stats = await client.crawl_to_file(QUERY, out, max_items=900, resume=True)
    assert stats.resumed_at == 300
    assert out.read_bytes() == whole.read_bytes()


@pytest.mark.anyio
async def test_a_damaged_journal_line_is_named(server: EmulatorServer, tmp_path: Path) -> None:
    """A complete line that is not a journal entry is damage, named with its line number."""
    from audioscape_async import CrawlFileError

    out = tmp_path / "tracks.jsonl"
    checkpoint = out.with_name("tracks.jsonl.checkpoint")

    stop = stop_after(2)

    async with client_for(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=900, on_progress=stop)
        lines = checkpoint.read_bytes().split(b"\n")
        lines[1] = (
            b'{"query": 7, "offset": 100, "delivered": 100, "done": false, "output_bytes": 9}'
        )
        checkpoint.write_bytes(b"\n".join(lines))
        with pytest.raises(CrawlFileError, match=r"checkpoint: line 2 is malformed .*query 7"):
            await client.crawl_to_file(QUERY, out, max_items=900, resume=True)


@pytest.mark.anyio
async def test_a_resume_folds_the_journal_into_one_line(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """Resumed, the checkpoint starts again from one line: it does not grow across resumes."""
    out = tmp_path / "tracks.jsonl"
    checkpoint = out.with_name("tracks.jsonl.checkpoint")
    lines: list[int] = []

    def stop_at(pages: int) -> Callable[[CrawlStats], None]:
        def stop(stats: CrawlStats) -> None:
            lines.append(checkpoint.read_bytes().count(b"\n"))
            if stats.pages == pages:
                raise KeyboardInterrupt

        return stop

    async with client_for(server) as client:
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(QUERY, out, max_items=900, on_progress=stop_at(4))
        assert lines[-1] == 1 + 4
        with pytest.raises(KeyboardInterrupt):
            await client.crawl_to_file(
                QUERY, out, max_items=900, resume=True, on_progress=stop_at(1)
            )
        assert lines[-1] == 1 + 1


@pytest.mark.anyio
async def test_durable_puts_each_page_and_its_line_on_disk(
    server: EmulatorServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """durable=True: an fsync of the part, then of the journal, before the next page."""
    import os

    synced: list[int] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(fd)
        real_fsync(fd)

    monkeypatch.setattr(os, "fsync", fsync)
    out = tmp_path / "tracks.jsonl"
    async with client_for(server) as client:
        stats = await client.crawl_to_file(QUERY, out, max_items=500, durable=True)
        durable_syncs = len(synced)
        synced.clear()
        await client.crawl_to_file(QUERY, out, max_items=500, overwrite=True)
    assert stats.pages == 5
    assert durable_syncs >= len(synced) + 2 * 5
    with pytest.raises(InvalidParameterError, match="durable"):
        async with client_for(server) as client:
            await client.crawl_to_file(QUERY, out, durable="yes")  # type: ignore[arg-type]


@pytest.mark.anyio
async def test_an_earlier_versions_checkpoint_is_named_as_such(
    server: EmulatorServer, tmp_path: Path
) -> None:
    """A version-2 checkpoint (one pretty-printed document) is refused by its version."""
    from audioscape_async import CrawlFileError

    out = tmp_path / "tracks.jsonl"
    out.with_name("tracks.jsonl.checkpoint").write_text(
        '{\n  "version": 2,\n  "plan": {},\n  "state": {}\n}', encoding="utf-8"
    )
    async with client_for(server) as client:
        with pytest.raises(CrawlFileError, match="its version is 2, this SDK writes 3"):
            await client.crawl_to_file(QUERY, out, max_items=100, resume=True)
