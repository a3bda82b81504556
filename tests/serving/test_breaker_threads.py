"""One `CircuitBreaker` shared by clients on several threads and event loops (issue 17.3).

A sync `Client` (its own loop thread), an `AsyncClient` under ``asyncio.run`` and one
under trio, each in a thread of its own, share one breaker in front of a server that
fails: together they open it once, every one of them is then refused at once, and
nothing raises anything but the SDK's errors.
"""

from __future__ import annotations

import threading
from collections import Counter

import anyio
import pytest

from audioscape_async import AsyncClient, CircuitBreaker, CircuitOpenError, Client
from audioscape_async.emulator import EmulatorServer, Faults

CALLS = 12


def test_one_breaker_serves_clients_on_three_loops_at_once() -> None:
    """Three threads, three event loops (asyncio, trio, a sync Client's), one breaker."""
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=60)
    outcomes: dict[str, Counter[str]] = {}
    with EmulatorServer(tracks=50, faults=Faults({"503": 1.0})) as server:

        def record(name: str, error: BaseException | None) -> None:
            kind = "ok" if error is None else type(error).__name__
            outcomes.setdefault(name, Counter())[kind] += 1

        def sync_client() -> None:
            with Client(
                server.api_key, base_url=server.url, circuit_breaker=breaker, max_retries=0
            ) as client:
                for _ in range(CALLS):
                    try:
                        client.search("storm", limit=1)
                        record("sync", None)
                    except Exception as error:
                        record("sync", error)

        async def async_calls(name: str) -> None:
            async with AsyncClient(
                server.api_key, base_url=server.url, circuit_breaker=breaker, max_retries=0
            ) as client:
                for _ in range(CALLS):
                    try:
                        await client.search("storm", limit=1)
                        record(name, None)
                    except Exception as error:
                        record(name, error)

        threads = [
            threading.Thread(target=sync_client),
            threading.Thread(target=anyio.run, args=(async_calls, "asyncio")),
            threading.Thread(
                target=anyio.run, args=(async_calls, "trio"), kwargs={"backend": "trio"}
            ),
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert not any(thread.is_alive() for thread in threads)
        sent = len(server.emulator.requests)
    assert set(outcomes) == {"sync", "asyncio", "trio"}
    for name, counts in outcomes.items():
        assert sum(counts.values()) == CALLS, name
        assert set(counts) <= {"InternalServerError", "CircuitOpenError"}, (name, counts)
        assert counts["CircuitOpenError"] > 0, (name, counts)
    # The circuit opened after the third failure, counted across the three loops: the
    # calls already in flight when it opened got through, and nothing after them.
    failed = sum(counts["InternalServerError"] for counts in outcomes.values())
    assert 3 <= failed <= 5
    assert sent == failed
    assert breaker.state == "open"
    with pytest.raises(CircuitOpenError):
        breaker.before_attempt()
