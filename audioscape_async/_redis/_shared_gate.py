"""`SharedGate`: the rate gate of a `RedisBackend`, one limit for every process that uses it."""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING

from audioscape_async._exceptions import BackendUnavailableError

if TYPE_CHECKING:
    from audioscape_async._gate import Budget, GateState, Limit

    from ._backend import RedisBackend

__all__ = ["SharedGate"]


class SharedGate:
    """The client's rate gate, shared through a `RedisBackend` by every process.

    The same calls as `Gate` (`wait`, `pause`, `throttled`, `succeeded`,
    `rate`). `name` (a `_fingerprint.fingerprint`) says which processes share
    the limit: those of one API key at one base URL. A rate that learns its
    tier (`RateLimit.auto`) learns it from the 429s and successes of every
    process together, in Redis (`_scripts.TIER_ACQUIRE`, `TIER_CUT`): each
    process reports its successes with its next request for a slot, and a 429
    to a request whose turn came before the fleet's last cut changes nothing.
    Adaptive rates are not shared: the configured rate holds. With the
    backend's `fallback`, an unreachable Redis falls back to an in-process
    `Gate` of the same limit.
    """

    __slots__ = ("_backend", "_generations", "_limit", "_local", "_successes", "name")

    def __init__(
        self, limit: Limit, backend: RedisBackend, name: str, state: GateState | None = None
    ) -> None:
        from audioscape_async._gate import Gate

        self._limit = limit
        self._backend = backend
        self._local = Gate(limit, state)
        self.name = name
        self._successes = 0  # not yet reported to Redis (a learned rate's)
        #: When this process learned each generation of the fleet's learned rate.
        self._generations: list[tuple[float, int]] = [(-math.inf, 0)]

    @property
    def rate(self) -> float:
        """The rate in force here (requests per second; a learned one: as last known here)."""
        if self._limit.learn:
            return self._local.rate
        return self._limit.requests_per_second

    @property
    def learns(self) -> bool:
        """Whether its rate learns from 429s (`RateLimit.auto`), with every process."""
        return self._limit.learn

    async def _acquire(
        self, max_pause: float, max_wait: float | None, deadline: float | None
    ) -> float | None:
        backend = self._backend
        if not self._limit.learn:
            return await backend.acquire(
                self.name,
                self._limit.requests_per_second,
                self._limit.burst,
                max_pause=max_pause,
                max_wait=max_wait,
                deadline=deadline,
            )
        successes, self._successes = self._successes, 0
        try:
            delay, generation = await backend.acquire_learned(
                self.name,
                successes=successes,
                max_pause=max_pause,
                max_wait=max_wait,
                deadline=deadline,
            )
        except BaseException:
            self._successes += successes  # reported with the next request, then
            raise
        self._learned(generation)
        return delay  # None: nap, then ask again (`RedisBackend.acquire_learned`)

    def _learned(self, generation: int) -> None:
        if generation != self._generations[-1][1]:
            self._generations.append((time.monotonic(), generation))
            del self._generations[:-64]

    def _generation_at(self, instant: float) -> int:
        """The generation of the learned rate this process knew at `instant` (-1: older
        than any it keeps, so stale)."""
        return next((g for at, g in reversed(self._generations) if at <= instant), -1)

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
            self._successes = 0  # counted by the local gate, which holds the limit meanwhile
            return await local.wait(slept_until=slept_until, max_pause=max_pause, budget=budget)
        left = budget.remaining() if budget is not None else None
        deadline = time.monotonic() + left if left is not None else None
        waited = 0.0
        while True:
            try:
                delay = await self._acquire(
                    max_pause,
                    deadline - time.monotonic() if deadline is not None else None,
                    deadline,
                )
            except BackendUnavailableError as error:
                if not backend.fall_back(error):
                    raise
                return waited + await local.wait(
                    slept_until=slept_until, max_pause=max_pause, budget=budget
                )
            if delay is None:
                from audioscape_async._gate import NAP

                await _retry.sleep(NAP)
                waited += NAP
                continue
            if delay < 0 and budget is not None:
                budget.wait_fits(-delay, "the shared rate limit")  # refused: raises
            if delay <= 0:
                return waited
            generation = self._generations[-1][1]
            await _retry.sleep(delay)
            waited += delay
            if self._generations[-1][1] != generation:
                continue  # a turn given at a learned rate since cut: a new one
            # A 429 that any process met while this one waited for its slot holds
            # this request too: the slot is given up and a new one taken after the pause.
            try:
                if self._limit.learn:
                    # Another process may have cut the rate meanwhile: then this turn
                    # was one of the old rate, and a new one is asked for.
                    paused, latest = await backend.paused_learned(self.name, deadline=deadline)
                    self._learned(latest)
                    if latest != generation:
                        continue
                else:
                    paused = await backend.paused(self.name, deadline=deadline)
                if paused <= 0:
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

    async def throttled(self, asked_at: float) -> None:
        """Note a 429 to a request that asked for its turn at `asked_at` (monotonic).

        A learned rate: told to every process through Redis (and to the local
        gate, which holds the limit if Redis goes away). Redis being unreachable
        here is not this call's error: its next request for a slot will say so.
        """
        if not self._limit.learn:
            return
        await self._local.throttled(asked_at)
        backend = self._backend
        if backend.use_local_store():
            return
        successes, self._successes = self._successes, 0
        try:
            generation = await backend.cut_learned(
                self.name, self._generation_at(asked_at), successes=successes
            )
        except BackendUnavailableError:
            self._successes += successes
            return
        self._learned(generation)

    @property
    def state(self) -> GateState:
        """The pause and last success it shares with the owner's other gates (here)."""
        return self._local.state

    @property
    def last_success(self) -> float:
        """When a request of this process through the gate last succeeded (monotonic; 0: never)."""
        return self._local.last_success

    def succeeded(self) -> None:
        """Note a successful request (a learned rate reports it to Redis with its next one)."""
        self._local.succeeded()
        if self._limit.learn:
            self._successes += 1
