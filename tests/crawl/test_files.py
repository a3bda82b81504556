"""A crawl's files: locked, checked before any request, never written through a link."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from audioscape_async import Client
from audioscape_async.emulator import EmulatorServer
from tests.crawl.support import QUERY, QUICK, client_for, listing, read_records


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
        async with client_for(server) as client:
            with pytest.raises(CrawlFileError, match="another crawl is writing it") as caught:
                await client.crawl_to_file(QUERY, out, max_items=100)
    finally:
        os.close(held)
    assert caught.value.path == str(out)
    assert server.emulator.requests == []
    assert not out.with_name("tracks.jsonl.part").exists()


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
    async with client_for(server) as client:
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
    async with client_for(server) as client:
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
    async with client_for(server) as client:
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
