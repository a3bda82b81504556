"""`RateLimit`: how fast one client may send; the gate in `_gate` enforces it."""

from __future__ import annotations

import math
import warnings
from typing import TYPE_CHECKING, Any

import attrs

from ._exceptions import InvalidParameterError
from ._validation import check_int_range, check_number, check_optional

if TYPE_CHECKING:
    from ._redis import RedisBackend

__all__ = ["RateLimit"]


def _check_rate(_instance: Any, attribute: Any, value: float) -> None:
    check_number(f"rate_limit.{attribute.name}", value)


def _check_start(instance: Any, attribute: Any, value: float) -> None:
    if instance.learn:
        if value != math.inf or instance.burst != 1:
            raise InvalidParameterError(
                "rate_limit.learn",
                "a rate that learns its tier takes no rate or burst: use RateLimit.auto()",
            )
        return  # RateLimit.auto(): no rate until the first 429
    _check_rate(instance, attribute, value)


def _check_burst(_instance: Any, _attribute: Any, value: object) -> None:
    check_int_range("rate_limit.burst", value, 1)


def _check_backend(instance: Any, _attribute: Any, value: object) -> None:
    if value is None:
        return
    from ._redis import RedisBackend

    check_optional("rate_limit.backend", value, RedisBackend)
    if instance.adaptive:
        raise InvalidParameterError(
            "rate_limit.adaptive", "an adaptive rate is per process: it cannot use a backend"
        )


def _check_learn(instance: Any, _attribute: Any, value: object) -> None:
    if not isinstance(value, bool):
        raise InvalidParameterError("rate_limit.learn", f"must be True or False, got {value!r:.40}")
    if value and instance.adaptive:
        raise InvalidParameterError(
            "rate_limit.adaptive", "a rate that learns its tier is not also adaptive"
        )


def _warn_adaptive(_instance: Any, _attribute: Any, value: object) -> None:
    if value:
        warnings.warn(
            "RateLimit(adaptive=True) is deprecated: RateLimit.auto() finds the API key's "
            "tier from its 429s, with no starting rate",
            DeprecationWarning,
            stacklevel=3,
        )


@attrs.frozen
class RateLimit:
    """A client-side limit on how fast one client sends requests.

    >>> RateLimit(requests_per_second=10, burst=5)
    RateLimit(requests_per_second=10, burst=5)
    >>> RateLimit.auto()
    RateLimit.auto()

    At most `burst` requests go out at once, then one every
    ``1 / requests_per_second`` seconds.

    `RateLimit.auto()` needs no rate: it learns the API key's tier from the
    server's 429s and settles just under it (`_tier`). It is what a crawl
    uses on a client without a `rate_limit`. With a `backend`, every process
    sharing the API key learns one rate together.

    With a `backend` (a `RedisBackend`), the limit holds for every process and
    host that uses the same backend and API key together, and a 429's pause
    reaches all of them.

    Deprecated: with `adaptive`, the rate halves after each 429 (not below
    `min_requests_per_second`) and grows back by 5% of the configured rate per
    success, never above it. `RateLimit.auto()` replaces it.
    """

    requests_per_second: float = attrs.field(validator=_check_start)
    burst: int = attrs.field(default=1, validator=_check_burst)
    adaptive: bool = attrs.field(default=False, validator=_warn_adaptive)
    min_requests_per_second: float = attrs.field(default=0.5, validator=_check_rate)
    backend: RedisBackend | None = attrs.field(
        default=None, validator=_check_backend, eq=False, repr=False, kw_only=True
    )
    #: Learn the tier from 429s (`RateLimit.auto()`); `requests_per_second` is then inf.
    learn: bool = attrs.field(default=False, validator=_check_learn, kw_only=True)

    @classmethod
    def auto(cls, backend: RedisBackend | None = None) -> RateLimit:
        """A limit that learns the API key's tier from its 429s; see the class docstring."""
        return cls(math.inf, backend=backend, learn=True)

    def __repr__(self) -> str:
        if self.learn:
            return "RateLimit.auto()"
        text = f"RateLimit(requests_per_second={self.requests_per_second:g}, burst={self.burst}"
        if self.adaptive:
            text += f", adaptive=True, min_requests_per_second={self.min_requests_per_second:g}"
        return text + ")"
