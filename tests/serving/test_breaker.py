"""`CircuitBreaker`: opens after consecutive transient failures, probes, closes."""

from __future__ import annotations

import logging
import pickle
import time

import pytest

from audioscape_async import (
    APIConnectionError,
    APITimeoutError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidParameterError,
)
from audioscape_async._breaker import CircuitBreaker
from audioscape_async._exceptions import CircuitOpenError
from tests.serving.breaker_clock import FakeClock


def error_503() -> InternalServerError:
    return InternalServerError("unavailable", status_code=503)


def open_breaker(breaker: CircuitBreaker) -> None:
    for _ in range(breaker.failure_threshold):
        breaker.before_attempt()
        breaker.record_failure(error_503())


def test_opens_after_threshold_consecutive_failures(clock: FakeClock) -> None:
    """Five transient failures in a row open the circuit; four do not."""
    breaker = CircuitBreaker(failure_threshold=5, recovery_time=30)
    for _ in range(4):
        breaker.before_attempt()
        breaker.record_failure(error_503())
    assert (breaker.state, breaker.failures) == ("closed", 4)
    breaker.record_failure(APIConnectionError("refused"))
    assert breaker.state == "open"
    assert breaker.opened_at == clock.now


def test_success_resets_the_count(clock: FakeClock) -> None:
    """A success between failures resets the count, so the failures are not consecutive."""
    breaker = CircuitBreaker(failure_threshold=3, recovery_time=30)
    breaker.record_failure(error_503())
    breaker.record_failure(error_503())
    breaker.record_success()
    breaker.record_failure(error_503())
    breaker.record_failure(error_503())
    assert breaker.state == "closed"
    assert breaker.failures == 2


@pytest.mark.parametrize(
    "error",
    [
        BadRequestError("bad", status_code=400),
        AuthenticationError("no key", status_code=401),
    ],
    ids=["400", "401"],
)
def test_client_errors_count_as_success(clock: FakeClock, error: Exception) -> None:
    """A 400 or 401 proves the API is up: it resets the count and never opens the circuit."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    breaker.record_failure(error_503())
    breaker.record_failure(error)
    breaker.record_failure(error_503())
    assert breaker.state == "closed"
    for _ in range(10):
        breaker.record_failure(error)
    assert breaker.state == "closed"
    assert breaker.failures == 0


@pytest.mark.parametrize(
    "error",
    [
        InternalServerError("boom", status_code=500),
        APITimeoutError("timed out"),
        APIConnectionError("reset"),
    ],
    ids=["500", "timeout", "connection"],
)
def test_transient_failures_count(clock: FakeClock, error: Exception) -> None:
    """5xx, timeouts and connection errors each count toward opening (a 429 does not)."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    breaker.record_failure(error)
    breaker.record_failure(error)
    assert breaker.state == "open"


def test_open_fails_fast_with_retry_in(clock: FakeClock) -> None:
    """While open, an attempt fails at once with CircuitOpenError saying when the probe goes."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    open_breaker(breaker)
    clock.now += 10
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_attempt()
    assert caught.value.retry_in == pytest.approx(20)
    assert isinstance(caught.value, APIConnectionError)
    assert "20.0 s" in str(caught.value)


def test_open_refusal_costs_well_under_a_millisecond() -> None:
    """Refusing an attempt while open takes well under a millisecond (real clock)."""
    breaker = CircuitBreaker(failure_threshold=1, recovery_time=30)
    breaker.record_failure(error_503())
    rounds = 1_000
    start = time.perf_counter()
    for _ in range(rounds):
        with pytest.raises(CircuitOpenError):
            breaker.before_attempt()
    assert (time.perf_counter() - start) / rounds < 0.0002


def test_half_open_lets_exactly_one_probe_through(clock: FakeClock) -> None:
    """After recovery_time one probe goes; the others fail fast until it reports."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    open_breaker(breaker)
    clock.now += 29.9
    with pytest.raises(CircuitOpenError):
        breaker.before_attempt()
    clock.now += 0.1
    breaker.before_attempt()  # the probe
    assert breaker.state == "half_open"
    for _ in range(3):
        with pytest.raises(CircuitOpenError, match="probe"):
            breaker.before_attempt()


def test_probe_success_closes(clock: FakeClock, caplog: pytest.LogCaptureFixture) -> None:
    """A successful probe closes the circuit; each change of state is logged at WARNING."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    with caplog.at_level(logging.WARNING, logger="audioscape_async"):
        open_breaker(breaker)
        clock.now += 30
        breaker.before_attempt()
        breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.failures == 0
    breaker.before_attempt()
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == 3
    assert "opened after 2 failures" in messages[0]
    assert "HTTP 503" in messages[0]
    assert "half-open" in messages[1]
    assert "closed" in messages[2]


def test_probe_failure_reopens_for_another_recovery_time(clock: FakeClock) -> None:
    """A failed probe re-opens the circuit for a full recovery_time from then."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    open_breaker(breaker)
    clock.now += 30
    breaker.before_attempt()
    clock.now += 1
    breaker.record_failure(APITimeoutError("timed out"))
    assert breaker.state == "open"
    assert breaker.opened_at == clock.now
    with pytest.raises(CircuitOpenError) as caught:
        breaker.before_attempt()
    assert caught.value.retry_in == pytest.approx(30)


def test_probe_answering_400_closes(clock: FakeClock) -> None:
    """A probe answered with a 400 proves the API is up: the circuit closes."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    open_breaker(breaker)
    clock.now += 30
    breaker.before_attempt()
    breaker.record_failure(BadRequestError("bad", status_code=400))
    assert breaker.state == "closed"


def test_lost_probe_is_replaced_after_recovery_time(clock: FakeClock) -> None:
    """A probe that never reports (cancelled caller) does not leave the circuit stuck."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    open_breaker(breaker)
    clock.now += 30
    breaker.before_attempt()  # this probe's caller vanishes
    clock.now += 29
    with pytest.raises(CircuitOpenError):
        breaker.before_attempt()
    clock.now += 1
    breaker.before_attempt()  # a new probe
    breaker.record_success()
    assert breaker.state == "closed"


def test_answers_while_open_are_ignored(clock: FakeClock) -> None:
    """Late answers of attempts sent before opening change nothing; only a probe closes."""
    breaker = CircuitBreaker(failure_threshold=2, recovery_time=30)
    open_breaker(breaker)
    opened = breaker.opened_at
    clock.now += 5
    breaker.record_success()
    breaker.record_failure(error_503())
    breaker.record_failure(CircuitOpenError("open", retry_in=1))
    assert breaker.state == "open"
    assert breaker.opened_at == opened


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"failure_threshold": 0}, "circuit_breaker.failure_threshold"),
        ({"failure_threshold": True}, "circuit_breaker.failure_threshold"),
        ({"failure_threshold": 2.5}, "circuit_breaker.failure_threshold"),
        ({"recovery_time": 0}, "circuit_breaker.recovery_time"),
        ({"recovery_time": float("inf")}, "circuit_breaker.recovery_time"),
        ({"recovery_time": "30"}, "circuit_breaker.recovery_time"),
    ],
)
def test_invalid_arguments(kwargs: dict[str, object], parameter: str) -> None:
    """Bad arguments are an InvalidParameterError naming the parameter."""
    with pytest.raises(InvalidParameterError) as caught:
        CircuitBreaker(**kwargs)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


def test_circuit_open_error_pickles() -> None:
    """CircuitOpenError survives pickling with its message and retry_in."""
    error = CircuitOpenError("the circuit breaker is open", retry_in=12.5)
    copy = pickle.loads(pickle.dumps(error))
    assert type(copy) is CircuitOpenError
    assert copy.retry_in == 12.5
    assert str(copy) == str(error)
