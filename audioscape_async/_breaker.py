"""`CircuitBreaker`: stop calling a service that keeps failing, and probe it now and then.

One breaker per client (shared by its `with_options` copies), consulted once per
HTTP attempt::

    breaker.before_attempt()       # raises CircuitOpenError at once while open
    try:
        answer = await send()
    except AudioScapeError as error:
        breaker.record_failure(error)
        raise
    breaker.record_success()

The states:

``closed``
    Every attempt goes. `failure_threshold` transient failures in a row (429,
    5xx, connection errors and timeouts: `is_transient`) open the circuit. Any
    other answer, a 400 or a 401 included, proves the service is up: it counts as a
    success and resets the count.
``open``
    Every attempt fails at once with `CircuitOpenError`, whose `retry_in` says
    when the next probe may go. Answers of attempts sent before the circuit
    opened are ignored: only a probe closes an open circuit.
``half_open``
    `recovery_time` after opening, exactly one attempt (the probe) goes; the
    others fail fast. Its success closes the circuit, its transient failure
    re-opens it for another `recovery_time`. A probe that never reports (its
    caller was cancelled) is given up after `recovery_time`, and the next
    attempt probes instead, so the circuit cannot stick half-open.

No lock: nothing awaits between reading and writing the state, and the event
loop runs one task at a time. Time is read through the module's `clock`, so a
test can drive it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from typing import Literal

from ._exceptions import CircuitOpenError, InvalidParameterError, is_transient

__all__ = ["CircuitBreaker"]

logger = logging.getLogger("audioscape_async")

#: The breaker's clock, looked up at each call so tests can replace it.
clock: Callable[[], float] = time.monotonic

State = Literal["closed", "open", "half_open"]


def _check_number(name: str, value: object, *, integer: bool = False) -> None:
    if integer:
        ok = isinstance(value, int) and not isinstance(value, bool) and value >= 1
        if not ok:
            raise InvalidParameterError(
                f"circuit_breaker.{name}", f"must be an integer >= 1, got {value!r}"
            )
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not (math.isfinite(value) and value > 0):  # type: ignore[arg-type, operator]
        raise InvalidParameterError(
            f"circuit_breaker.{name}", f"must be a number of seconds > 0, got {value!r}"
        )


def _describe(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    if status is not None:
        return f"HTTP {status}"
    return f"{type(error).__name__}: {error}"


class CircuitBreaker:
    """Fail fast while the API keeps failing; see the module docstring for the states.

    >>> breaker = CircuitBreaker(failure_threshold=5, recovery_time=30)
    >>> breaker.state
    'closed'

    `state`, `failures` (transient failures in a row) and `opened_at` (the
    `time.monotonic()` instant the circuit last opened, or None) are readable.
    Every change of state is logged at WARNING on the ``audioscape_async`` logger.
    """

    __slots__ = (
        "_failures",
        "_opened_at",
        "_probe_started",
        "_state",
        "failure_threshold",
        "recovery_time",
    )

    def __init__(self, failure_threshold: int = 5, recovery_time: float = 30.0) -> None:
        _check_number("failure_threshold", failure_threshold, integer=True)
        _check_number("recovery_time", recovery_time)
        self.failure_threshold = failure_threshold
        self.recovery_time = float(recovery_time)
        self._state: State = "closed"
        self._failures = 0
        self._opened_at: float | None = None
        self._probe_started: float | None = None

    def __repr__(self) -> str:
        return (
            f"CircuitBreaker(failure_threshold={self.failure_threshold}, "
            f"recovery_time={self.recovery_time:g}, state={self._state!r})"
        )

    @property
    def state(self) -> State:
        """``"closed"``, ``"open"`` or ``"half_open"``, as of the last attempt or answer."""
        return self._state

    @property
    def failures(self) -> int:
        """Transient failures in a row (the count that opens the circuit)."""
        return self._failures

    @property
    def opened_at(self) -> float | None:
        """When the circuit last opened (a `time.monotonic()` instant), or None."""
        return self._opened_at

    def before_attempt(self) -> None:
        """Let an attempt go, or raise `CircuitOpenError` at once if the circuit is open."""
        state = self._state
        if state == "closed":
            return
        now = clock()
        if state == "open":
            assert self._opened_at is not None
            retry_in = self._opened_at + self.recovery_time - now
            if retry_in > 0:
                raise CircuitOpenError(
                    f"the circuit breaker is open after {self._failures} failures in a row; "
                    f"the next probe goes in {retry_in:.1f} s",
                    retry_in=retry_in,
                )
            self._state = "half_open"
            self._probe_started = now
            logger.warning("circuit breaker half-open: one probe request goes through")
            return
        # Half-open: one probe at a time; one that never reported is given up.
        assert self._probe_started is not None
        waited = now - self._probe_started
        if waited < self.recovery_time:
            raise CircuitOpenError(
                "the circuit breaker is half-open and its one probe request is in flight",
                retry_in=self.recovery_time - waited,
            )
        self._probe_started = now

    def record_success(self) -> None:
        """Note an answer that proves the API is up (any answer but a transient failure)."""
        state = self._state
        if state == "closed":
            self._failures = 0
        elif state == "half_open":
            self._state = "closed"
            self._failures = 0
            self._probe_started = None
            logger.warning("circuit breaker closed: the probe request succeeded")

    def record_failure(self, error: BaseException) -> None:
        """Note a failed attempt; only a transient failure counts against the circuit."""
        if isinstance(error, CircuitOpenError):
            return  # not an attempt: the breaker itself refused it
        if not is_transient(error):
            if isinstance(error, Exception):
                self.record_success()
            return
        state = self._state
        if state == "closed":
            self._failures += 1
            if self._failures >= self.failure_threshold:
                self._open(error)
        elif state == "half_open":
            self._failures += 1
            self._open(error)

    def _open(self, error: BaseException) -> None:
        self._state = "open"
        self._opened_at = clock()
        self._probe_started = None
        logger.warning(
            "circuit breaker opened after %d failures in a row (last: %s); next probe in %g s",
            self._failures,
            _describe(error),
            self.recovery_time,
        )
