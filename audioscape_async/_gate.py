"""The per-client gate that every request passes; see `RateLimit` for the knobs.

The gate does two things. It holds every task while the server has asked the
client to back off (a 429's ``Retry-After``), so that one 429 pauses the whole
client instead of each task finding out on its own. And, when the user asks for
it, it spaces requests to a rate with a burst (GCRA, the token bucket's
arithmetic twin: one number, the theoretical arrival time, and no lock, because
nothing awaits between reading and writing it). A limit that learns
(`RateLimit.auto`) takes its rate from a `_tier.TierFinder`, told of every
send, success and 429. In the deprecated adaptive mode the rate halves after
a 429 and creeps back up after successes.

Kept apart from `RateLimit` (an attrs class) because every client has a gate,
and `import audioscape_async` should not pay for what only some clients use.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, Protocol

from ._exceptions import RateLimitError

#: The longest a task sleeps on a learned rate before it asks for its turn again.
NAP = 0.25

if TYPE_CHECKING:
    from ._tier import TierFinder


class Limit(Protocol):
    """The knobs a gate reads (`RateLimit` has them; the gate needs no more of it)."""

    @property
    def requests_per_second(self) -> float: ...
    @property
    def burst(self) -> int: ...
    @property
    def adaptive(self) -> bool: ...
    @property
    def min_requests_per_second(self) -> float: ...
    @property
    def learn(self) -> bool: ...


class Budget(Protocol):
    """What is left of a call's deadline (`CallOptions` is one)."""

    def remaining(self) -> float | None:
        """Seconds left (None: no deadline)."""

    def wait_fits(self, seconds: float, what: str) -> None:
        """Raise the deadline's error if a wait of `seconds` would end past it."""


class GateState:
    """What every gate of one owner shares: a 429's pause, and when a request last succeeded.

    A crawl with a pace of its own (`RateLimit.auto`) has a gate of its own, but the
    server's "come back later" and the owner's last success hold for all of them.
    """

    __slots__ = ("last_success", "paused_until")

    def __init__(self) -> None:
        self.paused_until = 0.0  # monotonic
        self.last_success = 0.0  # monotonic; 0: never


class Gate:
    """The per-client gate; see the module docstring."""

    __slots__ = (
        "_finder",
        "_interval",
        "_limit",
        "_rate",
        "_state",
        "_tat",
    )

    def __init__(self, limit: Limit | None, state: GateState | None = None) -> None:
        self._limit = limit
        self._state = state if state is not None else GateState()
        self._finder: TierFinder | None = None
        if limit is not None and limit.learn:
            from ._tier import TierFinder

            self._finder = TierFinder()
        self._rate = limit.requests_per_second if limit is not None else math.inf
        self._interval = 1.0 / self._rate
        self._tat = 0.0  # the theoretical arrival time of the next request (learned: the last)

    @property
    def state(self) -> GateState:
        """The pause and last success it shares with the owner's other gates."""
        return self._state

    @property
    def last_success(self) -> float:
        """When a request of its owner last succeeded (monotonic; 0: never)."""
        return self._state.last_success

    @property
    def rate(self) -> float:
        """The rate in force now (requests per second; inf when unlimited)."""
        if self._finder is not None:
            return self._finder.rate(time.monotonic())
        return self._rate

    async def wait(
        self,
        *,
        slept_until: float = 0.0,
        max_pause: float = math.inf,
        budget: Budget | None = None,
    ) -> float:
        """Wait for this request's turn; return the seconds waited.

        `slept_until` ends a pause the caller has already slept through (its own
        retry sleep after the 429 that set it): that pause does not hold it twice.
        A wait that does not fit in the call's `budget` (its deadline) is
        refused at once with the deadline's `DeadlineExceededError`, and a
        refused turn is not taken from the rate. A pause longer than
        `max_pause` (the retry policy's `max_retry_after`) is not slept
        through: `RateLimitError` at once, as for the 429 that set it.
        """
        from . import _retry  # imported where used; it holds the SDK's one sleep

        waited = 0.0
        asked = time.monotonic()
        while True:
            now = time.monotonic()
            until = self._state.paused_until
            pause = until - now
            if pause > 0 and until > slept_until:
                if budget is not None:
                    budget.wait_fits(pause, "the client-wide pause after a 429")
                if pause > max_pause:
                    raise RateLimitError(
                        f"an earlier 429 paused this client for {pause:.1f} s more, longer "
                        f"than the retry policy waits ({max_pause:g} s)",
                        status_code=429,
                        retry_after=pause,
                    )
                # Sleep out a pause first; a new 429 may extend it meanwhile.
                # The SDK's one injectable sleep, so tests never wait for real.
                await _retry.sleep(pause)
                waited += pause
                slept_until = until
                continue
            if self._limit is None:
                return waited
            finder = self._finder
            if finder is not None:
                # A learned rate changes under the waiting tasks: each turn is one
                # interval of the rate now after the last turn given (`_tat`), and one
                # further off than NAP is not taken yet: asked for again after a nap,
                # at the rate then (which may have risen).
                self._interval = 1.0 / finder.rate(now)
                turn = max(self._tat + self._interval, now)
                delay = turn - now
                if delay > 0 and budget is not None:
                    budget.wait_fits(delay, "the client-side rate limit")
                if delay > NAP:
                    await _retry.sleep(NAP)
                    waited += NAP
                    continue
                self._tat = turn
                asked = now  # the turn is given now, at the rate now
                finder.sent(turn)
            else:
                tat = max(self._tat, now)
                delay = tat - (self._limit.burst - 1) * self._interval - now
                if delay > 0 and budget is not None:
                    budget.wait_fits(delay, "the client-side rate limit")
                self._tat = tat + self._interval
            if delay <= 0:
                return waited
            await _retry.sleep(delay)
            waited += delay
            if finder is not None and finder.cut_at > asked:
                asked = time.monotonic()  # a turn given at the rate since cut: a new one
                continue
            if self._state.paused_until <= max(time.monotonic(), slept_until):
                return waited

    def ready(self) -> bool:
        """Whether a request may go at once with nothing to count: no limit, no pause.

        Then `wait` has nothing to do, and the pipeline does not call it.
        """
        return self._limit is None and self._state.paused_until <= time.monotonic()

    async def pause(self, seconds: float) -> float:
        """Hold every request of this client for `seconds` from now (a 429 said so).

        Return when this pause ends (the `slept_until` of the task that sleeps it out).
        The caller caps `seconds` (at the retry policy's `max_retry_after`): a
        server's "come back in 11 days" must not lock the client for 11 days.
        Async, as `_redis.SharedGate.pause` (which writes the pause to Redis) is:
        the pipeline awaits either gate the same way. Nothing here awaits.
        """
        until = time.monotonic() + seconds
        if until > self._state.paused_until:
            self._state.paused_until = until
        if self._limit is not None and self._limit.adaptive:
            self._set_rate(max(self._limit.min_requests_per_second, self._rate / 2))
        return until

    @property
    def learns(self) -> bool:
        """Whether its rate learns from 429s (`RateLimit.auto`)."""
        return self._finder is not None

    async def throttled(self, asked_at: float) -> None:
        """Note a 429 to a request that asked for its turn at `asked_at` (monotonic).

        A learned rate learns from it, unless its turn was given at a rate since cut.
        Async, as `_redis.SharedGate.throttled` is (it tells Redis); nothing here awaits.
        """
        now = time.monotonic()
        finder = self._finder
        if finder is not None and finder.throttled(asked_at, now):
            # The turns given at the old rate are given again (`wait`), from one
            # interval of the new rate on.
            self._tat = now

    def succeeded(self) -> None:
        """Note a successful request: a learned rate counts it, an adaptive one grows back."""
        now = self._state.last_success = time.monotonic()
        if self._finder is not None:
            self._finder.succeeded(now)
            return
        limit = self._limit
        if limit is not None and limit.adaptive and self._rate < limit.requests_per_second:
            step = limit.requests_per_second * 0.05
            self._set_rate(min(limit.requests_per_second, self._rate + step))

    def _set_rate(self, rate: float) -> None:
        self._rate = rate
        self._interval = 1.0 / rate
