"""What a client holds, read from the outside: connections, sockets, tasks, threads, memory.

Linux only (/proc); the reliability tests that need these skip elsewhere.
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs

from audioscape_async import AsyncClient, Client

HAVE_PROC = Path("/proc/self/fd").is_dir()


def open_fds() -> int:
    """How many file descriptors this process has open."""
    return len(os.listdir("/proc/self/fd"))


def rss_bytes() -> int:
    """The resident set size of this process."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE")


def _socket_inodes() -> set[str]:
    inodes = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    return inodes


def sockets_to(port: int) -> int:
    """How many TCP sockets this process holds open *to* `port` (the client's side)."""
    mine = _socket_inodes()
    count = 0
    for table in ("/proc/self/net/tcp", "/proc/self/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            remote_port = int(fields[2].rsplit(":", 1)[1], 16)
            if remote_port == port and fields[9] in mine:
                count += 1
    return count


@attrs.frozen
class PoolState:
    """The connections of a client's own pool: open ones, and those checked out (in use)."""

    open: int
    busy: int


def pool_state(client: AsyncClient | Client) -> PoolState:
    """Look inside the client's pool, whichever wire carries it (httpcore's or aiohttp's)."""
    if isinstance(client, Client):
        client = client._async
    stage = client._pipeline.shared.transport
    if stage.chosen is None:
        return PoolState(0, 0)  # nothing was ever sent
    opened = busy = 0
    wire: Any = stage.wire
    # httpcore pools: the SDK's own (its small pools and any proxy's), or your client's one.
    pools: list[Any] = [*getattr(wire, "pools", []), *getattr(wire, "proxied", {}).values()]
    http = getattr(wire, "http", None)
    if http is not None:
        pools.append(getattr(http._transport, "_pool", None))
    for pool in pools:
        if pool is None:
            continue
        connections = pool.connections
        opened += len(connections)
        busy += sum(not (c.is_idle() or c.is_closed()) for c in connections)
        busy += len(pool._requests)
    session = getattr(wire, "session", None)
    connector = getattr(session, "connector", None)
    if connector is not None:
        idle = sum(len(conns) for conns in connector._conns.values())
        acquired = len(connector._acquired)
        opened += idle + acquired
        busy += acquired
    return PoolState(opened, busy)


def wait_until(condition: Callable[[], bool], timeout: float = 5.0) -> bool:
    """Poll `condition` (from a thread that may block) until it holds or `timeout` passes."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)


def client_threads() -> list[threading.Thread]:
    """The event-loop threads of sync `Client`s that are still alive."""
    return [t for t in threading.enumerate() if t.name == "audioscape-client-loop"]


def running_tasks() -> int:
    """How many tasks the current event loop runs (asyncio or trio), this one included."""
    import sniffio

    if sniffio.current_async_library() == "asyncio":
        import asyncio

        return len(asyncio.all_tasks())
    import trio

    def count(task: trio.lowlevel.Task) -> int:
        return 1 + sum(count(child) for n in task.child_nurseries for child in n.child_tasks)

    root = trio.lowlevel.current_root_task()
    assert root is not None
    return count(root)


def collect() -> None:
    """A full garbage collection (three passes: finalizers can free more)."""
    for _ in range(3):
        gc.collect()
