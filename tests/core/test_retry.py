"""Retries: which failures, how many attempts, how long between them, and cancellation."""

from __future__ import annotations

import email.utils
import json
import logging
import re
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from audioscape_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    InternalServerError,
    InvalidParameterError,
    RateLimitError,
    RetryPolicy,
)
from audioscape_async import _retry as retry_module
from audioscape_async._retry import parse_retry_after
from tests.helpers import API_KEY, MockAPI, error, ok, open_client, page_json

RETRIED = [429, 500, 502, 503, 504]
NOT_RETRIED = [400, 401, 403, 404]


#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


def _status(status: int, **headers: str) -> httpx.Response:
    key = "message" if status == 429 else "error"
    return error(status, {key: f"status {status}"}, **headers)


def _http_date(seconds_from_now: float) -> str:
    return email.utils.formatdate(time.time() + seconds_from_now, usegmt=True)


# -- what is retried, and how often ----------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("status", RETRIED)
@pytest.mark.parametrize("max_retries", [0, 1, 3])
async def test_retried_status_makes_max_retries_plus_one_attempts(
    status: int, max_retries: int, sleeps: list[float]
) -> None:
    """A retried status that never clears makes max_retries + 1 attempts, then raises it."""
    api = MockAPI(_status(status))
    async with open_client(api, max_retries=max_retries) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.search("calm piano")
    assert api.calls == max_retries + 1
    assert len(sleeps) == max_retries
    assert caught.value.status_code == status


@pytest.mark.anyio
async def test_the_last_error_is_raised() -> None:
    """When retries run out, the error of the last attempt is the one raised."""
    api = MockAPI(_status(500), _status(502), _status(503))
    async with open_client(api, max_retries=2) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.search("calm piano")
    assert caught.value.status_code == 503


@pytest.mark.anyio
@pytest.mark.parametrize("status", RETRIED)
async def test_transient_status_then_success_returns_the_page(status: int) -> None:
    """A retried status followed by a good answer returns the good answer."""
    api = MockAPI(_status(status), _status(status), ok())
    async with open_client(api, max_retries=3) as client:
        page = await client.search("calm piano")
    assert page.tracks
    assert api.calls == 3


@pytest.mark.anyio
@pytest.mark.parametrize("status", NOT_RETRIED)
async def test_client_errors_are_never_retried(status: int, sleeps: list[float]) -> None:
    """400, 401, 403 and 404 are raised after one attempt, without sleeping."""
    api = MockAPI(_status(status), ok())
    async with open_client(api, max_retries=5) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.search("calm piano")
    assert caught.value.status_code == status
    assert api.calls == 1
    assert sleeps == []


@pytest.mark.anyio
@pytest.mark.parametrize("content", [b"<html>oops</html>", b'{"tracks": "nope"}'])
async def test_response_validation_errors_are_never_retried(
    content: bytes, sleeps: list[float]
) -> None:
    """A 2xx answer that is not the documented shape is raised after one attempt."""
    api = MockAPI(httpx.Response(200, content=content), ok())
    async with open_client(api, max_retries=5) as client:
        with pytest.raises(APIResponseValidationError):
            await client.search("calm piano")
    assert api.calls == 1
    assert sleeps == []


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exception", "cls"),
    [
        (httpx.ConnectError("connection refused"), APIConnectionError),
        (httpx.ReadError("connection reset"), APIConnectionError),
        (httpx.ConnectTimeout("connect timed out"), APITimeoutError),
        (httpx.ReadTimeout("read timed out"), APITimeoutError),
    ],
)
async def test_connection_errors_and_timeouts_are_retried(
    exception: Exception, cls: type[APIConnectionError], sleeps: list[float]
) -> None:
    """Connection failures and timeouts are retried, then raised as their SDK class."""
    api = MockAPI(exception)
    async with open_client(api, max_retries=2) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.search("calm piano")
    assert type(caught.value) is cls
    assert api.calls == 3
    assert len(sleeps) == 2


@pytest.mark.anyio
async def test_connection_error_then_success_returns_the_page() -> None:
    """A dropped connection followed by a good answer returns the good answer."""
    api = MockAPI(httpx.ConnectError("refused"), ok())
    async with open_client(api) as client:
        page = await client.search("calm piano")
    assert page.tracks
    assert api.calls == 2


@pytest.mark.anyio
async def test_whole_attempt_deadline_is_a_retried_timeout() -> None:
    """An answer that does not come within `timeout` is an APITimeoutError, retried."""
    calls = 0

    async def hang(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http,
        AsyncClient(API_KEY, http_client=http, timeout=0.02, max_retries=1) as client,
    ):
        with anyio.fail_after(5), pytest.raises(APITimeoutError, match="within"):
            await client.search("calm piano")
    assert calls == 2


@pytest.mark.anyio
async def test_connection_errors_not_retried_when_the_policy_says_so() -> None:
    """RetryPolicy(retry_connection_errors=False) raises a connection error at once."""
    api = MockAPI(httpx.ConnectError("refused"), ok())
    policy = RetryPolicy(retry_connection_errors=False)
    async with open_client(api, retry=policy) as client:
        with pytest.raises(APIConnectionError):
            await client.search("calm piano")
    assert api.calls == 1


@pytest.mark.anyio
async def test_retry_statuses_are_configurable() -> None:
    """Only the statuses in the policy's retry_statuses are retried."""
    api = MockAPI(_status(500), ok())
    policy = RetryPolicy(retry_statuses={503})
    async with open_client(api, retry=policy) as client:
        with pytest.raises(InternalServerError):
            await client.search("calm piano")
    assert api.calls == 1


@pytest.mark.anyio
async def test_concurrent_calls_count_their_attempts_apart() -> None:
    """Each call has its own attempt count: concurrent calls do not use up each other's retries."""
    failures: dict[str, int] = {}

    def respond(request: httpx.Request, body: dict[str, object]) -> httpx.Response:
        query = str(body["query"])
        failures[query] = failures.get(query, 0) + 1
        return _status(503) if failures[query] <= 2 else ok()

    api = MockAPI(respond=respond)
    results: list[int] = []
    async with open_client(api, max_retries=2) as client:

        async def one(query: str) -> None:
            page = await client.search(query)
            results.append(len(page.tracks))

        async with anyio.create_task_group() as tg:
            for n in range(4):
                tg.start_soon(one, f"query {n}")
    assert results == [1, 1, 1, 1]
    assert api.calls == 12


# -- how long between attempts -----------------------------------------------------


@pytest.mark.anyio
async def test_backoff_doubles_from_half_a_second_to_a_cap_of_eight(sleeps: list[float]) -> None:
    """Delay before retry n lies in [b/2, b], b = min(8, 0.5 * 2**(n-1))."""
    api = MockAPI(_status(503))
    async with open_client(api, max_retries=8) as client:
        with pytest.raises(InternalServerError):
            await client.search("calm piano")
    ceilings = [0.5, 1, 2, 4, 8, 8, 8, 8]
    assert len(sleeps) == len(ceilings)
    for delay, ceiling in zip(sleeps, ceilings, strict=True):
        assert ceiling / 2 <= delay <= ceiling


@pytest.mark.anyio
async def test_backoff_follows_the_policy(sleeps: list[float]) -> None:
    """initial_backoff and max_backoff of the RetryPolicy set the delays."""
    api = MockAPI(_status(500))
    policy = RetryPolicy(max_retries=4, initial_backoff=0.1, max_backoff=0.3)
    async with open_client(api, retry=policy) as client:
        with pytest.raises(InternalServerError):
            await client.search("calm piano")
    for delay, ceiling in zip(sleeps, [0.1, 0.2, 0.3, 0.3], strict=True):
        assert ceiling / 2 <= delay <= ceiling


@given(
    retry_number=st.integers(min_value=1, max_value=40),
    initial=st.floats(min_value=0, max_value=10),
    cap=st.floats(min_value=0, max_value=100),
)
def test_backoff_stays_within_its_bounds(retry_number: int, initial: float, cap: float) -> None:
    """RetryPolicy.backoff(n) is always within [b/2, b] for b = min(cap, initial * 2**(n-1))."""
    policy = RetryPolicy(initial_backoff=initial, max_backoff=cap)
    ceiling = min(cap, initial * 2.0 ** (retry_number - 1))
    assert ceiling / 2 <= policy.backoff(retry_number) <= ceiling


def test_backoff_is_jittered() -> None:
    """Backoff delays vary between calls (jitter), so clients do not retry in lockstep."""
    policy = RetryPolicy()
    assert len({policy.backoff(3) for _ in range(50)}) > 1


@pytest.mark.parametrize(
    ("options", "parameter"),
    [
        ({"max_retries": -1}, "max_retries"),
        ({"max_retries": True}, "max_retries"),
        ({"initial_backoff": -0.5}, "retry.initial_backoff"),
        ({"max_backoff": float("inf")}, "retry.max_backoff"),
        ({"max_retry_after": float("nan")}, "retry.max_retry_after"),
    ],
)
def test_retry_policy_rejects_bad_values(options: dict[str, object], parameter: str) -> None:
    """A RetryPolicy with a negative, infinite, NaN or boolean setting is rejected."""
    with pytest.raises(InvalidParameterError) as caught:
        RetryPolicy(**options)  # type: ignore[arg-type]
    assert caught.value.parameter == parameter


# -- Retry-After ---------------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize(("header", "expected"), [("7", 7.0), ("1.5", 1.5), ("0", 0.0)])
async def test_retry_after_seconds_is_the_delay(
    header: str, expected: float, sleeps: list[float]
) -> None:
    """A 429 with Retry-After in delta-seconds waits exactly that long before retrying."""
    api = MockAPI(_status(429, **{"retry-after": header}), ok())
    async with open_client(api) as client:
        with anyio.fail_after(5):  # the wait is recorded, never slept for real
            await client.search("calm piano")
    assert sleeps == [expected]
    assert api.calls == 2


@pytest.mark.anyio
async def test_retry_after_http_date_is_the_delay(sleeps: list[float]) -> None:
    """A 429 with Retry-After as an HTTP-date waits until that moment before retrying."""
    api = MockAPI(_status(429, **{"retry-after": _http_date(30)}), ok())
    async with open_client(api) as client:
        with anyio.fail_after(5):  # the wait is recorded, never slept for real
            await client.search("calm piano")
    (delay,) = sleeps
    # An HTTP-date has whole seconds, so the wait can be up to one second short.
    assert 28.0 <= delay <= 30.0


@pytest.mark.anyio
async def test_retry_after_http_date_in_the_past_retries_at_once(sleeps: list[float]) -> None:
    """A Retry-After date already past means retry now."""
    api = MockAPI(_status(429, **{"retry-after": _http_date(-3600)}), ok())
    async with open_client(api) as client:
        await client.search("calm piano")
    assert sleeps == [0.0]


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["soon", "-5", "nan", "Someday, 99 Foo 2024"])
async def test_unreadable_retry_after_falls_back_to_backoff(
    header: str, sleeps: list[float]
) -> None:
    """A Retry-After that is not a valid delay is ignored: the normal backoff applies."""
    api = MockAPI(_status(429, **{"retry-after": header}), ok())
    async with open_client(api) as client:
        await client.search("calm piano")
    (delay,) = sleeps
    assert 0.25 <= delay <= 0.5


@pytest.mark.anyio
async def test_retry_after_over_the_limit_raises_at_once(sleeps: list[float]) -> None:
    """A Retry-After over the default 60 s is not slept through: RateLimitError at once."""
    api = MockAPI(_status(429, **{"retry-after": "120"}), ok())
    async with open_client(api, max_retries=5) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.search("calm piano")
    assert caught.value.retry_after == 120.0
    assert api.calls == 1
    assert sleeps == []
    assert "retry after 120 s" in str(caught.value)
    assert "Retry-After longer than retry.max_retry_after, 60 s" in str(caught.value)


@pytest.mark.anyio
async def test_retry_after_date_over_the_limit_raises_at_once(sleeps: list[float]) -> None:
    """A Retry-After HTTP-date further away than the limit raises at once, retry_after set."""
    api = MockAPI(_status(429, **{"retry-after": _http_date(600)}), ok())
    async with open_client(api, max_retries=5) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.search("calm piano")
    assert caught.value.retry_after is not None
    assert 598.0 <= caught.value.retry_after <= 600.0
    assert api.calls == 1
    assert sleeps == []


@pytest.mark.anyio
async def test_retry_after_limit_is_configurable(sleeps: list[float]) -> None:
    """RetryPolicy.max_retry_after sets the longest Retry-After the client waits through."""
    api = MockAPI(_status(429, **{"retry-after": "10"}), ok())
    async with open_client(api, retry=RetryPolicy(max_retry_after=5)) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.search("calm piano")
    assert caught.value.retry_after == 10.0
    assert api.calls == 1
    assert sleeps == []


@pytest.mark.anyio
async def test_retry_after_exactly_at_the_limit_is_waited(sleeps: list[float]) -> None:
    """A Retry-After equal to the limit is still waited through."""
    api = MockAPI(_status(429, **{"retry-after": "60"}), ok())
    async with open_client(api) as client:
        with anyio.fail_after(5):  # the wait is recorded, never slept for real
            await client.search("calm piano")
    assert sleeps == [60.0]


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("30", 30.0),
        (" 2.5 ", 2.5),
        ("-1", None),
        ("inf", None),
        ("tomorrow", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 60.0),
        ("Wed, 21 Oct 2015 07:26:00 GMT", 0.0),
        ("Wed, 21 Oct 2015 07:28:00", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: float | None) -> None:
    """Retry-After parses as delta-seconds or a GMT HTTP-date; garbage is None."""
    now = email.utils.parsedate_to_datetime("Wed, 21 Oct 2015 07:27:00 GMT").timestamp()
    assert parse_retry_after(header, now=now) == expected


# -- logging -------------------------------------------------------------------------


@pytest.mark.anyio
async def test_each_retry_is_logged_with_reason_and_delay(
    caplog: pytest.LogCaptureFixture, sleeps: list[float]
) -> None:
    """Every retry logs a warning on `audioscape_async` naming the reason and the delay."""
    api = MockAPI(
        _status(503),
        httpx.ConnectError("refused"),
        httpx.ReadTimeout("slow"),
        _status(429, **{"retry-after": "3"}),
        ok(),
    )
    caplog.set_level(logging.DEBUG, logger="audioscape_async")
    async with open_client(api, max_retries=4) as client:
        await client.search("calm piano")
    records = [
        r for r in caplog.records if r.name == "audioscape_async" and r.levelno > logging.DEBUG
    ]
    assert len(records) == 4
    assert all(r.levelno == logging.WARNING for r in records)
    reasons = ["HTTP 503", "connection error", "timeout", "HTTP 429"]
    for record, reason, delay in zip(records, reasons, sleeps, strict=True):
        message = record.getMessage()
        assert reason in message
        assert f"{delay:.2f} s" in message
    assert "3.00 s" in records[3].getMessage()


@pytest.mark.anyio
async def test_no_retry_no_log(caplog: pytest.LogCaptureFixture) -> None:
    """A call that succeeds first time, or fails without retry, logs no retry."""
    api = MockAPI(ok(), _status(400))
    caplog.set_level(logging.DEBUG, logger="audioscape_async")
    async with open_client(api) as client:
        await client.search("calm piano")
        with pytest.raises(APIStatusError):
            await client.search("calm piano")
    retries = [r for r in caplog.records if r.name == "audioscape_async" and r.levelno > 10]
    assert retries == []


# -- cancellation ----------------------------------------------------------------------


@pytest.mark.anyio
async def test_cancelling_during_backoff_cancels_the_call(monkeypatch: pytest.MonkeyPatch) -> None:
    """Cancelling a call while it sleeps before a retry ends it: no further attempt is made."""
    sleeping = anyio.Event()

    async def real_sleep(seconds: float) -> None:
        sleeping.set()
        await anyio.sleep(seconds)

    monkeypatch.setattr(retry_module, "sleep", real_sleep)
    api = MockAPI(_status(503), ok())
    finished = False
    policy = RetryPolicy(initial_backoff=3600, max_backoff=3600)
    async with open_client(api, retry=policy) as client:

        async def call() -> None:
            nonlocal finished
            await client.search("calm piano")
            finished = True  # pragma: no cover

        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(call)
                await sleeping.wait()
                tg.cancel_scope.cancel()
    assert not finished
    assert api.calls == 1


@pytest.mark.anyio
async def test_cancelling_during_a_request_is_not_retried(sleeps: list[float]) -> None:
    """Cancelling a call while its request is in flight ends it; a cancel is never retried."""
    started = anyio.Event()
    calls = 0

    async def hang(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        started.set()
        await anyio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover

    async with (
        httpx.AsyncClient(transport=httpx.MockTransport(hang)) as http,
        AsyncClient(API_KEY, http_client=http, timeout=None) as client,
    ):
        with anyio.fail_after(5):
            async with anyio.create_task_group() as tg:
                tg.start_soon(client.search, "calm piano")
                await started.wait()
                tg.cancel_scope.cancel()
    assert calls == 1
    assert sleeps == []


@pytest.mark.anyio
async def test_outer_timeout_during_backoff_raises_timeout_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A caller's own anyio deadline interrupts the backoff sleep, as any cancellation does."""

    async def real_sleep(seconds: float) -> None:
        await anyio.sleep(seconds)

    monkeypatch.setattr(retry_module, "sleep", real_sleep)
    api = MockAPI(_status(503))
    policy = RetryPolicy(initial_backoff=3600, max_backoff=3600)
    async with open_client(api, retry=policy) as client:
        with pytest.raises(TimeoutError), anyio.fail_after(0.05):
            await client.search("calm piano")
    assert api.calls == 1


# -- a walk's 429s slow it down; they do not spend max_retries -------------------


def _pages_of(total: int) -> Callable[[httpx.Request], httpx.Response]:
    """A server of `total` tracks answering each page it is asked for."""

    def respond(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        offset, limit = body["offset"], body["limit"]
        ids = [str(n) for n in range(offset, min(offset + limit, total))]
        return ok(page_json(ids, total=total, offset=offset, limit=limit))

    return respond


@pytest.mark.anyio
async def test_a_walk_goes_on_through_more_429s_than_max_retries(sleeps: list[float]) -> None:
    """Ten 429s in a row do not end a walk with max_retries=1: 429s are not faults."""
    pages = _pages_of(30)
    script: list[Any] = [_status(429)] * 10 + [pages]
    api = MockAPI(*script)
    async with open_client(api, max_retries=1) as client:
        ids = [t.asset_id async for t in client.iter_tracks("calm piano", page_size=10)]
    assert ids == [str(n) for n in range(30)]
    assert api.calls == 10 + 3
    # Each 429's backoff grows with the count of 429s, not with a fault count.
    assert len(sleeps) == 10
    assert sleeps[-1] >= 4.0


@pytest.mark.anyio
async def test_a_single_search_still_counts_429s_as_retries(sleeps: list[float]) -> None:
    """Outside a walk a caller waits for the answer: max_retries bounds 429s too."""
    api = MockAPI(_status(429))
    async with open_client(api, max_retries=2) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.search("calm piano")
    assert api.calls == 3
    assert "(3 attempts over " in str(caught.value)


@pytest.mark.anyio
async def test_a_walk_still_spends_max_retries_on_faults(sleeps: list[float]) -> None:
    """A 5xx in a walk is a fault: max_retries + 1 attempts, then its error, which says so."""
    api = MockAPI(_status(429), _status(500))
    async with open_client(api, max_retries=2) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.iter_pages("calm piano").__anext__()
    assert api.calls == 1 + 3
    assert "(4 attempts over " in str(caught.value)


@pytest.mark.anyio
async def test_a_walk_gives_up_when_nothing_succeeds_for_max_rate_limited() -> None:
    """A key whose quota is spent: 429s are retried for max_rate_limited seconds, no longer."""

    def slow_429(_request: httpx.Request, _body: dict[str, Any]) -> httpx.Response:
        time.sleep(0.02)
        return _status(429)

    api = MockAPI(respond=slow_429)
    policy = RetryPolicy(max_retries=0, initial_backoff=0.0, max_rate_limited=0.15)
    started = time.monotonic()
    async with open_client(api, retry=policy) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.iter_pages("calm piano").__anext__()
    assert 0.15 <= time.monotonic() - started < 5.0
    assert api.calls >= 3
    assert re.search(r"\(\d+ attempts over [\d.]+ s; no search of this API key", str(caught.value))
    assert "retry.max_rate_limited is 0.15 s" in str(caught.value)


@pytest.mark.anyio
async def test_max_rate_limited_counts_from_the_last_success_of_the_key(
    sleeps: list[float],
) -> None:
    """With max_rate_limited=0, a walk's first 429 ends it: nothing succeeded since it began."""
    api = MockAPI(_status(429), ok())
    async with open_client(api, retry=RetryPolicy(max_rate_limited=0)) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.iter_pages("calm piano").__anext__()
    assert api.calls == 1
    assert "has succeeded for" in str(caught.value)


@pytest.mark.anyio
async def test_a_walk_ends_at_once_on_a_retry_after_past_max_retry_after(
    sleeps: list[float],
) -> None:
    """Patience has a limit the server sets: a Retry-After over max_retry_after ends the walk."""
    api = MockAPI(_status(429, **{"retry-after": "120"}), ok())
    async with open_client(api) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.iter_pages("calm piano").__anext__()
    assert api.calls == 1
    assert sleeps == []
    assert "max_retry_after" in str(caught.value)


def test_max_rate_limited_is_checked() -> None:
    """A negative or non-number max_rate_limited is refused, by name."""
    with pytest.raises(InvalidParameterError, match=r"retry\.max_rate_limited"):
        RetryPolicy(max_rate_limited=-1)
    assert "max_rate_limited=300.0" in repr(RetryPolicy())


# -- an error after retries says how many attempts, over how long ----------------------


@pytest.mark.anyio
async def test_an_error_after_retries_says_its_attempts_and_their_time() -> None:
    """Three attempts of 50 ms each: the error says "3 attempts over" at least 0.15 s."""

    def slow_500(_request: httpx.Request, _body: dict[str, Any]) -> httpx.Response:
        time.sleep(0.05)
        return _status(500)

    api = MockAPI(respond=slow_500)
    async with open_client(api, max_retries=2) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.search("calm piano")
    match = re.search(r"\(3 attempts over (\d+\.\d\d) s\)$", caught.value.message)
    assert match, caught.value.message
    assert 0.15 <= float(match[1]) < 5.0
    assert str(caught.value).startswith("500: status 500 (3 attempts over ")


@pytest.mark.anyio
async def test_an_unretried_error_after_a_retry_still_says_the_attempts() -> None:
    """A 500, then a 400 (never retried): the 400 says the call took two attempts."""
    api = MockAPI(_status(500), _status(400))
    async with open_client(api, max_retries=3) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.search("calm piano")
    assert caught.value.status_code == 400
    assert "(2 attempts over " in str(caught.value)


@pytest.mark.anyio
async def test_a_first_attempt_error_says_nothing_of_attempts() -> None:
    """An error that ends the first attempt (nothing retried) keeps its message as it was."""
    api = MockAPI(_status(400))
    async with open_client(api, max_retries=3) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.search("calm piano")
    assert caught.value.message == "status 400"
