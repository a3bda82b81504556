"""Client-wide rate awareness: one gate that every request of a client passes.

The gate does two things. It holds every task while the server has asked the
client to back off (a 429's ``Retry-After``), so that one 429 pauses the whole
client instead of each task finding out on its own. And, when the user asks for
it, it spaces requests to a rate with a burst (GCRA, the token bucket's
arithmetic twin: one number, the theoretical arrival time, and no lock, because
nothing awaits between reading and writing it). In adaptive mode the rate halves
after a 429 and creeps back up after successes.
"""

from __future__ import annotations

import math
import time
from typing import Any

import anyio
import attrs

from ._exceptions import InvalidParameterError

__all__ = ["RateLimit"]


def _positive(name: str) -> Any:
    def check(_instance: Any, _attribute: Any, value: object) -> None:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not ok or not (math.isfinite(value) and value > 0):  # type: ignore[arg-type, operator]
            raise InvalidParameterError(
                f"rate_limit.{name}", f"must be a number > 0, got {value!r}"
            )

    return check


def _check_burst(_instance: Any, _attribute: Any, value: object) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or value < 1:
        raise InvalidParameterError("rate_limit.burst", f"must be an integer >= 1, got {value!r}")


@attrs.frozen
class RateLimit:
    """A client-side limit on how fast one client sends requests.

    >>> RateLimit(requests_per_second=10, burst=5)
    RateLimit(requests_per_second=10, burst=5, adaptive=False, min_requests_per_second=0.5)

    At most `burst` requests go out at once, then one every
    ``1 / requests_per_second`` seconds. With `adaptive`, the rate halves after
    each 429 (not below `min_requests_per_second`) and grows back by 5% of the
    configured rate per success, never above it.
    """

    requests_per_second: float = attrs.field(validator=_positive("requests_per_second"))
    burst: int = attrs.field(default=1, validator=_check_burst)
    adaptive: bool = False
    min_requests_per_second: float = attrs.field(
        default=0.5, validator=_positive("min_requests_per_second")
    )


class Gate:
    """The per-client gate; see the module docstring."""

    __slots__ = ("_interval", "_limit", "_paused_until", "_rate", "_tat")

    def __init__(self, limit: RateLimit | None) -> None:
        self._limit = limit
        self._rate = limit.requests_per_second if limit is not None else math.inf
        self._interval = 1.0 / self._rate
        self._tat = 0.0  # the theoretical arrival time of the next request
        self._paused_until = 0.0

    @property
    def rate(self) -> float:
        """The rate in force now (requests per second; inf when unlimited)."""
        return self._rate

    async def wait(self) -> float:
        """Wait for this request's turn; return the seconds waited."""
        waited = 0.0
        while True:
            now = time.monotonic()
            pause = self._paused_until - now
            if pause > 0:
                # Sleep out a pause first; a new 429 may extend it meanwhile.
                await anyio.sleep(pause)
                waited += pause
                continue
            if self._limit is None:
                return waited
            tat = max(self._tat, now)
            delay = tat - (self._limit.burst - 1) * self._interval - now
            self._tat = tat + self._interval
            if delay <= 0:
                return waited
            await anyio.sleep(delay)
            waited += delay
            if self._paused_until <= time.monotonic():
                return waited

    def pause(self, seconds: float) -> None:
        """Hold every request of this client for `seconds` from now (a 429 said so)."""
        until = time.monotonic() + seconds
        if until > self._paused_until:
            self._paused_until = until
        if self._limit is not None and self._limit.adaptive:
            self._set_rate(max(self._limit.min_requests_per_second, self._rate / 2))

    def succeeded(self) -> None:
        """Note a successful request: the adaptive rate grows back a little."""
        limit = self._limit
        if limit is not None and limit.adaptive and self._rate < limit.requests_per_second:
            step = limit.requests_per_second * 0.05
            self._set_rate(min(limit.requests_per_second, self._rate + step))

    def _set_rate(self, rate: float) -> None:
        self._rate = rate
        self._interval = 1.0 / rate
