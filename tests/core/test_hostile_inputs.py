"""What a hostile server or an odd argument found: each is an `AudioScapeError`, or works."""

from __future__ import annotations

import asyncio
import threading
import time
import traceback

import httpx
import pytest

from audioscape_async import (
    AsyncClient,
    AudioScapeError,
    Client,
    InternalServerError,
    InvalidParameterError,
    RateLimitError,
    RetryPolicy,
)
from audioscape_async._exceptions import parse_retry_after
from tests.helpers import API_KEY, MockAPI, error, ok, open_client
from tests.reliability.servers import RawServer, silent

pytestmark = pytest.mark.usefixtures("sleeps")


@pytest.mark.parametrize(
    "header",
    [
        "Mon, 01 Jan 99999999999999999999 00:00:00 GMT",
        "Mon, 01 Jan 2030 99999999999999999999:00:00 GMT",
        "Mon, 01 Jan 2030 00:00:00 +99999999999999999999",
    ],
)
def test_an_absurd_retry_after_date_is_unreadable(header: str) -> None:
    """A date no calendar holds is ignored, not an OverflowError."""
    assert parse_retry_after(header) is None


@pytest.mark.anyio
@pytest.mark.parametrize("status", [429, 503])
async def test_an_absurd_retry_after_date_from_a_server(status: int) -> None:
    """The call raises the status's own error, the header ignored."""
    hostile = "Mon, 01 Jan 99999999999999999999 00:00:00 GMT"
    api = MockAPI(*[error(status, None, **{"retry-after": hostile})] * 2)
    async with open_client(api, max_retries=1) as client:
        with pytest.raises((RateLimitError, InternalServerError)) as caught:
            await client.search("calm piano")
    assert caught.value.retry_after is None


def test_backoff_never_overflows() -> None:
    """Retry 1,025 and past it still wait at most `max_backoff`."""
    policy = RetryPolicy(max_retries=5_000)
    assert policy.backoff(1_025) <= policy.max_backoff
    assert policy.backoff(10**6) <= policy.max_backoff


@pytest.mark.anyio
async def test_more_than_a_thousand_retries_end_in_the_status_error() -> None:
    """A policy of 1,100 retries spends them and raises the server's error."""
    api = MockAPI(*[error(500)] * 1_101)
    policy = RetryPolicy(max_retries=1_100, initial_backoff=0, max_backoff=0)
    async with open_client(api, retry=policy) as client:
        with pytest.raises(InternalServerError):
            await client.search("calm piano")
    assert len(api.requests) == 1_101


@pytest.mark.parametrize(
    "make",
    [
        lambda: AsyncClient(API_KEY, timeout=10**400),
        lambda: AsyncClient(API_KEY, timeout=httpx.Timeout(5, read=10**400)),
        lambda: AsyncClient(API_KEY).with_options(timeout=10**400),
        lambda: asyncio.run(AsyncClient(API_KEY).search("x", deadline=10**400)),
        lambda: AsyncClient(API_KEY, default_headers={"x-zone": "é"}),
        lambda: AsyncClient(API_KEY).with_options(default_headers={"x-zone": "\x85"}),
        lambda: asyncio.run(AsyncClient(API_KEY).search("x", extra_headers={"x-zone": "ü"})),
        lambda: AsyncClient("clé"),
        lambda: RetryPolicy(retry_statuses=5),  # type: ignore[arg-type]
        lambda: RetryPolicy(retry_statuses="429"),  # type: ignore[arg-type]
        lambda: RetryPolicy(retry_statuses=[None]),  # type: ignore[list-item]
        lambda: RetryPolicy(retry_connection_errors="no"),  # type: ignore[arg-type]
    ],
    ids=[
        "huge-timeout",
        "huge-timeout-part",
        "huge-with-options",
        "huge-deadline",
        "non-ascii-default-header",
        "non-ascii-with-options-header",
        "non-ascii-extra-header",
        "non-ascii-key",
        "statuses-int",
        "statuses-str",
        "statuses-none",
        "connection-errors-str",
    ],
)
def test_odd_arguments_are_invalid_parameter_errors(make: object) -> None:
    """Each is refused with an `InvalidParameterError`, nothing from deeper down."""
    with pytest.raises(InvalidParameterError):
        make()  # type: ignore[operator]


def _locals_holding(error: BaseException, secret: str) -> list[str]:
    found = []
    tb = error.__traceback__
    while tb is not None:
        for name, value in tb.tb_frame.f_locals.items():
            if secret in repr(value):
                found.append(f"{tb.tb_frame.f_code.co_name}.{name}")
        tb = tb.tb_next
    return found


def test_a_rejected_argument_leaves_no_key_in_the_traceback(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The key read from the environment is not in any frame of a constructor's error."""
    monkeypatch.setenv("AUDIOSCAPE_API_KEY", API_KEY)
    for bad in (
        {"max_response_bytes": 5},
        {"timeout": -1},
        {"default_headers": {"x": "é"}},
        {"retry": "no"},
    ):
        with pytest.raises(InvalidParameterError) as caught:
            AsyncClient(**bad)  # type: ignore[arg-type]
        assert _locals_holding(caught.value, API_KEY) == []
        text = "".join(
            traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
        )
        assert API_KEY not in text
        assert "InvalidParameterError" in text


@pytest.mark.anyio
async def test_a_rejected_call_option_leaves_no_key_in_the_traceback() -> None:
    """A bad per-call option is refused before the key-carrying headers are copied."""
    api = MockAPI(ok())
    async with open_client(api) as client:
        with pytest.raises(InvalidParameterError) as caught:
            await client.search("x", extra_headers={"a": "1"}, deadline=-1)
    assert _locals_holding(caught.value, API_KEY) == []


def test_a_half_built_client_has_a_repr() -> None:
    """Formatting a constructor's traceback with its locals does not fail on `self`."""
    for cls in (AsyncClient, Client):
        with pytest.raises(InvalidParameterError) as caught:
            cls(API_KEY, max_response_bytes=5)
        text = "".join(
            traceback.TracebackException.from_exception(caught.value, capture_locals=True).format()
        )
        assert "(not built)" in text


@pytest.mark.anyio
@pytest.mark.parametrize("retries", [0, 3])
async def test_closing_under_a_call_in_flight(sdk_transport: str, retries: int) -> None:
    """`aclose()` while a search waits on the server ends it with the closed-client error."""
    policy = RetryPolicy(max_retries=retries, initial_backoff=0, max_backoff=0)
    with RawServer(silent, lifetime=10) as server:
        client = AsyncClient(
            API_KEY, base_url=server.url(), transport=sdk_transport, timeout=5, retry=policy
        )
        copy = client.with_options(max_retries=retries)
        outcomes: list[BaseException] = []

        async def call(who: AsyncClient) -> None:
            try:
                await who.search("x")
            except BaseException as caught:
                outcomes.append(caught)

        import anyio

        async with anyio.create_task_group() as tasks:
            tasks.start_soon(call, client)
            tasks.start_soon(call, copy)
            await anyio.sleep(0.3)
            started = time.monotonic()
            await client.aclose()
        assert time.monotonic() - started < 2
    assert len(outcomes) == 2
    for outcome in outcomes:
        assert isinstance(outcome, AudioScapeError), repr(outcome)
        assert "closed" in str(outcome)


@pytest.mark.parametrize("retries", [0, 3])
def test_closing_a_sync_client_under_calls_with_retries(retries: int) -> None:
    """Threads calling a `Client` that another thread closes get the closed-client error."""
    policy = RetryPolicy(max_retries=retries, initial_backoff=0, max_backoff=0)
    with RawServer(silent, lifetime=10) as server:
        client = Client(API_KEY, base_url=server.url(), timeout=5, retry=policy)
        outcomes: list[BaseException] = []

        def call() -> None:
            try:
                client.search("x")
            except BaseException as caught:
                outcomes.append(caught)

        threads = [threading.Thread(target=call) for _ in range(3)]
        for thread in threads:
            thread.start()
        time.sleep(0.3)
        client.close()
        for thread in threads:
            thread.join(5)
    assert len(outcomes) == 3
    for outcome in outcomes:
        assert isinstance(outcome, AudioScapeError), repr(outcome)
        assert "closed" in str(outcome)
