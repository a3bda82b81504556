"""`_options`: per-call options merged over a client's config, and the deadline's arithmetic.

`call_options` is what every public method runs first; these tests hold its promises
directly: nothing overridden costs nothing, each override is checked as the constructor
checks it, and a deadline fails a wait that cannot fit, at once.
"""

from __future__ import annotations

import copy
import pickle
import time

import httpx
import pytest

from audioscape_async import DeadlineExceededError, InvalidParameterError, RetryPolicy
from audioscape_async._config import ClientConfig
from audioscape_async._options import NOT_GIVEN, CallOptions, NotGiven, call_options

KEY = "sk-options-test-key"


def _config(**overrides: object) -> ClientConfig:
    arguments: dict[str, object] = {
        "api_key": KEY,
        "base_url": "https://api.example.test/v1",
        "timeout": 10.0,
        "max_retries": None,
        "retry": None,
        "default_headers": None,
    }
    arguments.update(overrides)
    return ClientConfig.build(**arguments)  # type: ignore[arg-type]


def test_not_given_is_one_falsy_value_that_survives_copies() -> None:
    """`NOT_GIVEN` is a singleton: a new `NotGiven()`, a copy and a pickle are the same object."""
    assert NotGiven() is NOT_GIVEN
    assert copy.deepcopy(NOT_GIVEN) is NOT_GIVEN
    assert pickle.loads(pickle.dumps(NOT_GIVEN)) is NOT_GIVEN
    assert not NOT_GIVEN
    assert repr(NOT_GIVEN) == "NOT_GIVEN"


def test_a_call_that_overrides_nothing_gets_the_defaults_object() -> None:
    """No override: the very same precomputed `CallOptions`, not an equal copy."""
    config = _config()
    defaults = CallOptions.defaults(config)
    assert call_options(config, defaults) is defaults
    assert defaults.headers is config.headers
    assert defaults.bound == 10.0
    assert defaults.deadline is None


def test_the_defaults_keep_the_key_out_of_the_repr() -> None:
    """The headers (which hold the key) are not in `repr(CallOptions)`."""
    config = _config()
    assert KEY not in repr(CallOptions.defaults(config))


def test_a_timeout_override_changes_the_extensions_and_the_bound() -> None:
    """`timeout=` sets httpx's per-step timeouts and the whole-attempt bound (its largest part)."""
    config = _config()
    defaults = CallOptions.defaults(config)
    options = call_options(config, defaults, timeout=httpx.Timeout(2.0, read=7.0))
    assert options.extensions["timeout"] == httpx.Timeout(2.0, read=7.0).as_dict()
    assert options.bound == 7.0
    assert defaults.bound == 10.0  # the defaults are frozen, not edited
    assert call_options(config, defaults, timeout=None).bound is None


def test_max_retries_and_retry_override_the_policy() -> None:
    """`max_retries=` edits the client's policy; `retry=` replaces it."""
    config = _config(retry=RetryPolicy(max_retries=5, initial_backoff=0.25))
    defaults = CallOptions.defaults(config)
    edited = call_options(config, defaults, max_retries=0).retry
    assert (edited.max_retries, edited.initial_backoff) == (0, 0.25)
    other = RetryPolicy(max_retries=1)
    assert call_options(config, defaults, retry=other).retry is other


def test_extra_headers_go_over_the_client_headers_on_a_copy() -> None:
    """Extra headers win for that call only; the client's headers are untouched."""
    config = _config(default_headers={"x-team": "audio"})
    defaults = CallOptions.defaults(config)
    options = call_options(config, defaults, extra_headers={"x-team": "music", "x-trace": "1"})
    assert options.headers["x-team"] == "music"
    assert options.headers["x-trace"] == "1"
    assert options.headers["x-api-key"] == KEY
    assert config.headers["x-team"] == "audio"
    assert "x-trace" not in config.headers


@pytest.mark.parametrize(
    ("override", "parameter"),
    [
        ({"timeout": 0}, "timeout"),
        ({"timeout": float("nan")}, "timeout"),
        ({"deadline": -1}, "deadline"),
        ({"deadline": True}, "deadline"),
        ({"retry": 3}, "retry"),
        ({"extra_headers": {"x-api-key": "other"}}, "extra_headers"),
    ],
)
def test_each_override_is_checked_as_the_constructor_checks_it(
    override: dict[str, object], parameter: str
) -> None:
    """A bad override is an `InvalidParameterError` naming that parameter, before any I/O."""
    config = _config()
    with pytest.raises(InvalidParameterError) as caught:
        call_options(config, CallOptions.defaults(config), **override)
    assert caught.value.parameter == parameter
    assert KEY not in str(caught.value)


def test_a_deadline_starts_once() -> None:
    """`started()` fixes the instant once: starting again (a walk's next page) keeps it."""
    config = _config()
    options = call_options(config, CallOptions.defaults(config), deadline=30)
    assert options.deadline == 30.0
    assert options.deadline_at is None
    assert options.remaining() is None
    before = time.monotonic()
    started = options.started()
    assert started.deadline_at is not None
    assert before + 30 <= started.deadline_at <= time.monotonic() + 30
    assert started.started() is started
    remaining = started.remaining()
    assert remaining is not None
    assert 29 < remaining <= 30


def test_without_a_deadline_started_is_free() -> None:
    """No deadline: `started()` returns the same object and the bound is the timeout's."""
    config = _config()
    defaults = CallOptions.defaults(config)
    assert defaults.started() is defaults
    assert defaults.attempt_bound() == (10.0, False)


def test_the_deadline_caps_an_attempt_when_it_is_nearer_than_the_timeout() -> None:
    """Less time left than the timeout: the attempt gets what is left, flagged as the deadline's."""
    config = _config(timeout=60.0)
    options = call_options(config, CallOptions.defaults(config), deadline=5).started()
    bound, by_deadline = options.attempt_bound()
    assert by_deadline
    assert bound is not None
    assert 4 < bound <= 5
    roomy = call_options(config, CallOptions.defaults(config), deadline=600).started()
    assert roomy.attempt_bound() == (60.0, False)


def test_a_spent_deadline_fails_before_the_next_attempt() -> None:
    """No time left: `attempt_bound` raises `DeadlineExceededError` instead of trying."""
    config = _config()
    options = call_options(config, CallOptions.defaults(config), deadline=0.001).started()
    time.sleep(0.01)
    with pytest.raises(DeadlineExceededError, match=r"deadline of 0.001 s.*before the next"):
        options.attempt_bound()


def test_a_wait_that_cannot_fit_fails_at_once() -> None:
    """`wait_fits` passes a wait that ends in time and fails one that would not, saying both."""
    config = _config()
    options = call_options(config, CallOptions.defaults(config), deadline=10).started()
    options.wait_fits(1.0, "the backoff")
    started = time.monotonic()
    with pytest.raises(
        DeadlineExceededError, match=r"the backoff would wait 60.00 s, [0-9.]+ s left"
    ):
        options.wait_fits(60.0, "the backoff")
    assert time.monotonic() - started < 1  # it did not sleep to find out
    CallOptions.defaults(config).wait_fits(10**9, "anything")  # no deadline: any wait fits
