"""Per-key rate limiting: a token bucket for each API key.

Each key starts with `burst` tokens; a request spends one; tokens refill at
`rate` per second up to `burst`. A request that finds less than one token is
answered the documented 429, `{"message": "Too Many Requests"}`, without a
`Retry-After` (the API's documentation shows none). `retry_after="seconds"`
or `"date"` adds one: the whole seconds until a token is back, as
delta-seconds or as an HTTP date.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import attrs

from . import _defaults as d


def _positive(_: object, attribute: attrs.Attribute[Any], value: float) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ValueError(f"{attribute.name} must be a number, got {value!r}")
    if value <= 0:
        raise ValueError(f"{attribute.name} must be positive, got {value}")


def _default_burst(self: KeyRateLimit) -> int:
    return max(1, math.ceil(self.rate))


@attrs.frozen
class KeyRateLimit:
    """Allow `rate` requests a second per API key, with bursts of up to `burst`.

    The server's limit, per key; the SDK's `audioscape_async.RateLimit` is the
    client's own pacing, a different thing.

    >>> KeyRateLimit(rate=5).burst
    5
    >>> KeyRateLimit(rate=0.5, burst=3).burst
    3
    >>> KeyRateLimit(rate=1, retry_after="seconds").retry_after
    'seconds'
    """

    rate: float = attrs.field(validator=_positive)
    burst: int = attrs.field(
        default=attrs.Factory(_default_burst, takes_self=True), validator=_positive
    )
    #: None (the documented 429: no Retry-After), "seconds" or "date".
    retry_after: str | None = attrs.field(default=None, kw_only=True)

    @retry_after.validator
    def _format(self, attribute: attrs.Attribute[Any], value: str | None) -> None:
        if value is not None and value not in d.RETRY_AFTER_FORMATS:
            raise ValueError(
                f"retry_after must be None or one of {', '.join(d.RETRY_AFTER_FORMATS)}, "
                f"got {value!r}"
            )

    @burst.validator
    def _whole(self, attribute: attrs.Attribute[Any], value: int) -> None:
        if value != int(value):
            raise ValueError(f"burst must be a whole number, got {value}")

    @classmethod
    def parse(cls, spec: str) -> KeyRateLimit:
        """A limit from "R" or "R/BURST" (requests per second, burst size)."""
        rate_text, _, burst_text = spec.partition("/")
        try:
            rate = float(rate_text)
            burst = int(burst_text) if burst_text else None
        except ValueError:
            raise ValueError(
                f"expected RATE or RATE/BURST, like 10 or 10/20, got {spec!r}"
            ) from None
        return cls(rate) if burst is None else cls(rate, burst)

    def to_json(self) -> dict[str, Any]:
        """The admin endpoint's view of this limit."""
        return {"rate": self.rate, "burst": self.burst, "retry_after": self.retry_after}


class TokenBuckets:
    """The buckets of every key under one `KeyRateLimit`, on an injectable clock."""

    def __init__(self, limit: KeyRateLimit, clock: Callable[[], float]) -> None:
        self.limit = limit
        self._clock = clock
        self._buckets: dict[str, tuple[float, float]] = {}

    def take(self, key: str) -> int | None:
        """Spend a token for `key`: None if allowed, else the seconds to wait."""
        now = self._clock()
        tokens, then = self._buckets.get(key, (float(self.limit.burst), now))
        tokens = min(float(self.limit.burst), tokens + (now - then) * self.limit.rate)
        if tokens >= 1.0:
            self._buckets[key] = (tokens - 1.0, now)
            return None
        self._buckets[key] = (tokens, now)
        return max(1, math.ceil((1.0 - tokens) / self.limit.rate))
