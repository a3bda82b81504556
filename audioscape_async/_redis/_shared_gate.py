"""`SharedGate`: the rate gate of a `RedisBackend`, one limit for every process that uses it."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from audioscape_async._exceptions import BackendUnavailableError

if TYPE_CHECKING:
    from audioscape_async._gate import Budget, Limit

    from ._backend import RedisBackend

__all__ = ["SharedGate"]


class SharedGate:
    """The client's rate gate, shared through a `RedisBackend` by every process.

    The same calls as `Gate` (`wait`, `pause`, `succeeded`, `rate`), except that
    `pause` must be awaited: it writes the pause to Redis. `name` (a
    `_fingerprint.fingerprint`) says which processes share the limit: those of
    one API key at one base URL.
    Adaptive rates are not shared: the configured rate holds. With the
    backend's `fallback`, an unreachable Redis falls back to an in-process
    `Gate` of the same limit.
    """

    __slots__ = ("_backend", "_limit", "_local", "name")

    def __init__(self, limit: Limit, backend: RedisBackend, name: str) -> None:
        from audioscape_async._gate import Gate

        self._limit = limit
        self._backend = backend
        self._local = Gate(limit)
        self.name = name

    @property
    def rate(self) -> float:
        """The rate in force (requests per second)."""
        return self._limit.requests_per_second

    async def wait(
        self,
        *,
        slept_until: float = 0.0,
        max_pause: float = math.inf,
        budget: Budget | None = None,
    ) -> float:
        """Wait for this request's slot of the shared limit; return the seconds waited.

        `slept_until` (a `time.monotonic()` instant the caller already slept to
        after its own 429) skips the local part of that pause; what Redis still
        holds of it (its latency's worth) is waited out. A wait that does not
        fit in the call's `budget` is refused at once, without taking a slot;
        each Redis command waits no longer than the budget either.
        """
        from audioscape_async import _retry

        backend = self._backend
        local = self._local
        if backend.use_local_store():
            return await local.wait(slept_until=slept_until, max_pause=max_pause, budget=budget)
        left = budget.remaining() if budget is not None else None
        deadline = time.monotonic() + left if left is not None else None
        waited = 0.0
        while True:
            try:
                delay = await backend.acquire(
                    self.name,
                    self._limit.requests_per_second,
                    self._limit.burst,
                    max_pause=max_pause,
                    max_wait=deadline - time.monotonic() if deadline is not None else None,
                    deadline=deadline,
                )
            except BackendUnavailableError as error:
                if not backend.fall_back(error):
                    raise
                return waited + await local.wait(
                    slept_until=slept_until, max_pause=max_pause, budget=budget
                )
            if delay < 0 and budget is not None:
                budget.wait_fits(-delay, "the shared rate limit")  # refused: raises
            if delay <= 0:
                return waited
            await _retry.sleep(delay)
            waited += delay
            # A 429 that any process met while this one waited for its slot holds
            # this request too: the slot is given up and a new one taken after the pause.
            try:
                if await backend.paused(self.name, deadline=deadline) <= 0:
                    return waited
            except BackendUnavailableError as error:
                if not backend.fall_back(error):
                    raise
                return waited

    async def pause(self, seconds: float) -> float:
        """Pause every process of the limit for `seconds`; return when it ends here (monotonic)."""
        until = await self._local.pause(seconds)
        backend = self._backend
        if backend.use_local_store():
            return until
        try:
            left = await backend.pause(self.name, seconds)
        except BackendUnavailableError as error:
            if not backend.fall_back(error):
                raise
            return until
        return max(until, time.monotonic() + left)

    def ready(self) -> bool:
        """Never: whether a request may go is Redis's to say (see `Gate.ready`)."""
        return False

    #: Its rate is configured, never learned from 429s.
    learns = False

    def throttled(self, asked_at: float) -> None:
        """Note a 429 (a shared rate is configured, not learned)."""

    @property
    def last_success(self) -> float:
        """When a request of this process through the gate last succeeded (monotonic; 0: never)."""
        return self._local.last_success

    def succeeded(self) -> None:
        """Note a successful request (the shared rate is not adaptive)."""
        self._local.succeeded()
