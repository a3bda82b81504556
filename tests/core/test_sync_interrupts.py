"""The blocking Client survives interrupts, from a hook in its loop or in the caller's thread."""

from __future__ import annotations

import signal
import threading
import time

import pytest

from audioscape_async import Client, CrawlStats, SearchResponse
from audioscape_async.emulator import DEMO_API_KEY, EmulatorServer, Faults

QUERY = "chill lo-fi beats"


def _interrupt(stats: CrawlStats) -> None:
    raise KeyboardInterrupt


def test_keyboard_interrupt_in_crawl_hook_reaches_the_caller(
    audioscape_emulator: EmulatorServer,
) -> None:
    """KeyboardInterrupt from on_progress in a sync crawl reaches the caller; the loop lives on."""
    outcome: list[object] = []
    client = Client(api_key=DEMO_API_KEY, base_url=audioscape_emulator.url)

    def walk() -> None:
        try:
            for _ in client.crawl("q", max_items=50, page_size=10, on_progress=_interrupt):
                pass
        except BaseException as error:
            outcome.append(error)
        try:
            outcome.append(client.search("q", limit=5))
        finally:
            client.close()

    thread = threading.Thread(target=walk, daemon=True)  # a hang must not hang the suite
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the crawl (or close) hung after the hook's KeyboardInterrupt"
    assert type(outcome[0]) is KeyboardInterrupt
    assert isinstance(outcome[1], SearchResponse)


def test_keyboard_interrupt_in_a_search_hook_reaches_the_caller(
    audioscape_emulator: EmulatorServer, tmp_path: object
) -> None:
    """KeyboardInterrupt from a crawl_to_file hook (a plain call, not a walk) reaches the
    caller; the client serves the next call."""
    client = Client(api_key=DEMO_API_KEY, base_url=audioscape_emulator.url)
    outcome: list[object] = []

    def calls() -> None:
        try:
            for attempt in range(2):
                out = f"{tmp_path}/out{attempt}.jsonl"
                try:
                    client.crawl_to_file(QUERY, out, on_progress=_interrupt)
                except BaseException as error:
                    outcome.append(error)
            outcome.append(client.search("q", limit=5))
        finally:
            client.close()

    thread = threading.Thread(target=calls, daemon=True)  # a hang must not hang the suite
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the call hung after the interrupt"
    assert [type(error) for error in outcome[:2]] == [KeyboardInterrupt, KeyboardInterrupt]
    assert isinstance(outcome[2], SearchResponse)


def _search_then_wait(client: Client) -> None:
    client.search(QUERY, limit=5)
    time.sleep(1)  # pragma: no cover - the alarm comes first


@pytest.mark.parametrize("delay", [0.0005, 0.005, 0.05])
def test_an_interrupt_at_any_moment_of_a_call_leaves_the_client_working(
    audioscape_emulator: EmulatorServer, delay: float
) -> None:
    """A KeyboardInterrupt in the calling thread, early or late in a call, raises there; the
    call is cancelled in the loop and the client serves the next call at once."""
    audioscape_emulator.emulator.set_faults(Faults({"latency": 1.0}, latency=0.2))
    client = Client(api_key=DEMO_API_KEY, base_url=audioscape_emulator.url)

    def interrupt(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    previous = signal.signal(signal.SIGALRM, interrupt)
    try:
        for _ in range(2):  # the first call starts the loop thread, the second finds it
            signal.setitimer(signal.ITIMER_REAL, delay)
            with pytest.raises(KeyboardInterrupt):
                _search_then_wait(client)
        audioscape_emulator.emulator.set_faults(Faults())
        assert client.search(QUERY, limit=5).tracks
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        client.close()
