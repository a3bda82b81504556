"""`_config`: the client's arguments checked once, frozen, and safe to show.

`ClientConfig.build` and its helpers are called directly here: where the key and the
URL come from, what makes a URL, a timeout or a size valid (and the message when they
are not), that a password in the URL never reaches a repr, and that `evolve` checks a
replacement as the constructor would.
"""

from __future__ import annotations

import warnings

import attrs
import httpx
import pytest

from audioscape_async import (
    DEFAULT_BASE_URL,
    AudioScapeError,
    InsecureURLWarning,
    InvalidParameterError,
    RetryPolicy,
)
from audioscape_async._config import (
    USER_AGENT,
    ClientConfig,
    attempt_bound,
    check_deadline,
    is_loopback,
    redact_url,
    resolve_api_key,
    resolve_base_url,
    resolve_retry,
    resolve_timeout,
)

KEY = "sk-config-test-key"


def _build(**overrides: object) -> ClientConfig:
    arguments: dict[str, object] = {
        "api_key": KEY,
        "base_url": "https://api.example.test/developer/v1",
        "timeout": 10.0,
        "max_retries": None,
        "retry": None,
        "default_headers": None,
    }
    arguments.update(overrides)
    return ClientConfig.build(**arguments)  # type: ignore[arg-type]


# -- the key -------------------------------------------------------------------------------


def test_the_key_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit key is used; without one the environment's; with neither, an error."""
    monkeypatch.setenv("AUDIOSCAPE_API_KEY", "sk-from-env")
    assert resolve_api_key("sk-given") == "sk-given"
    assert resolve_api_key(None) == "sk-from-env"
    monkeypatch.delenv("AUDIOSCAPE_API_KEY")
    with pytest.raises(AudioScapeError, match=r"no API key: pass api_key=\.\.\. or set the"):
        resolve_api_key(None)


@pytest.mark.parametrize("key", [" sk-padded", "sk-new\nline", "sk-ключ", "sk\x00"])
def test_a_key_that_cannot_be_a_header_is_refused_without_echoing_it(key: str) -> None:
    """Space-padded, control characters or non-ASCII: refused, and the message omits the key."""
    with pytest.raises(InvalidParameterError, match="printable ASCII") as caught:
        resolve_api_key(key)
    assert key.strip() not in str(caught.value)


# -- the URL -------------------------------------------------------------------------------


def test_the_base_url_falls_back_to_the_environment_then_the_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Argument, then `AUDIOSCAPE_BASE_URL`, then the public API."""
    assert resolve_base_url(None) == httpx.URL(DEFAULT_BASE_URL)
    monkeypatch.setenv("AUDIOSCAPE_BASE_URL", "https://env.example.test/v1")
    assert resolve_base_url(None) == httpx.URL("https://env.example.test/v1")
    assert resolve_base_url("https://arg.example.test") == httpx.URL("https://arg.example.test")


@pytest.mark.parametrize(
    ("url", "match"),
    [
        ("ftp://example.test/", "must be an absolute http"),
        ("/developer/v1", "must be an absolute http"),
        ("https://example.test/v1?key=1", "must not have a query string or a fragment"),
        ("https://example.test/v1#top", "must not have a query string or a fragment"),
        ("http://[::1", "is not a URL"),
    ],
)
def test_a_base_url_that_is_not_an_absolute_http_url_says_why(url: str, match: str) -> None:
    """Wrong scheme, relative, a query or fragment, unparsable: each a `base_url` error."""
    with pytest.raises(InvalidParameterError, match=match) as caught:
        resolve_base_url(url)
    assert caught.value.parameter == "base_url"


def test_a_password_in_a_bad_url_is_not_in_the_error() -> None:
    """The URL is shown redacted in the message, even when it fails to parse further."""
    with pytest.raises(InvalidParameterError) as caught:
        resolve_base_url("ftp://user:hunter2@example.test/")
    assert "hunter2" not in str(caught.value)


def test_redact_url_hides_the_password_and_the_user() -> None:
    """Userinfo becomes ``***``; a URL without any is unchanged; junk is a placeholder."""
    assert redact_url("https://me:hunter2@example.test/v1") == "https://***@example.test/v1"
    assert redact_url("https://example.test/v1") == "https://example.test/v1"
    assert redact_url("http://[::1") == "<unparsable URL>"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("localhost", True),
        ("api.localhost", True),
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("[::1]", True),
        ("::1", True),
        ("10.0.0.1", False),
        ("example.test", False),
        ("localhost.example.test", False),
    ],
)
def test_loopback_is_this_machine_only(host: str, loopback: bool) -> None:
    """Names and addresses of this machine are loopback; a look-alike name is not."""
    assert is_loopback(host) is loopback


def test_plain_http_off_this_machine_warns_and_on_it_does_not() -> None:
    """Plain http off this machine holds an `InsecureURLWarning` (said over a network only)."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing is said when the config is made
        off = _build(base_url="http://api.example.test/v1")
        assert _build(base_url="http://127.0.0.1:8080/v1").insecure is None
        assert _build(base_url="https://api.example.test/v1").insecure is None
    assert off.insecure is not None
    with pytest.warns(InsecureURLWarning, match="off this machine"):
        off.insecure.warn()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        off.insecure.warn()  # said once: the second time is silent


def test_a_password_in_the_url_is_sent_as_basic_auth_and_never_shown() -> None:
    """The URL's userinfo becomes an Authorization header; the stored URL and repr drop it."""
    config = _build(base_url="https://me:hunter2@api.example.test/developer/v1")
    assert config.headers["authorization"].startswith("Basic ")
    assert config.base_url == httpx.URL("https://api.example.test/developer/v1")
    assert config.search_url == httpx.URL("https://api.example.test/developer/v1/search")
    assert "hunter2" not in repr(config)
    assert "hunter2" not in config.display_url
    assert KEY not in repr(config)


# -- timeouts and retries ------------------------------------------------------------------


def test_a_timeout_is_seconds_a_timeout_object_or_none() -> None:
    """A number is every step's timeout; None is no limit; an `httpx.Timeout` is kept."""
    assert resolve_timeout(5) == httpx.Timeout(5.0)
    assert resolve_timeout(None) == httpx.Timeout(None)
    given = httpx.Timeout(1.0, read=30.0)
    assert resolve_timeout(given) is given


@pytest.mark.parametrize("bad", [0, -1, float("inf"), float("nan"), True, "5", 10**400])
def test_a_bad_timeout_is_refused(bad: object) -> None:
    """Zero, negative, not finite, a bool, text, or an int past a float: all refused."""
    with pytest.raises(InvalidParameterError, match="must be a finite number of seconds > 0"):
        resolve_timeout(bad)


def test_a_bad_part_of_a_timeout_object_is_named() -> None:
    """An `httpx.Timeout` with a negative read names the part."""
    with pytest.raises(
        InvalidParameterError, match=r"^invalid timeout\.read: must be a finite number"
    ):
        resolve_timeout(httpx.Timeout(1.0, read=-2.0))


def test_the_attempt_bound_is_the_largest_part_or_none() -> None:
    """The whole attempt may take as long as its longest step; no limits, no bound."""
    assert attempt_bound(httpx.Timeout(1.0, read=30.0)) == 30.0
    assert attempt_bound(httpx.Timeout(None, connect=3.0)) == 3.0
    assert attempt_bound(httpx.Timeout(None)) is None


def test_a_deadline_is_positive_seconds_or_none() -> None:
    """None stays None; a number becomes a float; zero and text are refused."""
    assert check_deadline(None) is None
    assert check_deadline(2) == 2.0
    for bad in (0, "2", float("inf")):
        with pytest.raises(InvalidParameterError, match="invalid deadline"):
            check_deadline(bad)


def test_max_retries_edits_the_policy_only_when_it_differs() -> None:
    """An equal int keeps the same policy object; 3.0 or True is not a count and is checked."""
    base = RetryPolicy(max_retries=3)
    assert resolve_retry(3, None, base) is base
    assert resolve_retry(None, None, base) is base
    assert resolve_retry(0, None, base).max_retries == 0
    with pytest.raises(AudioScapeError):
        resolve_retry(3.0, None, base)
    with pytest.raises(
        InvalidParameterError, match="retry: must be a RetryPolicy or None, got dict"
    ):
        resolve_retry(None, {"max_retries": 1}, base)


# -- the whole config ----------------------------------------------------------------------


def test_build_settles_the_headers_every_call_sends() -> None:
    """Key, JSON content type, accept-encoding and user agent; extra headers go under them."""
    config = _build(default_headers={"x-team": "audio", "user-agent": "mine"})
    assert config.headers["x-api-key"] == KEY
    assert config.headers["content-type"] == "application/json"
    assert config.headers["accept-encoding"] == "gzip, deflate"
    assert config.headers["user-agent"] == USER_AGENT
    assert config.headers["x-team"] == "audio"
    assert config.bound == 10.0


@pytest.mark.parametrize(
    ("size", "ok"), [(1023, False), (1024, True), (2**40, True), (2**40 + 1, False)]
)
def test_max_response_bytes_is_between_a_kibibyte_and_a_tebibyte(size: int, ok: bool) -> None:
    """Both ends of 1024..2**40 are accepted, one past either end refused."""
    if ok:
        assert _build(max_response_bytes=size).max_response_bytes == size
    else:
        with pytest.raises(InvalidParameterError, match="max_response_bytes: must be between"):
            _build(max_response_bytes=size)


def test_a_bad_argument_after_the_key_never_leaves_the_key_in_the_error() -> None:
    """The key is read last: no error raised by `build` carries it."""
    with pytest.raises(InvalidParameterError) as caught:
        _build(default_headers={"x-api-key": "other"})
    assert "x-api-key" in str(caught.value)
    assert KEY not in str(caught.value)


def test_the_config_is_frozen() -> None:
    """A config is shared by every call: it cannot be edited in place."""
    config = _build()
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        config.max_response_bytes = 1  # type: ignore[misc]


def test_evolve_keeps_what_is_not_replaced_and_checks_what_is() -> None:
    """A replaced argument is checked as in `build`; the rest, the key included, carries over."""
    config = _build(default_headers={"x-team": "audio"}, retry=RetryPolicy(max_retries=5))
    other = config.evolve(timeout=3.0, timeout_given=True, default_headers={"x-more": "1"})
    assert other.timeout == httpx.Timeout(3.0)
    assert other.api_key == KEY
    assert other.retry.max_retries == 5
    assert other.headers["x-team"] == "audio"
    assert other.headers["x-more"] == "1"
    assert config.evolve().timeout == config.timeout  # no timeout given: kept
    assert config.evolve(timeout=None, timeout_given=True).timeout == httpx.Timeout(None)
    with pytest.raises(InvalidParameterError, match="base_url"):
        config.evolve(base_url="ftp://example.test")
