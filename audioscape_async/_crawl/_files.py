"""The files of a crawl: checked before any request, locked, never written through a link.

A crawl to ``OUT`` owns four names beside it: ``OUT.lock`` (held with
``flock`` for the crawl's life), ``OUT.part`` (JSON lines, appended page by
page), ``OUT.checkpoint`` (replaced atomically after every page) and the
temporary ``.OUT.tmp`` that becomes ``OUT`` (or the checkpoint) by
``os.replace``. Each is opened with ``O_NOFOLLOW`` or replaced by a rename, so
a symbolic link planted under one of those names is refused, never followed.
Temporary names are fixed, not per process: a run killed mid-write leaves one
that the next run (holding the lock) removes.

Every `OSError` becomes a `CrawlFileError` that names the file and keeps the
`OSError` as its ``__cause__``.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

from audioscape_async._exceptions import CrawlFileError

__all__ = [
    "CrawlPaths",
    "OutputLock",
    "check_output_path",
    "file_errors",
    "read_no_follow",
    "replace_atomically",
]

_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
_CLOEXEC = getattr(os, "O_CLOEXEC", 0)

_PROBLEMS = {
    errno.ENOSPC: "the disk is full",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "the file is larger than this system allows",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ELOOP: "it is a symbolic link, and a crawl never writes through one",
    errno.EISDIR: "it is a directory",
    errno.ENOENT: "no such file or directory",
    errno.ENOTDIR: "a part of the path is not a directory",
}


def describe(error: OSError) -> str:
    """An OSError in words, without the Python class name."""
    if error.errno in _PROBLEMS:
        return _PROBLEMS[error.errno]
    return error.strerror or str(error)


@contextmanager
def file_errors(path: Path, doing: str) -> Iterator[None]:
    """Turn an OSError while `doing` something to `path` into a CrawlFileError."""
    try:
        yield
    except OSError as error:
        raise CrawlFileError(path, f"cannot {doing}: {describe(error)}") from error


class CrawlPaths:
    """The names a crawl to `out` uses."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.part = out.with_name(out.name + ".part")
        self.checkpoint = out.with_name(out.name + ".checkpoint")
        self.lock = out.with_name(out.name + ".lock")

    def temp_for(self, path: Path) -> Path:
        return path.with_name(f".{path.name}.tmp")

    def remove_stale_temps(self) -> None:
        """Remove what a run killed mid-replace left (safe: we hold the lock)."""
        for path in (self.out, self.checkpoint):
            temp = self.temp_for(path)
            with file_errors(temp, "remove a stale temporary file"):
                temp.unlink(missing_ok=True)


def check_output_path(out: str | os.PathLike[str]) -> Path:
    """The output path, checked before any request: a file we may create in a real directory."""
    text = os.fspath(out)
    if not text.strip():
        raise CrawlFileError(text, "the output path is empty")
    path = Path(text)
    if text.endswith(os.sep) or path.name in ("", ".", ".."):
        raise CrawlFileError(path, "the output path names a directory, not a file")
    try:
        info = os.lstat(path)
    except FileNotFoundError:
        info = None
    except OSError as error:
        raise CrawlFileError(path, f"cannot check the output path: {describe(error)}") from error
    if info is not None and stat.S_ISDIR(info.st_mode):
        raise CrawlFileError(path, "it is a directory; give a file name to write")
    if info is not None and not (stat.S_ISREG(info.st_mode) or stat.S_ISLNK(info.st_mode)):
        raise CrawlFileError(path, "it is not a regular file")
    parent = path.parent
    if not parent.is_dir():
        raise CrawlFileError(path, f"its directory {parent} does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise CrawlFileError(path, f"no permission to create files in {parent}")
    return path


def exists_no_follow(path: Path) -> bool:
    """True if anything (a link included) has this name."""
    try:
        os.lstat(path)
    except FileNotFoundError:
        return False
    except OSError as error:
        raise CrawlFileError(path, f"cannot check it: {describe(error)}") from error
    return True


def read_no_follow(path: Path) -> bytes:
    """The bytes of `path`, refusing a symbolic link."""
    with file_errors(path, "read it"):
        fd = os.open(path, os.O_RDONLY | _NOFOLLOW | _CLOEXEC)
        with os.fdopen(fd, "rb") as handle:
            return handle.read()


def open_no_follow(path: Path, flags: int) -> int:
    """`os.open` that refuses a symbolic link at `path`."""
    with file_errors(path, "open it"):
        return os.open(path, flags | _NOFOLLOW | _CLOEXEC, 0o644)


def write_all(fd: int, data: bytes, path: Path) -> None:
    """Write every byte (os.write may write less than asked)."""
    view = memoryview(data)
    with file_errors(path, "write to it"):
        while view:
            view = view[os.write(fd, view) :]


def _fsync_directory(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | _CLOEXEC)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_atomically(
    paths: CrawlPaths, path: Path, write: Callable[[BinaryIO], object], *, durable: bool
) -> None:
    """Give `path` new content whole or not at all: a temp file beside it, then os.replace.

    With `durable` the data and the rename are on disk (fsync) before this returns.
    """
    temp = paths.temp_for(path)
    with file_errors(temp, "replace a stale temporary file"):
        temp.unlink(missing_ok=True)
    fd = open_no_follow(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    try:
        with file_errors(path, "write it"):
            with os.fdopen(fd, "wb") as handle:
                write(handle)
                handle.flush()
                if durable:
                    os.fsync(handle.fileno())
            os.replace(temp, path)
            if durable:
                _fsync_directory(path.parent)
    except BaseException:
        temp.unlink(missing_ok=True)
        raise


class OutputLock:
    """An exclusive ``flock`` on ``OUT.lock`` for the life of a crawl."""

    def __init__(self, paths: CrawlPaths) -> None:
        self._paths = paths
        self._fd = -1

    def acquire(self) -> None:
        """Take the lock now or fail at once, before any request."""
        import fcntl

        lock = self._paths.lock
        while True:
            fd = open_no_follow(lock, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                raise CrawlFileError(
                    self._paths.out,
                    f"another crawl is writing it (it holds {lock}); wait for that crawl "
                    "to end, or write to another file",
                ) from None
            except OSError as error:
                os.close(fd)
                raise CrawlFileError(lock, f"cannot lock it: {describe(error)}") from error
            # The holder before us may have removed the name after we opened it:
            # then we locked an orphan, and try again on the file the name has now.
            try:
                same = os.fstat(fd).st_ino == os.stat(lock, follow_symlinks=False).st_ino
            except FileNotFoundError:
                same = False
            if same:
                self._fd = fd
                return
            os.close(fd)

    def release(self) -> None:
        """Remove the lock file (while still holding it) and let go."""
        if self._fd < 0:
            return
        try:
            with file_errors(self._paths.lock, "remove it"):
                self._paths.lock.unlink(missing_ok=True)
        finally:
            os.close(self._fd)
            self._fd = -1
