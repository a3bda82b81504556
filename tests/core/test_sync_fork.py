"""Clients made before `fork` work in the child, as redis-py's do: a loop, pool and gate of its own.

Each scenario runs in a fresh interpreter that forks (the test process runs the
emulator's threads, which a fork would not carry over), against the emulator
of this test session. Parent and child search at the same time, each checking
that every answer is the one it asked for: had the child used a connection of
the parent, answers would cross (or a connection would break).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from audioscape_async.emulator import EmulatorServer

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")

COMMON = """
import asyncio, os, sys
from audioscape_async import AsyncClient, AudioScapeError, Client

QUERY = "chill lo-fi beats"

def check(page, offset):
    assert page.meta.offset == offset, (page.meta.offset, offset)
    assert page.tracks

def sync_searches(client, offsets):
    for offset in offsets:
        check(client.search(QUERY, limit=2, offset=offset), offset)

async def async_searches(client, offsets):
    for offset in offsets:
        check(await client.search(QUERY, limit=2, offset=offset), offset)

def fork(child, parent):
    pid = os.fork()
    if pid == 0:
        try:
            child()
            print("child ok", flush=True)
        except BaseException as error:
            print("child failed:", repr(error), flush=True)
            os._exit(1)
        sys.exit(0)  # a normal exit: the child's own loop thread is closed at exit
    parent()
    _, status = os.waitpid(pid, 0)
    print("parent ok, child exit", os.waitstatus_to_exitcode(status), flush=True)
"""

SYNC = """
client = Client(max_retries=0)
copy = client.with_options(timeout=10)
sync_searches(client, [0])  # the parent's loop thread runs, its pool holds a connection
fork(
    lambda: (sync_searches(client, range(1, 30)), sync_searches(copy, range(30, 40))),
    lambda: sync_searches(client, range(40, 70)),
)
sync_searches(client, [70])  # the parent's connection is still sound
client.close()
"""

ASYNC = """
client = AsyncClient(max_retries=0)
loop = asyncio.new_event_loop()  # the parent's: the client stays on it
loop.run_until_complete(async_searches(client, [0]))

async def child():  # a fresh loop, in the child; closing there closes only the child's pool
    await async_searches(client, range(1, 30))
    await client.aclose()

fork(
    lambda: asyncio.run(child()),
    lambda: loop.run_until_complete(async_searches(client, range(40, 70))),
)
loop.run_until_complete(async_searches(client, [70]))
loop.run_until_complete(client.aclose())
"""

POOL = """
import multiprocessing

client = Client(max_retries=0)  # module level, used before the pool forks

def first_track(offset):
    return client.search(QUERY, limit=1, offset=offset).tracks[0].asset_id

if __name__ == "__main__":
    expected = [first_track(offset) for offset in range(12)]
    with multiprocessing.get_context("fork").Pool(3) as pool:
        got = pool.map_async(first_track, range(12)).get(timeout=60)
    assert got == expected, (got, expected)
    print("pool ok", flush=True)
    client.close()
"""


def _run(server: EmulatorServer, script: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "AUDIOSCAPE_BASE_URL": server.url,
        "AUDIOSCAPE_API_KEY": server.api_key,
    }
    return subprocess.run(
        [sys.executable, "-c", COMMON + script],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )


def test_a_client_made_before_a_fork_works_in_the_child(audioscape_server: EmulatorServer) -> None:
    """A used Client (and its with_options copy) serves the forked child from a loop and pool
    of the child's own, while the parent goes on with its own; both exit cleanly."""
    result = _run(audioscape_server, SYNC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["child ok", "parent ok, child exit 0"]
    assert result.stderr == ""


def test_an_async_client_made_before_a_fork_works_in_a_fresh_loop_of_the_child(
    audioscape_server: EmulatorServer,
) -> None:
    """An AsyncClient used before a fork serves the child's own event loop with a new pool,
    while the parent goes on with its own loop and pool."""
    result = _run(audioscape_server, ASYNC)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["child ok", "parent ok, child exit 0"]
    assert result.stderr == ""


def test_a_fork_pool_uses_a_module_level_client(audioscape_server: EmulatorServer) -> None:
    """The workers of a fork `multiprocessing.Pool` all answer through a module-level Client."""
    result = _run(audioscape_server, POOL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.splitlines() == ["pool ok"]
    assert result.stderr == ""
