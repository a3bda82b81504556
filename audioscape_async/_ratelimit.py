"""`RateLimit`: how fast one client may send; the gate in `_gate` enforces it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import attrs

from ._exceptions import InvalidParameterError
from ._validation import check_int_range, check_number, check_optional

if TYPE_CHECKING:
    from ._redis import RedisBackend

__all__ = ["RateLimit"]


def _check_rate(_instance: Any, attribute: Any, value: float) -> None:
    check_number(f"rate_limit.{attribute.name}", value)


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


@attrs.frozen
class RateLimit:
    """A client-side limit on how fast one client sends requests.

    >>> RateLimit(requests_per_second=10, burst=5)
    RateLimit(requests_per_second=10, burst=5, adaptive=False, min_requests_per_second=0.5)

    At most `burst` requests go out at once, then one every
    ``1 / requests_per_second`` seconds. With `adaptive`, the rate halves after
    each 429 (not below `min_requests_per_second`) and grows back by 5% of the
    configured rate per success, never above it.

    With a `backend` (a `RedisBackend`), the limit holds for every process and
    host that uses the same backend and API key together, and a 429's pause
    reaches all of them.
    """

    requests_per_second: float = attrs.field(validator=_check_rate)
    burst: int = attrs.field(default=1, validator=_check_burst)
    adaptive: bool = False
    min_requests_per_second: float = attrs.field(default=0.5, validator=_check_rate)
    backend: RedisBackend | None = attrs.field(
        default=None, validator=_check_backend, eq=False, repr=False, kw_only=True
    )
