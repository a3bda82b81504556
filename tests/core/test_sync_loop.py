"""`Client` drives its loop in the calling thread when it can, and moves it to a thread when not.

Against the emulator: a plain call runs in the caller's thread with no thread
started; a second thread, a notebook (a running loop), trio or an iterator move
the loop to its own thread for good; Ctrl-C and close() end a driven call cleanly.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import trio

from audioscape_async import AudioScapeError, Client, CrawlStats
from audioscape_async.emulator import EmulatorServer, Faults

LOOP_THREAD = "audioscape-client-loop"
QUERY = "chill lo-fi beats"


def _loop_threads() -> list[threading.Thread]:
    return [thread for thread in threading.enumerate() if thread.name == LOOP_THREAD]


@pytest.fixture
def server(audioscape_emulator: EmulatorServer) -> EmulatorServer:
    """The session's emulator, reset around the test."""
    return audioscape_emulator


@pytest.fixture
def client(server: EmulatorServer) -> Iterator[Client]:
    """A `Client` on the emulator, closed after the test (and then it has no thread)."""
    before = _loop_threads()
    with Client(server.api_key, base_url=server.url, timeout=10) as client:
        yield client
    assert _loop_threads() == before


def _new_threads(before: set[threading.Thread]) -> list[threading.Thread]:
    """Threads started since `before`, but the loop's executor (a connection's name lookup
    runs there) and the emulator's workers (it runs in this process)."""
    return [
        thread
        for thread in set(threading.enumerate()) - before
        if not thread.name.startswith(("asyncio_", "AnyIO worker"))
    ]


def _slow(server: EmulatorServer, seconds: float) -> None:
    """Make every answer of the emulator wait `seconds`."""
    server.emulator.set_faults(Faults({"latency": 1.0}, latency=seconds))


def test_one_loop_thread_serves_every_call(server: EmulatorServer) -> None:
    """A Client starts no thread until used; its first call starts one loop thread, the only
    one it ever starts, which serves every later call."""
    before = set(threading.enumerate())
    client = Client(server.api_key, base_url=server.url)
    assert _new_threads(before) == []
    pages = [client.search(QUERY, limit=5, offset=offset) for offset in (0, 5, 10)]
    assert [len(page.tracks) for page in pages] == [5, 5, 5]
    assert len({track.asset_id for page in pages for track in page.tracks}) == 15
    assert _new_threads(before) == _loop_threads()
    assert len(_loop_threads()) == 1
    client.close()
    assert _new_threads(before) == []


def test_the_loop_keeps_running_between_calls(server: EmulatorServer, client: Client) -> None:
    """While the caller's thread is elsewhere, the loop goes on: a walk fetches its next page."""
    assert client.search(QUERY, limit=1).tracks
    requests = len(server.emulator.requests)
    pages = client.iter_pages(QUERY, page_size=10)
    assert len(next(pages).tracks) == 10
    deadline = time.monotonic() + 5
    while len(server.emulator.requests) < requests + 2 and time.monotonic() < deadline:
        time.sleep(0.01)  # not a call: the caller's thread is busy elsewhere
    assert len(server.emulator.requests) == requests + 2  # the page after the one read
    assert len(next(pages).tracks) == 10
    pages.close()


def test_hooks_run_in_the_loop_thread(client: Client, tmp_path: Path) -> None:
    """crawl_to_file's on_progress hook runs in the client's loop thread, never the caller's."""
    seen: list[threading.Thread] = []

    def hook(_stats: CrawlStats) -> None:
        seen.append(threading.current_thread())

    stats = client.crawl_to_file(QUERY, tmp_path / "out.jsonl", max_items=250, on_progress=hook)
    assert stats.tracks == 250
    assert seen
    assert set(seen) == set(_loop_threads())


def test_a_hook_calling_its_client_is_refused(client: Client, tmp_path: Path) -> None:
    """A call's hook that calls the same Client gets the clear error, not a hang."""
    errors: list[BaseException] = []

    def hook(_stats: CrawlStats) -> None:
        try:
            client.search(QUERY)
        except BaseException as error:
            errors.append(error)

    client.crawl_to_file(QUERY, tmp_path / "out.jsonl", max_items=100, on_progress=hook)
    assert errors
    assert all(isinstance(error, AudioScapeError) for error in errors)
    assert "own event-loop thread" in str(errors[0])
    assert client.search(QUERY, limit=1).tracks  # and the client is fine after


def test_many_threads_share_one_client(server: EmulatorServer, client: Client) -> None:
    """16 threads calling one Client at once all get their own page, through one loop thread."""
    expected = {offset: client.search(QUERY, limit=3, offset=offset) for offset in range(16)}
    _slow(server, 0.02)  # the calls overlap
    start = threading.Barrier(16)
    got: dict[int, list[str]] = {}
    errors: list[BaseException] = []

    def worker(offset: int) -> None:
        start.wait(timeout=5)
        try:
            for _ in range(3):
                page = client.search(QUERY, limit=3, offset=offset)
                got.setdefault(offset, []).extend(track.asset_id for track in page.tracks)
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=worker, args=(offset,)) for offset in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert not any(thread.is_alive() for thread in threads)
    assert errors == []
    assert got == {
        offset: [track.asset_id for track in page.tracks] * 3 for offset, page in expected.items()
    }
    assert len(_loop_threads()) == 1
    assert client.search(QUERY, limit=3).tracks == expected[0].tracks


def test_a_client_inside_a_running_loop(client: Client) -> None:
    """Called inside a running asyncio loop (a notebook cell), a Client runs in its own thread."""
    direct = client.search(QUERY, limit=4)

    async def notebook_cell() -> tuple[list[str], list[str]]:
        page = client.search(QUERY, limit=4)
        tracks = [track.asset_id for track in client.iter_tracks(QUERY, max_items=30)]
        return [track.asset_id for track in page.tracks], tracks

    ids, tracks = asyncio.run(notebook_cell())
    assert ids == [track.asset_id for track in direct.tracks]
    assert len(tracks) == len(set(tracks)) == 30
    assert len(_loop_threads()) == 1
    assert client.search(QUERY, limit=4).tracks == direct.tracks  # plain code again: fine


def test_a_client_inside_trio(client: Client) -> None:
    """Called inside trio.run, a Client runs its asyncio loop in a thread, not in trio's."""

    async def main() -> int:
        return len(client.search(QUERY, limit=2).tracks)

    assert client.search(QUERY, limit=2).tracks
    assert trio.run(main) == 2
    assert len(_loop_threads()) == 1


def test_a_search_then_an_iterator_then_a_search(client: Client) -> None:
    """A search, then an iterator, then a search again: one loop thread serves them all."""
    first = client.search(QUERY, limit=10)
    walked = [track.asset_id for track in client.iter_tracks(QUERY, page_size=10, max_items=35)]
    assert walked[:10] == [track.asset_id for track in first.tracks]
    assert len(walked) == len(set(walked)) == 35
    assert len(_loop_threads()) == 1
    again = client.search(QUERY, limit=10)
    assert again.tracks == first.tracks
    pages = list(client.iter_pages(QUERY, page_size=10, max_items=20))
    assert [len(page.tracks) for page in pages] == [10, 10]


def test_close_from_another_thread_ends_a_call(server: EmulatorServer) -> None:
    """close() in another thread ends a call in flight with the 'closed' error, at once."""
    before = _loop_threads()
    client = Client(server.api_key, base_url=server.url, timeout=10)
    client.search(QUERY, limit=1)  # warm: connection open
    _slow(server, 5.0)
    closer = threading.Timer(0.2, client.close)
    closer.start()
    started = time.monotonic()
    with pytest.raises(AudioScapeError, match="closed while this call was running"):
        client.search(QUERY, limit=1)
    assert time.monotonic() - started < 1.5
    closer.join(timeout=5)
    assert not closer.is_alive()
    assert client.is_closed
    assert _loop_threads() == before
    with pytest.raises(AudioScapeError, match="closed"):
        client.search(QUERY)


def test_close_leaves_no_thread(server: EmulatorServer) -> None:
    """Closing a Client stops its loop thread and its loop's executor: no thread left."""
    before = set(threading.enumerate())
    client = Client(server.api_key, base_url=server.url)
    client.search(QUERY, limit=1)
    client.close()
    assert _loop_threads() == []
    assert _new_threads(before) == []
    assert not [t for t in set(threading.enumerate()) - before if t.name.startswith("asyncio_")]
    assert client.is_closed


CTRL_C_SCRIPT = """
import os, signal, sys, time
# A launcher (an IDE, a CI runner) may start this process with SIGINT ignored:
# Python's own handler, as in a terminal.
signal.signal(signal.SIGINT, signal.default_int_handler)
from audioscape_async import Client
client = Client()
# Ctrl-C, as the terminal sends it, {delay} s into a search whose answer takes 5 s.
signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
signal.setitimer(signal.ITIMER_REAL, {delay})
print("searching", flush=True)
started = time.monotonic()
try:
    client.search("chill lo-fi beats", limit=1)
except KeyboardInterrupt:
    print("interrupted after", round(time.monotonic() - started, 1), flush=True)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    client.close()
    print("closed", flush=True)
    raise
"""


@pytest.mark.parametrize("delay", [0.3, 0.005], ids=["cancelled", "before-the-handler"])
def test_ctrl_c_during_a_search(server: EmulatorServer, delay: float) -> None:
    """Ctrl-C during a slow search raises KeyboardInterrupt at once; the exit is clean."""
    client = Client(server.api_key, base_url=server.url)
    client.search(QUERY, limit=1)  # the emulator is warm
    client.close()
    env = {**os.environ, "AUDIOSCAPE_BASE_URL": server.url, "AUDIOSCAPE_API_KEY": server.api_key}
    _slow(server, 5.0)
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-c", CTRL_C_SCRIPT.format(delay=delay)],
        capture_output=True,
        text=True,
        env=env,
        timeout=30,
    )
    assert time.monotonic() - started < 4  # well before the 5 s answer
    assert result.returncode == -signal.SIGINT, result.stderr
    searching, interrupted, closed, _ = result.stdout.split("\n")
    assert (searching, closed) == ("searching", "closed")
    assert interrupted.startswith("interrupted after ")
    assert float(interrupted.split()[-1]) < 1.0
    assert result.stderr.rstrip().endswith("KeyboardInterrupt")
    for noise in ("Task was destroyed", "Unclosed", "never retrieved", "Exception ignored"):
        assert noise not in result.stderr


def test_walks_on_a_closed_client_name_the_client(server: EmulatorServer) -> None:
    """A walk asked of a closed blocking Client says the Client is closed (not "AsyncClient")."""
    client = Client(server.api_key, base_url=server.url)
    client.search(QUERY, limit=1)
    client.close()
    walks = [
        lambda: client.iter_pages(QUERY),
        lambda: client.iter_tracks(QUERY),
        lambda: client.crawl(QUERY),
        lambda: client.search(QUERY),
    ]
    for walk in walks:
        with pytest.raises(AudioScapeError, match="this Client is closed"):
            walk()
