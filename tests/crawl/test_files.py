"""`_files`: a crawl's files are checked, locked, replaced whole, never written through a link.

Each helper is called on real files in a temporary directory: what the output check
refuses and how it says so, that every `OSError` becomes a `CrawlFileError` naming the
file, that a planted symbolic link is refused rather than followed, that a replacement
is whole or not at all, and that the lock keeps a second crawl out. The last tests
crawl to files against the emulator: the same checks come before any request, and a
disk that fills mid-crawl leaves a crawl that resumes.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import BinaryIO

import pytest

from audioscape_async import Client, CrawlFileError
from audioscape_async._crawl._files import (
    CrawlPaths,
    OutputLock,
    check_output_path,
    describe,
    exists_no_follow,
    file_errors,
    open_no_follow,
    read_no_follow,
    replace_atomically,
    write_all,
)
from audioscape_async.emulator import EmulatorServer
from tests.crawl.support import QUERY, QUICK, client_for, listing, read_records

# -- the output path -----------------------------------------------------------------------


def test_a_new_file_in_an_existing_directory_is_a_good_output(tmp_path: Path) -> None:
    """A name that does not exist yet, in a real directory, comes back as a `Path`."""
    assert check_output_path(str(tmp_path / "tracks.jsonl")) == tmp_path / "tracks.jsonl"
    (tmp_path / "old.jsonl").write_text("{}\n")
    assert check_output_path(tmp_path / "old.jsonl") == tmp_path / "old.jsonl"


@pytest.mark.parametrize("text", ["", "   "])
def test_an_empty_output_path_is_refused(text: str) -> None:
    """An empty or blank path says so."""
    with pytest.raises(CrawlFileError, match="the output path is empty"):
        check_output_path(text)


def test_a_directory_is_not_an_output_file(tmp_path: Path) -> None:
    """A trailing separator, `.`/`..`, or an existing directory: each refused with its reason."""
    for text in (str(tmp_path) + os.sep, ".", ".."):
        with pytest.raises(CrawlFileError, match="names a directory, not a file"):
            check_output_path(text)
    (tmp_path / "out").mkdir()
    with pytest.raises(CrawlFileError, match="it is a directory; give a file name") as caught:
        check_output_path(tmp_path / "out")
    assert caught.value.path == str(tmp_path / "out")


def test_a_fifo_is_not_a_regular_file(tmp_path: Path) -> None:
    """A named pipe (or a device) under the output name is refused, not opened."""
    fifo = tmp_path / "pipe.jsonl"
    os.mkfifo(fifo)
    with pytest.raises(CrawlFileError, match="it is not a regular file"):
        check_output_path(fifo)


def test_a_missing_directory_is_named(tmp_path: Path) -> None:
    """The parent that does not exist is named in the message."""
    missing = tmp_path / "nowhere"
    with pytest.raises(CrawlFileError, match=f"its directory {missing} does not exist"):
        check_output_path(missing / "tracks.jsonl")


# -- errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "words"),
    [
        (errno.ENOSPC, "the disk is full"),
        (errno.EACCES, "permission denied"),
        (errno.ELOOP, "it is a symbolic link, and a crawl never writes through one"),
        (errno.EROFS, "the file system is read-only"),
    ],
)
def test_known_os_errors_are_put_in_words(code: int, words: str) -> None:
    """The common causes read as a sentence, not as `[Errno 28] ...`."""
    assert describe(OSError(code, os.strerror(code))) == words


def test_another_os_error_keeps_its_own_text() -> None:
    """An errno without words of ours falls back to the system's message."""
    assert describe(OSError(errno.EBUSY, "Device or resource busy")) == "Device or resource busy"
    assert describe(OSError("no errno at all")) == "no errno at all"


def test_file_errors_names_the_file_and_keeps_the_cause(tmp_path: Path) -> None:
    """An OSError inside becomes a `CrawlFileError`: path, what was being done, why; cause kept."""
    target = tmp_path / "tracks.jsonl"
    error = OSError(errno.ENOSPC, "No space left on device")
    with pytest.raises(CrawlFileError) as caught, file_errors(target, "write to it"):
        raise error
    assert str(caught.value) == f"{target}: cannot write to it: the disk is full"
    assert caught.value.path == str(target)
    assert caught.value.__cause__ is error


def test_file_errors_lets_other_errors_through(tmp_path: Path) -> None:
    """Only OSErrors are translated: a bug stays the bug it is."""
    with pytest.raises(KeyError), file_errors(tmp_path, "read it"):
        raise KeyError("x")


# -- links ---------------------------------------------------------------------------------


def test_reading_refuses_a_symbolic_link(tmp_path: Path) -> None:
    """A checkpoint name that is a link is refused (ELOOP in words), the target left unread."""
    real = tmp_path / "secret"
    real.write_bytes(b"not yours")
    link = tmp_path / "out.checkpoint"
    link.symlink_to(real)
    with pytest.raises(CrawlFileError, match="cannot read it: it is a symbolic link"):
        read_no_follow(link)
    assert read_no_follow(real) == b"not yours"


def test_opening_for_writing_refuses_a_symbolic_link(tmp_path: Path) -> None:
    """Appending to `OUT.part` never writes through a link planted there."""
    real = tmp_path / "victim"
    real.write_bytes(b"keep")
    link = tmp_path / "out.part"
    link.symlink_to(real)
    with pytest.raises(CrawlFileError, match="cannot open it: it is a symbolic link"):
        open_no_follow(link, os.O_WRONLY | os.O_APPEND)
    assert real.read_bytes() == b"keep"


def test_exists_sees_a_dangling_link(tmp_path: Path) -> None:
    """A link to nothing still occupies the name."""
    link = tmp_path / "dangling"
    link.symlink_to(tmp_path / "absent")
    assert exists_no_follow(link)
    assert not exists_no_follow(tmp_path / "absent")


def test_write_all_writes_every_byte(tmp_path: Path) -> None:
    """Bytes larger than one pipe-sized write all arrive."""
    path = tmp_path / "big"
    data = os.urandom(3 * 1024 * 1024 + 17)
    fd = open_no_follow(path, os.O_WRONLY | os.O_CREAT)
    try:
        write_all(fd, data, path)
    finally:
        os.close(fd)
    assert path.read_bytes() == data


# -- replacing and locking -----------------------------------------------------------------


def test_crawl_paths_names_the_files_beside_the_output(tmp_path: Path) -> None:
    """OUT.part, OUT.checkpoint, OUT.lock and the hidden .NAME.tmp, all in OUT's directory."""
    paths = CrawlPaths(tmp_path / "tracks.csv")
    assert paths.part == tmp_path / "tracks.csv.part"
    assert paths.checkpoint == tmp_path / "tracks.csv.checkpoint"
    assert paths.lock == tmp_path / "tracks.csv.lock"
    assert paths.temp_for(paths.out) == tmp_path / ".tracks.csv.tmp"


def test_stale_temporary_files_are_removed(tmp_path: Path) -> None:
    """What a run killed mid-replace left is removed by the next one; nothing else is."""
    paths = CrawlPaths(tmp_path / "tracks.jsonl")
    for path in (paths.out, paths.checkpoint):
        paths.temp_for(path).write_bytes(b"half")
    paths.part.write_bytes(b"kept")
    paths.remove_stale_temps()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.jsonl.part"]


@pytest.mark.parametrize("durable", [False, True])
def test_a_replacement_is_whole(tmp_path: Path, durable: bool) -> None:
    """The new content replaces the old in one rename; no temporary file is left."""
    paths = CrawlPaths(tmp_path / "tracks.jsonl")
    paths.out.write_bytes(b"old")

    def write(handle: BinaryIO) -> None:
        handle.write(b"new ")
        handle.write(b"content")

    replace_atomically(paths, paths.out, write, durable=durable)
    assert paths.out.read_bytes() == b"new content"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.jsonl"]


def test_a_failed_replacement_leaves_the_old_content(tmp_path: Path) -> None:
    """A writer that fails halfway: the old file stands, the temp is gone, the error rises."""
    paths = CrawlPaths(tmp_path / "tracks.jsonl")
    paths.out.write_bytes(b"old")

    def write(handle: BinaryIO) -> None:
        handle.write(b"half")
        raise RuntimeError("writer failed")

    with pytest.raises(RuntimeError, match="writer failed"):
        replace_atomically(paths, paths.out, write, durable=False)
    assert paths.out.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tracks.jsonl"]


def test_a_link_planted_at_the_temporary_name_is_not_written_through(tmp_path: Path) -> None:
    """The temp name is cleared and created exclusively: a link there never gets the data."""
    paths = CrawlPaths(tmp_path / "tracks.jsonl")
    victim = tmp_path / "victim"
    victim.write_bytes(b"keep")
    paths.temp_for(paths.out).symlink_to(victim)
    replace_atomically(paths, paths.out, lambda handle: handle.write(b"data"), durable=False)
    assert victim.read_bytes() == b"keep"
    assert paths.out.read_bytes() == b"data"
    assert not paths.out.is_symlink()


def test_the_lock_keeps_a_second_crawl_out_until_released(tmp_path: Path) -> None:
    """A second lock on the same output fails at once, naming the lock; after release it works."""
    paths = CrawlPaths(tmp_path / "tracks.jsonl")
    first, second = OutputLock(paths), OutputLock(paths)
    first.acquire()
    try:
        with pytest.raises(CrawlFileError, match="another crawl is writing it") as caught:
            second.acquire()
        assert str(paths.lock) in str(caught.value)
        assert caught.value.path == str(paths.out)
    finally:
        first.release()
    assert not paths.lock.exists()
    second.acquire()
    assert paths.lock.exists()
    second.release()
    second.release()  # a second release does nothing


def test_the_lock_refuses_a_link_at_its_name(tmp_path: Path) -> None:
    """A link planted as OUT.lock is refused, not followed to create or lock its target."""
    paths = CrawlPaths(tmp_path / "tracks.jsonl")
    paths.lock.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(CrawlFileError, match="symbolic link"):
        OutputLock(paths).acquire()
    assert not (tmp_path / "elsewhere").exists()


# -- through a crawl: checked before any request, resumable after a full disk -------------


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
