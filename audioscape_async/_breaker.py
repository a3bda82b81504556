"""`CircuitBreaker`: stop calling a server that keeps failing, and probe it now and then.

One breaker per client (shared by its `with_options` copies, and by any other
client given the same one, in any thread or event loop), consulted once per
HTTP attempt::

    breaker.before_attempt()       # raises CircuitOpenError at once while open
    try:
        answer = await send()
    except BaseException as error:
        breaker.record_failure(error)   # judged: it may count, or change nothing
        raise
    breaker.record_success()

(`record_neutral()` notes an attempt let through that was never sent.)

The breaker judges the server, never the caller. Each attempt ends in one of
three verdicts:

failure
    The server failed: a 5xx, a connection refused or reset, a timeout at the
    client's own timeout. Counts toward opening the circuit.
success
    The server answered, whatever it said: a 2xx, a 400, a 401. Resets the count.
neutral
    Nothing about the server's health: changes neither the count nor the state.
    Neutral are:

    - a 429. It is the client's own pace, so it must never open the circuit;
      and it is not a success either, because a rate limiter usually answers
      at the front door, in front of whatever is failing behind it: 429s
      interleaved with 503s must not reset the count and hide an outage;
    - the caller's doing: an attempt cut short by the call's `deadline`, or by
      a per-call timeout other than the client's own, unless it had already run
      longer than the client's own timeout (then the server did slow down, and
      the timeout counts as a failure); and an attempt that was cancelled, or
      that never went (its deadline ran out first, or the client's 429 pause
      was longer than the call could wait).

    One caller's impatience never opens the circuit for everyone.

The states:

``closed``
    Every attempt goes. `failure_threshold` failures in a row open the circuit.
``open``
    Every attempt fails at once with `CircuitOpenError`, whose `retry_in` says
    when the next probe may go. Answers of attempts sent before the circuit
    opened are ignored: only a probe closes an open circuit.
``half_open``
    `recovery_time` after opening, exactly one attempt (the probe) goes; the
    others fail fast. Its success closes the circuit, its failure re-opens it
    for another `recovery_time`; a neutral probe (a 429, a cancelled caller)
    gives its place to the next attempt at once. A probe that never reports is
    given up after `recovery_time`, and the next attempt probes instead, so the
    circuit cannot stick half-open.

The state is kept under a `threading.Lock`, held only between reading and
writing it (never across an await, never while logging), so one breaker may
serve clients on several threads and event loops (asyncio and trio) at once.
Time is read through the module's `clock`, so a test can drive it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Literal

from ._exceptions import (
    APIStatusError,
    APITimeoutError,
    CircuitOpenError,
    is_transient,
)
from ._logs import logger
from ._validation import check_int_range, check_seconds

__all__ = ["CircuitBreaker"]

#: The breaker's clock, looked up at each call so tests can replace it.
clock: Callable[[], float] = time.monotonic

State = Literal["closed", "open", "half_open"]
Verdict = Literal["failure", "success", "neutral"]


def verdict(
    error: BaseException,
    *,
    caller_limited: bool = False,
    ran: float = 0.0,
    own_timeout: float | None = None,
) -> Verdict:
    """What a failed attempt says of the server's health (see the module docstring).

    `caller_limited`: the attempt ran under a limit of the caller's own (its
    deadline, or a per-call timeout other than the client's), so a timeout
    counts only if the attempt had `ran` at least `own_timeout` seconds, the
    client's own limit on an attempt (None: it has none, and it never counts).
    """
    if not isinstance(error, Exception) or isinstance(error, CircuitOpenError):
        return "neutral"  # cancelled, or never sent: the breaker itself refused it
    if isinstance(error, APIStatusError) and error.status_code == 429:
        return "neutral"
    if not is_transient(error):
        return "success"
    if isinstance(error, APITimeoutError) and caller_limited:
        slowed_down = own_timeout is not None and ran >= own_timeout
        return "failure" if slowed_down else "neutral"
    return "failure"


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

    `state`, `failures` (failures in a row) and `opened_at` (the
    `time.monotonic()` instant the circuit last opened, or None) are readable.
    Every change of state is logged at WARNING on the ``audioscape_async`` logger.
    """

    __slots__ = (
        "_failures",
        "_lock",
        "_opened_at",
        "_probe_started",
        "_state",
        "failure_threshold",
        "recovery_time",
    )

    def __init__(self, failure_threshold: int = 5, recovery_time: float = 30.0) -> None:
        self.failure_threshold = check_int_range(
            "circuit_breaker.failure_threshold", failure_threshold, 1
        )
        self.recovery_time = check_seconds("circuit_breaker.recovery_time", recovery_time)
        self._lock = threading.Lock()
        self._state: State = "closed"
        self._failures = 0
        self._opened_at: float | None = None
        #: When the probe in flight went (half-open only); None: the next attempt probes.
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
        """Failures in a row (the count that opens the circuit)."""
        return self._failures

    @property
    def opened_at(self) -> float | None:
        """When the circuit last opened (a `time.monotonic()` instant), or None."""
        return self._opened_at

    def before_attempt(self) -> State | None:
        """Let an attempt go, or raise `CircuitOpenError` at once if the circuit is open.

        Returns the state this call moved the breaker to (``"half_open"``), else
        None; as `record_success` and `record_failure` do, so that the pipeline
        tells its observers of each change once (`_hooks.BreakerEvent`).
        """
        # Read without the lock: one word, and an attempt that slips past a circuit
        # opening this instant is one that went just before it.
        if self._state != "closed":
            return self._admit()
        return None

    def _admit(self) -> State | None:
        with self._lock:
            state = self._state
            if state == "closed":
                return None
            now = clock()
            if state == "half_open":
                # One probe at a time; one that never reported is given up.
                started = self._probe_started
                if started is not None and now - started < self.recovery_time:
                    raise CircuitOpenError(
                        "the circuit breaker is half-open and its one probe request is in flight",
                        retry_in=self.recovery_time - (now - started),
                    )
                self._probe_started = now
                return None
            assert self._opened_at is not None
            retry_in = self._opened_at + self.recovery_time - now
            if retry_in > 0:
                raise CircuitOpenError(
                    f"the circuit breaker is open after {self._failures} failures in a "
                    f"row; the next probe goes in {retry_in:.1f} s",
                    retry_in=retry_in,
                )
            self._state = "half_open"
            self._probe_started = now
        logger.warning("circuit breaker half-open: one probe request goes through")
        return "half_open"

    def record_success(self) -> State | None:
        """Note an answer that proves the API is up (any answer but a failure or a 429).

        Returns ``"closed"`` if this closed the circuit, else None.
        """
        # The common case, read without the lock: closed with nothing counted, nothing to do.
        if self._state != "closed" or self._failures:
            return self._succeeded()
        return None

    def _succeeded(self) -> State | None:
        with self._lock:
            state = self._state
            if state == "closed":
                self._failures = 0
                return None
            if state == "open":
                return None  # a late answer of an attempt sent before it opened
            self._state = "closed"
            self._failures = 0
            self._probe_started = None
        logger.warning("circuit breaker closed: the probe request succeeded")
        return "closed"

    def record_failure(
        self,
        error: BaseException,
        *,
        caller_limited: bool = False,
        ran: float = 0.0,
        own_timeout: float | None = None,
    ) -> State | None:
        """Note an attempt that did not succeed; only a failure of the server counts.

        A 429, a cancellation and the caller's own limits are neutral, any other
        answer is a success (see the module docstring). `caller_limited`, `ran`
        and `own_timeout` say whether a timeout was the caller's doing: the
        attempt ran under the call's deadline or a per-call timeout, for `ran`
        seconds, and the client's own limit on an attempt is `own_timeout`. Returns
        the state this moved the breaker to (``"open"``, or ``"closed"`` by a
        success), else None.
        """
        judged = verdict(error, caller_limited=caller_limited, ran=ran, own_timeout=own_timeout)
        if judged == "success":
            return self.record_success()
        if judged == "neutral":
            self.record_neutral()
            return None
        opened = False
        failures = 0
        with self._lock:
            state = self._state
            if state == "closed":
                self._failures += 1
                opened = self._failures >= self.failure_threshold
            elif state == "half_open":
                self._failures += 1
                opened = True
            if opened:
                self._state = "open"
                self._opened_at = clock()
                self._probe_started = None
                failures = self._failures
        if opened:
            logger.warning(
                "circuit breaker opened after %d failures in a row (last: %s); next probe in %g s",
                failures,
                _describe(error),
                self.recovery_time,
            )
            return "open"
        return None

    def record_neutral(self) -> None:
        """Note an attempt that says nothing of the server (a 429, a cancelled or unsent one).

        Neither the count nor the state changes; a probe gives its place to the next attempt.
        """
        if self._state != "half_open":
            return
        with self._lock:
            if self._state == "half_open":
                self._probe_started = None
