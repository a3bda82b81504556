"""`_gate`: the per-client gate spaces requests to the rate, holds them through a 429's pause.

The gate is driven directly, with the SDK's one injectable sleep recorded (the
`sleeps` fixture) instead of slept, so that each test reads the waits the gate
asked for. Deadlines at the gate, through a client, are `test_gate_deadlines.py`.
"""

from __future__ import annotations

import time

import pytest

from audioscape_async import DeadlineExceededError, RateLimit, RateLimitError
from audioscape_async._config import ClientConfig
from audioscape_async._gate import Gate
from audioscape_async._options import CallOptions, call_options


def test_an_open_unlimited_gate_is_ready() -> None:
    """No rate limit and no pause: a request goes without the gate counting anything."""
    assert Gate(None).ready()


@pytest.mark.anyio
async def test_a_paused_gate_is_not_ready_until_the_pause_ends() -> None:
    """A 429's pause holds requests: the gate must be waited on while it lasts."""
    gate = Gate(None)
    await gate.pause(60.0)
    assert not gate.ready()
    await gate.pause(-1.0)  # a later, shorter pause does not shorten it
    assert not gate.ready()


def test_a_rate_limited_gate_is_never_ready() -> None:
    """With a client-side rate limit every request is counted, so it goes through wait()."""
    assert not Gate(RateLimit(requests_per_second=1_000_000)).ready()


@pytest.mark.anyio
async def test_a_burst_goes_at_once_then_one_request_per_interval(sleeps: list[float]) -> None:
    """10 per second with a burst of 3: three turns now, then each 0.1 s after the last."""
    gate = Gate(RateLimit(requests_per_second=10, burst=3))
    waited = [await gate.wait() for _ in range(6)]
    assert waited[:3] == [0.0, 0.0, 0.0]
    assert waited[3:] == pytest.approx([0.1, 0.2, 0.3], abs=0.01)
    assert sleeps == waited[3:]


@pytest.mark.anyio
async def test_a_pause_holds_each_task_once(sleeps: list[float]) -> None:
    """A wait during a pause sleeps it out; a task that already slept through it (its own retry
    sleep after the 429) is not held again."""
    gate = Gate(None)
    until = await gate.pause(2.0)
    assert await gate.wait() == pytest.approx(2.0, abs=0.05)
    assert await gate.wait(slept_until=until) == 0.0
    assert sleeps == [pytest.approx(2.0, abs=0.05)]


@pytest.mark.anyio
async def test_a_pause_longer_than_the_policy_waits_is_a_429_at_once(
    sleeps: list[float],
) -> None:
    """Past `max_pause` (the policy's `max_retry_after`), the wait fails as the 429 did."""
    gate = Gate(None)
    await gate.pause(30.0)
    with pytest.raises(RateLimitError) as caught:
        await gate.wait(max_pause=10.0)
    assert caught.value.status_code == 429
    assert caught.value.retry_after == pytest.approx(30.0, abs=0.5)
    assert sleeps == []


@pytest.mark.anyio
async def test_a_turn_the_deadline_refuses_is_not_taken_from_the_rate(
    sleeps: list[float],
) -> None:
    """A wait that would end past the call's deadline fails at once, and the next caller gets
    the turn the refused one would have had."""
    config = ClientConfig.build(
        api_key="sk-gate", base_url="https://api.example.test/v1", timeout=10.0,
        max_retries=None, retry=None, default_headers=None,
    )  # fmt: skip
    budget = call_options(config, CallOptions.defaults(config), deadline=0.5).started()
    gate = Gate(RateLimit(requests_per_second=1, burst=1))
    assert await gate.wait() == 0.0
    with pytest.raises(DeadlineExceededError, match="rate limit"):
        await gate.wait(budget=budget)
    assert await gate.wait() == pytest.approx(1.0, abs=0.01)
    assert sleeps == [pytest.approx(1.0, abs=0.01)]


@pytest.mark.anyio
async def test_an_adaptive_rate_halves_on_a_429_and_grows_back_by_a_twentieth() -> None:
    """Each pause halves the rate, never below the floor; each success adds 5% of the configured
    rate, never above it. A rate that is not adaptive never moves."""
    with pytest.warns(DeprecationWarning, match="adaptive"):
        limit = RateLimit(requests_per_second=100, adaptive=True, min_requests_per_second=30)
    gate = Gate(limit)
    await gate.pause(0.0)
    assert gate.rate == 50
    await gate.pause(0.0)
    assert gate.rate == 30  # not 25: the floor
    gate.succeeded()
    assert gate.rate == 35
    for _ in range(20):
        gate.succeeded()
    assert gate.rate == 100
    fixed = Gate(RateLimit(requests_per_second=100))
    await fixed.pause(0.0)
    fixed.succeeded()
    assert fixed.rate == 100
    assert Gate(None).rate == float("inf")


class Clock:
    """A monotonic clock the test moves (the gate reads `time.monotonic` through `_gate.time`)."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    from audioscape_async import _gate

    fake = Clock()
    monkeypatch.setattr(_gate, "time", fake)
    return fake


async def _succeed(gate: Gate, clock: Clock, count: int, every: float) -> None:
    for _ in range(count):
        await gate.wait()
        clock.now += every
        gate.succeeded()


@pytest.mark.anyio
async def test_a_learned_rate_holds_nothing_back_until_a_429(
    clock: Clock, sleeps: list[float]
) -> None:
    """`RateLimit.auto()`: no turn waits before the first 429; after it, turns are spaced."""
    gate = Gate(RateLimit.auto())
    assert gate.learns
    assert not gate.ready()
    assert gate.rate == float("inf")
    await _succeed(gate, clock, 40, every=0.05)  # 20 a second get through
    assert sleeps == []
    await gate.throttled(clock.now - 0.01)
    assert gate.rate == pytest.approx(0.97 * 20, rel=0.05)
    assert await gate.wait() == pytest.approx(1 / gate.rate, rel=0.01)  # one interval on
    assert await gate.wait() == pytest.approx(2 / gate.rate, rel=0.01)


@pytest.mark.anyio
async def test_a_turn_given_before_a_cut_is_given_again_at_the_new_rate(
    clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A task asleep on a turn of the old rate takes a new turn when a 429 cuts the rate."""
    from audioscape_async import _retry

    gate = Gate(RateLimit.auto())
    await _succeed(gate, clock, 40, every=0.05)
    await gate.throttled(clock.now)
    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)
        if len(slept) == 2:
            clock.now += 0.5
            await gate.throttled(clock.now)  # a 429 cuts the rate while this task sleeps

    monkeypatch.setattr(_retry, "sleep", sleep)
    await gate.wait()  # its turn, one interval on
    await gate.wait()  # asleep when the cut comes: a new turn, then it goes
    assert len(slept) == 3
    assert slept[2] == pytest.approx(1 / gate.rate, rel=0.01)


@pytest.mark.anyio
async def test_a_configured_rate_does_not_learn() -> None:
    """A fixed rate, or none, is not moved by a 429."""
    fixed = Gate(RateLimit(requests_per_second=10))
    await fixed.throttled(time.monotonic())
    assert not fixed.learns
    assert fixed.rate == 10
    assert not Gate(None).learns
