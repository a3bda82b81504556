"""Every deadline, waiting or not, ends in `DeadlineExceededError` (issue 17, point 10).

One test per place a call's deadline can end it in the gate, the retries and
the attempt: the client-wide pause after a 429, the client-side rate limit,
the retry's backoff and Retry-After sleeps, the attempt's bound and the check
before an attempt. Each asserts the exact class, never a bare
`APITimeoutError`, `RateLimitError` or cancellation.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from audioscape_async import (
    AsyncClient,
    Client,
    DeadlineExceededError,
    RateLimit,
    RateLimitError,
    RetryPolicy,
)
from audioscape_async.emulator import EmulatorServer, Faults

QUERY = "neon rain at midnight"


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """An emulator whose forced 429s say `Retry-After: 2`."""
    with EmulatorServer(tracks=300, faults=Faults(retry_after=2)) as running:
        yield running


def client_for(server: EmulatorServer, transport: str = "auto", **options: object) -> AsyncClient:
    return AsyncClient(
        server.api_key,
        base_url=server.url,
        transport=transport,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def exactly_deadline(error: BaseException) -> None:
    assert type(error) is DeadlineExceededError, repr(error)


@pytest.mark.anyio
async def test_the_pause_after_a_429(server: EmulatorServer, sdk_transport: str) -> None:
    """A call that cannot wait out the client's pause ends in DeadlineExceededError."""
    async with client_for(server, sdk_transport, max_retries=0) as client:
        server.emulator.force_fault("429")
        with pytest.raises(RateLimitError):
            await client.search(QUERY, limit=1)
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError) as caught:
            await client.search(QUERY, limit=1, deadline=0.5)
        assert time.monotonic() - began < 0.3  # refused at once, not slept
    exactly_deadline(caught.value)
    assert "pause after a 429" in str(caught.value)


@pytest.mark.anyio
async def test_a_pause_past_both_the_cap_and_the_deadline(server: EmulatorServer) -> None:
    """A pause longer than this call's `max_retry_after` and its deadline: the deadline says so."""
    async with client_for(server, max_retries=0) as client:
        server.emulator.force_fault("429")
        with pytest.raises(RateLimitError):
            await client.search(QUERY, limit=1)
        with pytest.raises(DeadlineExceededError) as caught:
            await client.search(QUERY, limit=1, deadline=0.5, retry=RetryPolicy(max_retry_after=1))
    exactly_deadline(caught.value)


@pytest.mark.anyio
async def test_the_client_side_rate_limit(server: EmulatorServer) -> None:
    """A rate-limit turn that cannot come before the deadline ends in DeadlineExceededError."""
    limit = RateLimit(requests_per_second=0.2, burst=1)
    async with client_for(server, rate_limit=limit) as client:
        await client.search(QUERY, limit=1)
        with pytest.raises(DeadlineExceededError) as caught:
            await client.search(QUERY, limit=1, deadline=1)
    exactly_deadline(caught.value)
    assert "rate limit" in str(caught.value)
    assert len(server.emulator.requests) == 1


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("fault", "policy"),
    [
        ("503", RetryPolicy(initial_backoff=4, max_backoff=4)),
        ("429", RetryPolicy()),
    ],
    ids=["backoff", "retry-after"],
)
async def test_the_retry_sleep(server: EmulatorServer, fault: str, policy: RetryPolicy) -> None:
    """A backoff or a Retry-After that cannot end before the deadline ends the call now."""
    async with client_for(server, retry=policy) as client:
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError) as caught:
            await client.search(
                QUERY, limit=1, deadline=1, extra_headers={"x-emulator-fault": fault}
            )
        assert time.monotonic() - began < 0.5
    exactly_deadline(caught.value)
    assert fault in str(caught.value)
    assert len(server.emulator.requests) == 1


@pytest.mark.anyio
async def test_the_attempt_bound(sdk_transport: str) -> None:
    """An attempt cut short by the deadline (a slow server, a long timeout) ends in it."""
    slow = Faults({"latency": 1.0}, latency=1.0)
    with EmulatorServer(tracks=300, faults=slow) as server:
        async with client_for(server, sdk_transport, timeout=30, max_retries=3) as client:
            await client.search(QUERY, limit=1)  # warm: the wire's set-up is not the attempt
            with pytest.raises(DeadlineExceededError) as caught:
                await client.search(QUERY, limit=1, deadline=0.2)
    exactly_deadline(caught.value)
    assert "during attempt 1" in str(caught.value)


@pytest.mark.anyio
async def test_the_deadline_across_retries(sdk_transport: str) -> None:
    """503s and short backoffs until the deadline ends: whichever check ends it, the deadline."""
    with EmulatorServer(tracks=300, faults=Faults({"503": 1.0})) as server:
        policy = RetryPolicy(max_retries=50, initial_backoff=0.1, max_backoff=0.1)
        async with client_for(server, sdk_transport, retry=policy) as client:
            began = time.monotonic()
            with pytest.raises(DeadlineExceededError) as caught:
                await client.search(QUERY, limit=1, deadline=0.4)
            assert time.monotonic() - began < 1.0
    exactly_deadline(caught.value)


def test_the_sync_client_ends_each_wait_in_the_deadline(server: EmulatorServer) -> None:
    """The sync `Client`: the retry sleep and the pause it leaves both end in the deadline."""
    with Client(server.api_key, base_url=server.url) as client:
        errors = []
        for options in (
            {"extra_headers": {"x-emulator-fault": "429"}},  # the retry sleep: 2 s
            {},  # the pause it left: 2 s
        ):
            with pytest.raises(DeadlineExceededError) as caught:
                client.search(QUERY, limit=1, deadline=1, **options)  # type: ignore[arg-type]
            errors.append(caught.value)
    for error in errors:
        exactly_deadline(error)
    assert "429" in str(errors[0])
    assert "pause after a 429" in str(errors[1])


@pytest.mark.anyio
async def test_the_first_calls_wire_set_up(
    server: EmulatorServer, sdk_transport: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A cold client sets up its wire (an import, in a worker thread) within the deadline."""
    from audioscape_async import _transport

    prepare = _transport._prepare

    def slow_prepare(library: str, trust_env: bool) -> object:
        time.sleep(0.5)  # a slow import, on a loaded machine
        return prepare(library, trust_env)

    monkeypatch.setattr(_transport, "_prepare", slow_prepare)
    async with client_for(server, sdk_transport) as client:
        began = time.monotonic()
        with pytest.raises(DeadlineExceededError, match="set up its connection pool"):
            await client.search(QUERY, limit=1, deadline=0.2)
        assert time.monotonic() - began < 0.45  # not held for the whole set-up
        assert server.emulator.requests == []
        page = await client.search(QUERY, limit=1)  # no deadline: it waits for the set-up
    assert page.status_code == 200
