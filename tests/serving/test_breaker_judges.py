"""The breaker judges the server, never the caller (issue 17, point 4).

A 429 is neutral (it neither counts nor resets the count); an attempt cut
short by the caller's deadline, a per-call (or a copy's) timeout, or a
cancellation is neutral unless it had already run longer than the client's own
timeout; 5xx, refused connections and timeouts at the client's own timeout
still open the circuit. Against the real emulator, on asyncio and trio, both
transports, and through the sync `Client`.
"""

from __future__ import annotations

from collections.abc import Iterator

import anyio
import pytest

from audioscape_async import (
    APIConnectionError,
    APITimeoutError,
    AsyncClient,
    Client,
    DeadlineExceededError,
    InternalServerError,
    RateLimitError,
)
from audioscape_async._breaker import CircuitBreaker, verdict
from audioscape_async._exceptions import CircuitOpenError
from audioscape_async.emulator import EmulatorServer, Faults
from tests.reliability.resources import wait_until
from tests.serving.breaker_clock import FakeClock

QUERY = "dark cinematic boss tension"
#: The emulator's answers take this long when its "latency" fault is on.
LATENCY = 0.3


@pytest.fixture
def server() -> Iterator[EmulatorServer]:
    """A healthy emulator of this test's own."""
    with EmulatorServer(tracks=300) as running:
        yield running


@pytest.fixture
def slow_server() -> Iterator[EmulatorServer]:
    """A healthy emulator whose every answer takes `LATENCY` seconds."""
    with EmulatorServer(tracks=300, faults=Faults({"latency": 1.0}, latency=LATENCY)) as running:
        yield running


def client_for(server: EmulatorServer, transport: str = "auto", **options: object) -> AsyncClient:
    return AsyncClient(
        server.api_key,
        base_url=server.url,
        transport=transport,  # type: ignore[arg-type]
        **options,  # type: ignore[arg-type]
    )


def rate_limited() -> RateLimitError:
    return RateLimitError("slow down", status_code=429)


def unavailable() -> InternalServerError:
    return InternalServerError("unavailable", status_code=503)


def caller(ran: float, own_timeout: float | None) -> dict[str, object]:
    """The judgement's keywords for an attempt under the caller's own limit."""
    return {"caller_limited": True, "ran": ran, "own_timeout": own_timeout}


# ---------------------------------------------------------------- the verdicts


@pytest.mark.parametrize(
    ("error", "kwargs", "expected"),
    [
        (unavailable(), {}, "failure"),
        (APIConnectionError("refused"), {}, "failure"),
        (APITimeoutError("slow"), {}, "failure"),
        (rate_limited(), {}, "neutral"),
        (CircuitOpenError("open"), {}, "neutral"),
        (KeyboardInterrupt(), {}, "neutral"),
        (APITimeoutError("slow"), caller(0.05, 60), "neutral"),
        (APITimeoutError("slow"), caller(0.2, 0.1), "failure"),
        (APITimeoutError("slow"), caller(9.0, None), "neutral"),
        (DeadlineExceededError("late"), caller(0.05, 60), "neutral"),
        (APIConnectionError("reset"), caller(0.01, 60), "failure"),
    ],
    ids=[
        "503", "refused", "own-timeout", "429", "not-sent", "cancelled", "caller-timeout",
        "slowed-past-own-timeout", "client-has-no-timeout", "deadline", "reset-under-deadline",
    ],
)  # fmt: skip
def test_each_outcome_has_one_verdict(error: BaseException, kwargs: object, expected: str) -> None:
    """Server failures count; a 429, a cancellation and the caller's limits are neutral."""
    assert verdict(error, **kwargs) == expected  # type: ignore[arg-type]


def test_a_429_neither_counts_nor_resets(clock: FakeClock) -> None:
    """429s do not open the circuit, and 429s between 503s do not hide the outage."""
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=30)
    for _ in range(10):
        breaker.record_failure(rate_limited())
    assert (breaker.state, breaker.failures) == ("closed", 0)
    for error in (unavailable(), rate_limited(), unavailable(), rate_limited()):
        breaker.record_failure(error)
    assert (breaker.state, breaker.failures) == ("closed", 2)
    breaker.record_failure(unavailable())
    assert breaker.state == "open"


@pytest.mark.parametrize(
    "outcome",
    [rate_limited(), KeyboardInterrupt(), DeadlineExceededError("late"), None],
    ids=["429", "cancelled", "deadline", "never-sent"],
)
def test_a_neutral_probe_gives_its_place_at_once(
    clock: FakeClock, outcome: BaseException | None
) -> None:
    """A probe that says nothing of the server lets the next attempt probe, not in 30 s."""
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=30)
    breaker.record_failure(unavailable())
    clock.now += 30
    breaker.before_attempt()  # the probe
    if outcome is None:
        breaker.record_neutral()
    else:
        breaker.record_failure(outcome, caller_limited=True, ran=0.05, own_timeout=60)
    assert breaker.state == "half_open"
    breaker.before_attempt()  # the next probe goes now
    with pytest.raises(CircuitOpenError, match="probe"):
        breaker.before_attempt()  # and only one at a time
    breaker.record_success()
    assert breaker.state == "closed"


# ---------------------------------------------------------------- against the emulator


@pytest.mark.anyio
@pytest.mark.parametrize(
    "impatience",
    [{"deadline": 0.05}, {"timeout": 0.05}],
    ids=["deadline", "per-call-timeout"],
)
async def test_impatient_callers_never_open_the_breaker(
    slow_server: EmulatorServer, sdk_transport: str, impatience: dict[str, float]
) -> None:
    """Three calls of 0.05 s against a healthy 0.3 s server: the circuit stays closed."""
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=30)
    async with client_for(
        slow_server, sdk_transport, circuit_breaker=breaker, max_retries=0
    ) as client:
        # Warm: a cold client's first call sets up its wire first, within its deadline.
        await client.search(QUERY, limit=1)
        for _ in range(5):
            with pytest.raises(APITimeoutError):
                await client.search(QUERY, limit=1, **impatience)  # type: ignore[arg-type]
        assert (breaker.state, breaker.failures) == ("closed", 0)
        page = await client.search(QUERY, limit=1)  # a patient caller is served
    assert page.status_code == 200
    emulator = slow_server.emulator
    assert await anyio.to_thread.run_sync(wait_until, lambda: emulator.in_flight == 0)
    assert len(emulator.requests) == 7


@pytest.mark.anyio
async def test_an_impatient_copy_never_opens_the_breaker(
    slow_server: EmulatorServer, sdk_transport: str
) -> None:
    """A `with_options(timeout=0.05)` copy is a caller too: its timeouts do not count."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    async with client_for(
        slow_server, sdk_transport, circuit_breaker=breaker, max_retries=0
    ) as client:
        hasty = client.with_options(timeout=0.05)
        for _ in range(4):
            with pytest.raises(APITimeoutError):
                await hasty.search(QUERY, limit=1)
        assert (breaker.state, breaker.failures) == ("closed", 0)
        assert (await client.search(QUERY, limit=1)).status_code == 200


def test_impatient_sync_callers_never_open_the_breaker(slow_server: EmulatorServer) -> None:
    """The sync `Client`: calls with `deadline=0.05` leave the breaker closed."""
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=30)
    with Client(
        slow_server.api_key, base_url=slow_server.url, circuit_breaker=breaker, max_retries=0
    ) as client:
        for _ in range(4):
            with pytest.raises(DeadlineExceededError):
                client.search(QUERY, limit=1, deadline=0.05)
        assert (breaker.state, breaker.failures) == ("closed", 0)
        assert client.search(QUERY, limit=1).status_code == 200


@pytest.mark.anyio
async def test_a_server_that_slowed_down_still_opens_it(
    slow_server: EmulatorServer, sdk_transport: str
) -> None:
    """Timeouts at the client's own timeout, or past it under a longer limit, count."""
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=30)
    async with client_for(
        slow_server, sdk_transport, timeout=0.1, circuit_breaker=breaker, max_retries=0
    ) as client:
        with pytest.raises(APITimeoutError):
            await client.search(QUERY, limit=1)  # the client's own timeout
        with pytest.raises(APITimeoutError):
            await client.search(QUERY, limit=1, timeout=0.2)  # ran 0.2 s, past 0.1 s
        patient = client.with_options(timeout=30)
        with pytest.raises(DeadlineExceededError):
            await patient.search(QUERY, limit=1, deadline=0.2)  # ran 0.2 s, past 0.1 s
        assert breaker.state == "open"
        with pytest.raises(CircuitOpenError):
            await client.search(QUERY, limit=1)
    emulator = slow_server.emulator
    assert await anyio.to_thread.run_sync(wait_until, lambda: emulator.in_flight == 0)
    assert len(emulator.requests) == 3  # the refused call never reached the server


@pytest.mark.anyio
async def test_429s_never_open_it_and_never_hide_503s(
    server: EmulatorServer, sdk_transport: str
) -> None:
    """Five 429s leave the circuit closed; 503, 429, 503, 429, 503 opens it."""
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=30)
    emulator = server.emulator
    async with client_for(server, sdk_transport, circuit_breaker=breaker, max_retries=0) as client:
        emulator.force_fault("429", count=5)
        for _ in range(5):
            with pytest.raises(RateLimitError):
                await client.search(QUERY, limit=1)
        assert (breaker.state, breaker.failures) == ("closed", 0)
        for fault in ("503", "429", "503", "429", "503"):
            emulator.force_fault(fault)
            with pytest.raises((InternalServerError, RateLimitError)):
                await client.search(QUERY, limit=1)
        assert breaker.state == "open"


@pytest.mark.anyio
async def test_a_cancelled_or_hasty_probe_lets_the_next_call_probe(
    slow_server: EmulatorServer, sdk_transport: str, clock: FakeClock
) -> None:
    """A probe cancelled by its caller, or cut by its deadline, does not keep the circuit open."""
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=30)
    emulator = slow_server.emulator
    async with client_for(
        slow_server, sdk_transport, circuit_breaker=breaker, max_retries=0
    ) as client:
        emulator.force_fault("503")
        with pytest.raises(InternalServerError):
            await client.search(QUERY, limit=1)
        assert breaker.state == "open"
        clock.now += 30
        with anyio.move_on_after(0.05) as scope:
            await client.search(QUERY, limit=1)  # the probe; its caller gives up
        assert scope.cancelled_caught
        assert breaker.state == "half_open"
        with pytest.raises(DeadlineExceededError):
            await client.search(QUERY, limit=1, deadline=0.05)  # the next probe, too hasty
        assert breaker.state == "half_open"
        page = await client.search(QUERY, limit=1)  # probes at once, not in 30 s
    assert page.status_code == 200
    assert breaker.state == "closed"


@pytest.mark.anyio
async def test_a_refused_connection_still_opens_it(sdk_transport: str) -> None:
    """No server at all (connection refused) is a server failure, under a deadline too."""
    with EmulatorServer(tracks=10) as gone:
        url = gone.url
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    async with AsyncClient(
        "sk-any-0123456789",
        base_url=url,
        transport=sdk_transport,  # type: ignore[arg-type]
        circuit_breaker=breaker,
        max_retries=0,
    ) as client:
        for _ in range(2):
            with pytest.raises(APIConnectionError) as caught:
                await client.search(QUERY, deadline=5)
            assert not isinstance(caught.value, CircuitOpenError)
        with pytest.raises(CircuitOpenError):
            await client.search(QUERY)
