"""When and how long to retry; the only module that knows tenacity is underneath.

A search is read-only, so a retry is always safe. `RetryPolicy` is the user's
knob; `retrying()` turns it into a fresh tenacity controller for each call
(one shared controller would mix up the attempts of concurrent calls).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, TypeVar

import attrs

from ._constants import DEFAULT_MAX_RETRIES
from ._exceptions import (
    APIConnectionError,
    APIStatusError,
    APITimeoutError,
    AudioScapeError,
    CircuitOpenError,
    DeadlineExceededError,
    InvalidParameterError,
    parse_retry_after,
)
from ._logs import logger
from ._validation import check_int_range, check_seconds

if TYPE_CHECKING:
    import tenacity as _t

__all__ = ["RetryPolicy", "parse_retry_after"]

T = TypeVar("T")


async def _anyio_sleep(seconds: float) -> None:
    import anyio  # imported where used: `import audioscape_async` stays light

    await anyio.sleep(seconds)


#: What sleeps between attempts. A module global looked up at call time, so a
#: test can record the delays instead of waiting them out.
sleep: Callable[[float], Awaitable[Any]] = _anyio_sleep


def _check_seconds(_instance: Any, attribute: Any, value: object) -> None:
    check_seconds(f"retry.{attribute.name}", value, zero=True)


def _check_max_retries(_instance: Any, _attribute: Any, value: object) -> None:
    check_int_range("max_retries", value, 0)


def _to_statuses(value: Any) -> frozenset[int]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__iter__"):
        raise InvalidParameterError(
            "retry.retry_statuses", f"must be a collection of HTTP statuses, got {value!r:.40}"
        )
    statuses = frozenset(value)
    for status in statuses:
        if type(status) is not int or not 100 <= status <= 599:
            raise InvalidParameterError(
                "retry.retry_statuses", f"must hold HTTP statuses (100..599), got {status!r:.40}"
            )
    return statuses


def _check_bool(_instance: Any, attribute: Any, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterError(
            f"retry.{attribute.name}", f"must be True or False, got {value!r:.40}"
        )


@attrs.frozen
class RetryPolicy:
    """How the client retries a failed search.

    Retried: the statuses in `retry_statuses` (429 and 5xx by default),
    connection errors and timeouts. Backoff before retry *n* (from 1) is drawn
    from ``[b/2, b]`` where ``b = min(max_backoff, initial_backoff * 2 ** (n - 1))``.
    A 429 or 503 with ``Retry-After`` (or ``retry-after-ms``) waits that long
    instead; one longer than `max_retry_after` is not slept through: the error
    is raised at once, with `retry_after` set, and the client-wide pause it
    sets lasts `max_retry_after` at most.

    In a walk or a crawl (`iter_pages`, `iter_tracks`, `crawl`, `crawl_to_file`),
    a 429 slows the walk down and does not spend `max_retries`, which is meant
    for faults: its page is retried (after the backoff of its own count of
    429s) until no search of the client's API key has succeeded for
    `max_rate_limited` seconds, so a key whose quota is spent does not retry
    for ever. A single `search` counts a 429 as any other failure: a caller is
    waiting for its answer.

    >>> RetryPolicy(max_retries=5, max_backoff=4.0)
    RetryPolicy(max_retries=5, initial_backoff=0.5, max_backoff=4.0, ...)
    """

    max_retries: int = attrs.field(default=DEFAULT_MAX_RETRIES, validator=_check_max_retries)
    initial_backoff: float = attrs.field(default=0.5, validator=_check_seconds)
    max_backoff: float = attrs.field(default=8.0, validator=_check_seconds)
    retry_statuses: frozenset[int] = attrs.field(
        default=frozenset({429, 500, 502, 503, 504}), converter=_to_statuses
    )
    max_retry_after: float = attrs.field(default=60.0, validator=_check_seconds)
    retry_connection_errors: bool = attrs.field(default=True, validator=_check_bool)
    max_rate_limited: float = attrs.field(default=300.0, validator=_check_seconds)

    def __repr__(self) -> str:
        return (
            f"RetryPolicy(max_retries={self.max_retries}, initial_backoff={self.initial_backoff}, "
            f"max_backoff={self.max_backoff}, retry_statuses={sorted(self.retry_statuses)}, "
            f"max_retry_after={self.max_retry_after}, "
            f"retry_connection_errors={self.retry_connection_errors}, "
            f"max_rate_limited={self.max_rate_limited})"
        )

    def backoff(self, retry_number: int) -> float:
        """The delay before retry `retry_number` (1 for the first retry), with jitter."""
        # Past 2**64 the doubling has long passed any max_backoff (and 2.0**1024 overflows).
        ceiling = min(self.max_backoff, self.initial_backoff * 2.0 ** min(retry_number - 1, 64))
        return ceiling / 2 + random.uniform(0, ceiling / 2)

    def is_retryable(self, error: BaseException) -> bool:
        """Whether this error may be retried at all (ignoring how many tries are left)."""
        if isinstance(error, APIStatusError):
            if error.status_code not in self.retry_statuses:
                return False
            return error.retry_after is None or error.retry_after <= self.max_retry_after
        if isinstance(error, (DeadlineExceededError, CircuitOpenError)):
            return False  # retrying would fail at once again
        if isinstance(error, APIConnectionError):
            return self.retry_connection_errors and error.retryable
        return False

    def delay_for(self, error: BaseException | None, retry_number: int) -> float:
        """How long to wait after `error` before retry `retry_number`."""
        if isinstance(error, APIStatusError) and error.retry_after is not None:
            return error.retry_after
        return self.backoff(retry_number)


def _rate_limited(error: BaseException | None) -> bool:
    return isinstance(error, APIStatusError) and error.status_code == 429


def _explain(error: BaseException, detail: str) -> None:
    """Say in `error`'s own message why no retry follows (it is this call's own error)."""
    if isinstance(error, AudioScapeError):
        error.message = f"{error.message} ({detail})"
        error.args = (error.message,)


class _Count:
    """One call's retries: faults against `max_retries`; in a walk, 429s against a clock.

    `last_success()` (given for a walk's pages) says when a search of the same
    API key last succeeded, or when this call started if later: a 429 is then
    retried until `max_rate_limited` seconds have passed since, whatever
    `max_retries` says. Without it, every failure is a fault. tenacity asks
    for the wait and the stop of each failed attempt in an order of its own:
    each attempt is counted once, by whichever asks first.
    """

    __slots__ = (
        "attempts",
        "counted",
        "faults",
        "last_success",
        "policy",
        "rate_limited",
        "started",
        "why",
    )

    def __init__(self, policy: RetryPolicy, last_success: Callable[[], float] | None) -> None:
        self.policy = policy
        self.last_success = last_success
        self.started = time.monotonic()
        self.attempts = 0  # attempts made (sent or not), counted as each begins
        self.counted = 0  # failed attempts counted so far
        self.faults = 0
        self.rate_limited = 0
        self.why: str | None = None  # why the retries stopped, if not max_retries

    def explain_end(self, error: BaseException) -> None:
        """Say in the error that ends a retried call how many attempts it took, over how long.

        The one place that words it: whatever ended the retries (`max_retries`,
        `max_rate_limited`, an error that may not be retried, a deadline) is told
        the same way, "(4 attempts over 3.12 s)", with the reason when one is known.
        """
        parts = [self.why] if self.why else []
        if self.attempts > 1:
            elapsed = time.monotonic() - self.started
            parts.insert(0, f"{self.attempts} attempts over {elapsed:.2f} s")
        if parts:
            _explain(error, "; ".join(parts))

    def patient(self, error: BaseException | None) -> bool:
        """Whether `error` is a 429 that does not spend `max_retries` (a walk's)."""
        return self.last_success is not None and _rate_limited(error)

    def count(self, attempt: int, error: BaseException | None) -> None:
        """Count failed attempt number `attempt` (once)."""
        if attempt <= self.counted:
            return
        self.counted = attempt
        if self.patient(error):
            self.rate_limited += 1
        else:
            self.faults += 1

    def stop(self, attempt: int, error: BaseException | None) -> bool:
        """Whether failed attempt number `attempt` (one that may be retried) is the last."""
        self.count(attempt, error)
        if self.patient(error):
            assert self.last_success is not None
            quiet = time.monotonic() - self.last_success()
            if quiet < self.policy.max_rate_limited:
                return False
            self.why = (
                f"no search of this API key has succeeded for {quiet:.0f} s, "
                f"retry.max_rate_limited is {self.policy.max_rate_limited:g} s"
            )
            return True
        return self.faults > self.policy.max_retries

    def retry_number(self, attempt: int, error: BaseException | None) -> int:
        """Which retry of its kind follows failed attempt `attempt` (the backoff grows with it)."""
        self.count(attempt, error)
        return self.rate_limited if self.patient(error) else self.faults


def _refusal(policy: RetryPolicy, error: BaseException) -> str | None:
    """Why a 429 or 503 is not retried: its Retry-After is too long (else None)."""
    if (
        isinstance(error, APIStatusError)
        and error.status_code in policy.retry_statuses
        and error.retry_after is not None
        and error.retry_after > policy.max_retry_after
    ):
        return f"Retry-After longer than retry.max_retry_after, {policy.max_retry_after:g} s"
    return None


def _reason(error: BaseException) -> str:
    if isinstance(error, APITimeoutError):
        return "timeout"
    if isinstance(error, APIStatusError):
        return f"HTTP {error.status_code}"
    if isinstance(error, APIConnectionError):
        return "connection error"
    return type(error).__name__


#: Told of each retry before its sleep: ``(error, delay)``.
OnRetry = Callable[[BaseException, float], Awaitable[None] | None]


def retrying(
    policy: RetryPolicy,
    *,
    on_retry: OnRetry | None = None,
    check_wait: Callable[[BaseException, float], None] | None = None,
    last_success: Callable[[], float] | None = None,
    paced: bool = False,
    count: _Count | None = None,
) -> _t.AsyncRetrying:
    """A fresh tenacity controller for one call under `policy`.

    `on_retry(error, delay)` is told of each retry before its sleep (the crawl
    statistics and the shared rate gate hang off it). `check_wait(error,
    delay)` may refuse a sleep by raising (the call's deadline would pass).
    `last_success` makes 429s patient, as in a walk (`_Count`); `paced`
    says a gate that learns from 429s paces the retries (`RateLimit.auto`):
    a patient 429 then waits for its turn there, not for a backoff too.
    `count` is the call's own (it may have counted an attempt before tenacity).
    """

    # tenacity is slow to import (benchmarks/results.md, row 4); only a call needs it.
    import tenacity as _t

    if count is None:
        count = _Count(policy, last_success)

    def failed(state: _t.RetryCallState) -> BaseException | None:
        return state.outcome.exception() if state.outcome else None

    def stop(state: _t.RetryCallState) -> bool:
        return count.stop(state.attempt_number, failed(state))

    def wait(state: _t.RetryCallState) -> float:
        error = failed(state)
        number = count.retry_number(state.attempt_number, error)
        if paced and count.patient(error) and getattr(error, "retry_after", None) is None:
            return 0.0  # the gate, which learned from this 429, holds the retry
        return policy.delay_for(error, number)

    async def before_sleep(state: _t.RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        delay = state.upcoming_sleep
        assert error is not None
        if check_wait is not None:
            check_wait(error, delay)
        if count.patient(error):
            # A walk's 429 is flow control (it slows the walk, `_tier` learns from it),
            # not a fault: said at INFO, so a crawl that finds its tier stays quiet.
            logger.info(
                "retrying search (429 number %d, which does not count against max_retries) "
                "in %.2f s: %s",
                count.rate_limited,
                delay,
                error,
            )
        else:
            logger.warning(
                "retrying search (retry %d of %d) in %.2f s after %s: %s",
                count.faults,
                policy.max_retries,
                delay,
                _reason(error),
                error,
            )
        if on_retry is not None:
            result = on_retry(error, delay)
            if result is not None:
                await result

    async def do_sleep(seconds: float) -> None:
        await sleep(seconds)

    return _t.AsyncRetrying(
        stop=stop,
        retry=_t.retry_if_exception(policy.is_retryable),
        wait=wait,
        sleep=do_sleep,
        before_sleep=before_sleep,
        reraise=True,
    )


async def call_with_retries(
    policy: RetryPolicy,
    call: Callable[[], Awaitable[T]],
    *,
    on_retry: OnRetry | None = None,
    check_wait: Callable[[BaseException, float], None] | None = None,
    last_success: Callable[[], float] | None = None,
    paced: bool = False,
) -> T:
    """Await `call()` under `policy`, as `retrying` would, without tenacity until a retry is due.

    Building and driving a tenacity controller costs a sizeable part of a whole
    search's CPU (benchmarks/results.md, row 1), and almost every call succeeds
    at once. So the first attempt
    runs bare; after a failure that may be retried, tenacity takes over and
    its first attempt re-raises that failure, so the retries, their delays,
    logs and `on_retry` calls are exactly those of a tenacity loop.
    """

    count = _Count(policy, last_success)

    async def attempt() -> T:
        count.attempts += 1
        try:
            return await call()
        except Exception as error:
            if not policy.is_retryable(error):
                count.why = _refusal(policy, error)
            raise

    pending: list[BaseException] = []
    try:
        return await attempt()
    except Exception as error:
        if not policy.is_retryable(error):
            count.explain_end(error)
            raise
        if policy.max_retries == 0 and not (last_success is not None and _rate_limited(error)):
            raise
        pending.append(error)
    controller = retrying(
        policy,
        on_retry=on_retry,
        check_wait=check_wait,
        last_success=last_success,
        paced=paced,
        count=count,
    )
    try:
        async for retry in controller:
            with retry:
                if pending:
                    raise pending.pop()
                return await attempt()
    except Exception as error:
        count.explain_end(error)
        raise
    raise AssertionError("unreachable: tenacity returns or re-raises")  # pragma: no cover
