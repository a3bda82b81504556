"""Review findings: the blocking Client survives what a caller's hook raises in its loop thread."""

from __future__ import annotations

import threading

from audioscape_async import Client, CrawlStats, SearchResponse
from audioscape_async.emulator import DEMO_API_KEY, EmulatorServer


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


def _raise_interrupt() -> None:
    raise KeyboardInterrupt


def test_interrupt_before_the_runner_takes_the_call_does_not_hang(
    audioscape_emulator: EmulatorServer,
) -> None:
    """A KeyboardInterrupt in the loop before the runner takes a call: raised, no hang."""
    outcome: list[object] = []
    client = Client(api_key=DEMO_API_KEY, base_url=audioscape_emulator.url)

    def calls() -> None:
        try:
            for _ in range(2):  # the first call starts the runner, the second reuses it
                assert client._runtime is not None
                client._runtime.loop.call_soon(_raise_interrupt)  # as SIGINT would, in a callback
                try:
                    client.search("q", limit=5)
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
