"""`_ratelimit`: `RateLimit` takes only a rate it can keep, and is one frozen value.

Each field is checked as the limit is made, and a bad one is an
`InvalidParameterError` named ``rate_limit.<field>``; a backend is a `RedisBackend`
(never an adaptive rate's) and stays out of the limit's repr and equality. How
the gate keeps the limit is `test_gate.py`.
"""

from __future__ import annotations

import math
import warnings

import attrs
import pytest

from audioscape_async import InvalidParameterError, RateLimit, RedisBackend


def test_the_defaults_are_one_at_a_time_and_not_adaptive() -> None:
    """A burst of 1, no adaptation, and a floor of 0.5 requests per second; shown as such."""
    limit = RateLimit(requests_per_second=10)
    assert (limit.burst, limit.adaptive, limit.min_requests_per_second) == (1, False, 0.5)
    assert limit.backend is None
    assert repr(RateLimit(requests_per_second=10, burst=5)) == (
        "RateLimit(requests_per_second=10, burst=5)"
    )


@pytest.mark.parametrize("value", [0.001, 1, 10, 2.5, 1e6])
def test_any_positive_finite_rate_is_a_rate(value: float) -> None:
    """Whole or not, however small or large: kept as given."""
    assert RateLimit(requests_per_second=value).requests_per_second == value
    assert RateLimit(1, min_requests_per_second=value).min_requests_per_second == value


@pytest.mark.parametrize("field", ["requests_per_second", "min_requests_per_second"])
@pytest.mark.parametrize("value", [0, -1, 0.0, math.nan, math.inf, True, "10", None], ids=repr)
def test_a_rate_that_is_not_a_positive_number_is_refused(field: str, value: object) -> None:
    """Zero, negative, not finite, a bool or text: refused, naming the field, the rule and the
    value."""
    kwargs: dict[str, object] = {"requests_per_second": 10, field: value}
    with pytest.raises(InvalidParameterError) as caught:
        RateLimit(**kwargs)  # type: ignore[arg-type]
    assert caught.value.parameter == f"rate_limit.{field}"
    assert "> 0" in str(caught.value)
    assert f"got {value!r}" in str(caught.value)


@pytest.mark.parametrize("value", [1, 2, 1_000])
def test_a_burst_is_a_whole_number_from_one(value: int) -> None:
    """1 (one request at a time) and up: kept as given."""
    assert RateLimit(requests_per_second=1, burst=value).burst == value


@pytest.mark.parametrize(
    ("value", "rule"),
    [(0, ">= 1"), (-3, ">= 1"), (True, "integer"), (2.0, "integer"), ("2", "integer")],
    ids=repr,
)
def test_a_burst_that_is_not_a_whole_number_from_one_is_refused(value: object, rule: str) -> None:
    """A burst of 0 would send nothing; True and 2.0 are not integers here."""
    with pytest.raises(InvalidParameterError) as caught:
        RateLimit(requests_per_second=1, burst=value)  # type: ignore[arg-type]
    assert caught.value.parameter == "rate_limit.burst"
    assert rule in str(caught.value)
    assert repr(value) in str(caught.value)


def test_a_limit_is_frozen_and_compares_by_value() -> None:
    """One limit may be shared by clients: nobody can change it; equal limits hash alike."""
    limit = RateLimit(requests_per_second=10, burst=5, min_requests_per_second=2)
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        limit.burst = 50  # type: ignore[misc]
    same = RateLimit(requests_per_second=10, burst=5, min_requests_per_second=2)
    assert limit == same
    assert hash(limit) == hash(same)
    assert limit != RateLimit(requests_per_second=10, burst=5)


def test_rate_limit_takes_a_backend() -> None:
    """`RateLimit(backend=...)` keeps the backend out of its repr and equality."""
    backend = RedisBackend()
    limit = RateLimit(requests_per_second=10, burst=20, backend=backend)
    assert limit.backend is backend
    assert repr(limit) == repr(RateLimit(requests_per_second=10, burst=20))
    assert limit == RateLimit(requests_per_second=10, burst=20)


@pytest.mark.parametrize(
    ("kwargs", "parameter"),
    [
        ({"backend": "redis://127.0.0.1"}, "rate_limit.backend"),
        ({"backend": RedisBackend(), "adaptive": True}, "rate_limit.adaptive"),
    ],
    ids=["not-a-backend", "adaptive"],
)
def test_rate_limit_backend_is_checked(kwargs: dict[str, object], parameter: str) -> None:
    """A backend must be a RedisBackend, and cannot share an adaptive rate."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # adaptive=True is deprecated
        with pytest.raises(InvalidParameterError) as caught:
            RateLimit(requests_per_second=10, **kwargs)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


def test_auto_needs_no_rate_and_says_so() -> None:
    """`RateLimit.auto()` learns its rate: shown as such, equal to another auto, not to a rate."""
    limit = RateLimit.auto()
    assert limit.learn
    assert limit.requests_per_second == math.inf
    assert repr(limit) == "RateLimit.auto()"
    assert limit == RateLimit.auto()
    assert hash(limit) == hash(RateLimit.auto())
    assert limit != RateLimit(requests_per_second=10)


def test_only_a_learned_rate_may_be_infinite() -> None:
    """An infinite rate is refused where nothing learns it; a learned rate is not also adaptive."""
    with pytest.raises(InvalidParameterError, match=r"rate_limit\.requests_per_second"):
        RateLimit(requests_per_second=math.inf)
    with (
        pytest.warns(DeprecationWarning, match="adaptive"),
        pytest.raises(InvalidParameterError, match=r"rate_limit\.adaptive"),
    ):
        RateLimit(math.inf, adaptive=True, learn=True)


def test_auto_takes_a_backend_out_of_its_repr_and_equality() -> None:
    """`RateLimit.auto(backend=...)`: a fleet learns one rate; the backend is not part of it."""
    backend = RedisBackend("redis://127.0.0.1:1/0")
    limit = RateLimit.auto(backend=backend)
    assert limit.backend is backend
    assert limit == RateLimit.auto()
    assert repr(limit) == "RateLimit.auto()"


def test_adaptive_is_deprecated_where_it_is_asked_for() -> None:
    """`adaptive=True` warns, pointing at the caller's line, and still works."""
    with pytest.warns(DeprecationWarning, match=r"RateLimit\.auto\(\)") as caught:
        limit = RateLimit(requests_per_second=10, adaptive=True)
    assert caught[0].filename == __file__
    assert limit.adaptive
    assert "adaptive=True" in repr(limit)


def test_learn_with_a_rate_or_burst_is_refused() -> None:
    """`learn=True` beside a rate (or a burst) would be ignored silently: refused instead."""
    with pytest.raises(InvalidParameterError, match=r"RateLimit\.auto\(\)") as caught:
        RateLimit(5, learn=True)
    assert caught.value.parameter == "rate_limit.learn"
    with pytest.raises(InvalidParameterError, match=r"rate_limit\.learn"):
        RateLimit(math.inf, burst=7, learn=True)
