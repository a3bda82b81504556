"""The API key never shows: not in reprs, messages, logs or tracebacks, nor sent to another host."""

from __future__ import annotations

import logging
import traceback

import httpx
import pytest

from audioscape_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncClient,
    AudioScapeError,
    Client,
    InvalidParameterError,
    RateLimitError,
)
from tests.helpers import API_KEY, MockAPI, catalog, error, ids, ok, open_client

#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


def _assert_no_key(*texts: str) -> None:
    for text in texts:
        assert API_KEY not in text
        # Not even a recognisable part of it.
        assert "TOP-SECRET" not in text


def _shown(error_: BaseException) -> list[str]:
    """Every way an exception is usually shown: str, repr, args, the formatted traceback."""
    return [
        str(error_),
        repr(error_),
        repr(error_.args),
        "".join(traceback.format_exception(error_)),
    ]


FAILURES: list[tuple[str, object, type[AudioScapeError]]] = [
    ("400", error(400, {"error": "Missing required field: query"}), APIStatusError),
    ("401", error(401, {"error": "Invalid API key"}), APIStatusError),
    ("429", error(429, {"message": "Too Many Requests"}, **{"retry-after": "300"}), RateLimitError),
    ("500", error(500, {"error": "boom"}, **{"x-request-id": "r-1"}), APIStatusError),
    ("502-html", error(502, "<html><title>502 Bad Gateway</title></html>"), APIStatusError),
    ("redirect", httpx.Response(302, headers={"location": "https://x.example/"}), APIStatusError),
    ("connect", httpx.ConnectError("connection refused"), APIConnectionError),
    ("timeout", httpx.ReadTimeout("timed out"), APITimeoutError),
    ("not-json", httpx.Response(200, text="<html>maintenance</html>"), APIResponseValidationError),
    ("bad-shape", httpx.Response(200, json={"tracks": "x"}), APIResponseValidationError),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("answer", "cls"), [pytest.param(a, c, id=name) for name, a, c in FAILURES]
)
async def test_key_not_in_any_raised_error(answer: object, cls: type[AudioScapeError]) -> None:
    """Raised errors (str, repr, args, formatted traceback with causes) never hold the key."""
    api = MockAPI(answer)  # type: ignore[arg-type]
    async with open_client(api, max_retries=1) as client:
        with pytest.raises(cls) as caught:
            await client.search("calm piano")
    _assert_no_key(*_shown(caught.value))
    # The key did go out with the request: the check above is not vacuous.
    assert api.requests[0].headers["x-api-key"] == API_KEY


@pytest.mark.anyio
async def test_key_not_in_the_traceback_of_a_chained_error() -> None:
    """A connection error's traceback, with its httpx cause chained in, never holds the key."""
    api = MockAPI(httpx.ConnectError("connection refused"))
    async with open_client(api, max_retries=0) as client:
        with pytest.raises(APIConnectionError) as caught:
            await client.search("calm piano")
    assert caught.value.__cause__ is not None
    text = "".join(traceback.format_exception(caught.value, chain=True))
    assert "ConnectError" in text
    assert "direct cause" in text
    _assert_no_key(text)


def test_key_not_in_client_repr() -> None:
    """repr() and str() of AsyncClient and Client never show the key."""
    async_client = AsyncClient(API_KEY)
    sync_client = Client(API_KEY)
    try:
        _assert_no_key(repr(async_client), str(async_client), repr(sync_client), str(sync_client))
    finally:
        sync_client.close()
    _assert_no_key(repr(sync_client))


def test_key_from_the_environment_not_in_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    """A key read from AUDIOSCAPE_API_KEY is not shown either."""
    monkeypatch.setenv("AUDIOSCAPE_API_KEY", API_KEY)
    _assert_no_key(repr(AsyncClient()))


@pytest.mark.parametrize(
    "bad_key", [f" {API_KEY}", f"{API_KEY}\n", f"{API_KEY}\x00"], ids=["space", "newline", "nul"]
)
def test_rejected_key_is_not_echoed(bad_key: str) -> None:
    """A malformed key is rejected without repeating it in the error."""
    with pytest.raises(InvalidParameterError) as caught:
        AsyncClient(bad_key)
    assert caught.value.parameter == "api_key"
    _assert_no_key(*_shown(caught.value))


@pytest.mark.anyio
async def test_key_not_in_page_repr() -> None:
    """repr() and str() of a page, its tracks and its meta never show the key."""
    api = MockAPI(ok(**{"x-request-id": "req-1"}))
    async with open_client(api) as client:
        page = await client.search("calm piano")
    _assert_no_key(repr(page), str(page), repr(page.tracks), repr(page.meta))


@pytest.mark.anyio
async def test_key_not_in_logs_at_debug(caplog: pytest.LogCaptureFixture) -> None:
    """With every logger at DEBUG (httpx and httpcore too), no log output holds the key."""
    caplog.set_level(logging.DEBUG)
    for name in ("httpx", "httpcore", "audioscape_async"):
        caplog.set_level(logging.DEBUG, logger=name)
    api = MockAPI(
        error(503, {"error": "busy"}),
        httpx.ConnectError("refused"),
        error(429, {"message": "slow down"}, **{"retry-after": "1"}),
        ok(),
        error(401, {"error": "Invalid API key"}),
        error(400, {"error": "bad"}),
    )
    async with open_client(api, max_retries=3) as client:
        await client.search("calm piano")
        with pytest.raises(APIStatusError):
            await client.search("calm piano")
        with pytest.raises(APIStatusError):
            await client.search("calm piano")
    walk = MockAPI(respond=catalog(ids(25), total=40))
    async with open_client(walk) as client:
        async for _ in client.iter_tracks("calm piano", page_size=10):
            pass
    # Something was logged, by the SDK and by httpx, so the check below means something.
    names = {record.name for record in caplog.records}
    assert "audioscape_async" in names
    assert "httpx" in names
    _assert_no_key(caplog.text)
    for record in caplog.records:
        _assert_no_key(record.getMessage(), repr(record.args))


@pytest.mark.anyio
async def test_key_not_sent_to_a_redirect_target() -> None:
    """A redirect to another host is not followed, so the key never reaches that host."""
    api = MockAPI(httpx.Response(308, headers={"location": "https://collector.example.org/"}))
    async with open_client(api) as client:
        with pytest.raises(APIStatusError):
            await client.search("calm piano")
    hosts = {request.url.host for request in api.requests}
    assert hosts == {"api.audioscape.ai"}
