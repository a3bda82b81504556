"""Nothing but an `AudioScapeError` escapes, and nothing hangs, however a client is misused."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import threading
import time

import httpx
import pytest

from audioscape_async import AsyncClient, AudioScapeError, Client
from tests.helpers import API_KEY, MockAPI, ok
from tests.reliability.servers import RawServer, silent


def test_an_async_client_reused_in_a_second_asyncio_run_says_so() -> None:
    """A client first used in one `asyncio.run()` refuses another loop at once, clearly."""
    api = MockAPI(ok(), ok())
    client = AsyncClient(API_KEY, http_client=httpx.AsyncClient(transport=api.transport()))

    async def search() -> int:
        page = await client.search("calm piano")
        return len(page.tracks)

    assert asyncio.run(search()) == 1
    started = time.monotonic()
    with pytest.raises(AudioScapeError, match="another event loop"):
        asyncio.run(search())
    assert time.monotonic() - started < 1
    assert len(api.requests) == 1


def test_an_async_client_used_from_another_thread_says_so() -> None:
    """A second thread with its own loop gets the same clear error, not a hang."""
    api = MockAPI(ok(), ok())
    client = AsyncClient(API_KEY, http_client=httpx.AsyncClient(transport=api.transport()))

    async def search() -> None:
        await client.search("calm piano")

    asyncio.run(search())
    errors: list[BaseException] = []

    def other() -> None:
        try:
            asyncio.run(search())
        except BaseException as error:
            errors.append(error)

    thread = threading.Thread(target=other)
    thread.start()
    thread.join(5)
    assert len(errors) == 1
    assert isinstance(errors[0], AudioScapeError)


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
def test_clients_on_your_http_client_made_before_a_fork_say_so_in_the_child() -> None:
    """In a forked child, clients on your own http_client (whose connections are the
    parent's) refuse with a clear error instead of hanging; clients on their own pool work
    there (tests/core/test_sync_fork.py)."""
    script = """
import asyncio, os, sys
import httpx
from audioscape_async import AsyncClient, AudioScapeError, Client
url = "http://127.0.0.1:9/v1"
sync = Client("k", base_url=url, http_client=httpx.AsyncClient())
async_client = AsyncClient("k", base_url=url, max_retries=0, http_client=httpx.AsyncClient())
async def use():
    try:
        await async_client.search("x")
    except AudioScapeError as error:
        return str(error)
asyncio.run(use())
pid = os.fork()
if pid == 0:
    try:
        sync.search("x")
    except AudioScapeError as error:
        print("sync:", error)
    print("async:", asyncio.run(use()))
    sys.stdout.flush()
    os._exit(0)
os.waitpid(pid, 0)
sync.close()
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=30, check=True
    )
    assert "sync: this AsyncClient was created before the process forked" in done.stdout
    assert "async: this AsyncClient was created before the process forked" in done.stdout


def test_closing_a_client_while_other_threads_call_it() -> None:
    """Calls in flight when `close()` runs end with an `AudioScapeError`, at once."""
    with RawServer(silent, lifetime=15) as server:
        client = Client(API_KEY, base_url=server.url(), timeout=10)
        outcomes: list[BaseException | None] = []

        def call() -> None:
            try:
                client.search("calm piano")
                outcomes.append(None)
            except BaseException as error:
                outcomes.append(error)

        threads = [threading.Thread(target=call) for _ in range(4)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        started = time.monotonic()
        client.close()
        for thread in threads:
            thread.join(5)
        assert time.monotonic() - started < 3
    assert len(outcomes) == 4
    for outcome in outcomes:
        assert isinstance(outcome, AudioScapeError), repr(outcome)
        assert "closed" in str(outcome)


def test_closing_a_client_while_an_iterator_runs_elsewhere() -> None:
    """An iterator in another thread ends with an `AudioScapeError` when its client closes."""
    with RawServer(silent, lifetime=15) as server:
        client = Client(API_KEY, base_url=server.url(), timeout=10)
        outcome: list[BaseException] = []

        def walk() -> None:
            try:
                list(client.iter_tracks("calm piano"))
            except BaseException as error:
                outcome.append(error)

        thread = threading.Thread(target=walk)
        thread.start()
        time.sleep(0.3)
        client.close()
        thread.join(5)
    assert len(outcome) == 1
    assert isinstance(outcome[0], AudioScapeError), repr(outcome[0])


def test_a_hook_calling_its_own_client_fails_at_once() -> None:
    """`on_progress` runs in the loop thread; calling the client from it is refused, not a hang."""
    api = MockAPI(ok(), ok())
    errors: list[BaseException] = []
    with Client(API_KEY, http_client=httpx.AsyncClient(transport=api.transport())) as client:

        def hook(_stats: object) -> None:
            try:
                client.search("calm piano")
            except BaseException as error:
                errors.append(error)

        crawl = client.crawl("calm piano", on_progress=hook)
        assert len(list(crawl)) == 1
    assert len(errors) == 1
    assert isinstance(errors[0], AudioScapeError)
    assert "own event-loop thread" in str(errors[0])


def test_a_closed_client_refuses_every_method() -> None:
    """After close, every method of both clients raises `AudioScapeError`, none hangs."""
    client = Client(API_KEY)
    client.close()
    with pytest.raises(AudioScapeError, match="closed"):
        client.search("x")
    with pytest.raises(AudioScapeError, match="closed"):
        list(client.iter_pages("x"))
    with pytest.raises(AudioScapeError, match="closed"):
        client.crawl_to_file("x", "out.jsonl")
    with pytest.raises(AudioScapeError, match="closed"):
        client.__enter__()

    async def use_async() -> None:
        async with AsyncClient(API_KEY) as async_client:
            pass
        with pytest.raises(AudioScapeError, match="closed"):
            await async_client.search("x")
        with pytest.raises(AudioScapeError, match="closed"):
            async_client.iter_tracks("x")

    asyncio.run(use_async())
