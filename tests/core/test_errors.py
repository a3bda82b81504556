"""Error answers: each status becomes its own exception class, with everything the server said."""

from __future__ import annotations

import httpx
import pytest

from audioscape_async import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AudioScapeError,
    AuthenticationError,
    BadRequestError,
    InternalServerError,
    InvalidParameterError,
    NotFoundError,
    PermissionDeniedError,
    RateLimitError,
)
from tests.helpers import MockAPI, error, open_client

HTML_502 = """<!DOCTYPE html>
<html><head><title>502 Bad Gateway</title></head>
<body><center><h1>502 Bad Gateway</h1></center><hr><center>nginx</center></body></html>
"""


#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


async def _raised(api: MockAPI, **options: object) -> BaseException:
    """Search once against `api` (no retries unless asked); return what was raised."""
    options.setdefault("max_retries", 0)
    async with open_client(api, **options) as client:
        with pytest.raises(AudioScapeError) as caught:
            await client.search("calm piano")
    return caught.value


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("status", "cls", "body"),
    [
        (400, BadRequestError, {"error": "Missing required field: query"}),
        (401, AuthenticationError, {"error": "Invalid API key"}),
        (403, PermissionDeniedError, {"error": "Forbidden for this tier"}),
        (404, NotFoundError, {"error": "No such endpoint"}),
        (429, RateLimitError, {"message": "Too Many Requests"}),
        (500, InternalServerError, {"error": "Internal Server Error"}),
        (502, InternalServerError, {"error": "Bad gateway"}),
        (503, InternalServerError, {"error": "Service unavailable"}),
        (504, InternalServerError, {"error": "Gateway timeout"}),
    ],
)
async def test_status_maps_to_its_error_class(
    status: int, cls: type[APIStatusError], body: dict[str, str]
) -> None:
    """Each error status raises its class with status_code, message, body, request_id, response."""
    api = MockAPI(error(status, body, **{"x-request-id": f"req-{status}"}))
    raised = await _raised(api)
    assert type(raised) is cls
    assert isinstance(raised, APIStatusError)
    assert raised.status_code == status
    assert raised.message == next(iter(body.values()))
    assert raised.body == body
    assert raised.request_id == f"req-{status}"
    assert raised.response is not None
    assert raised.response.status_code == status
    assert str(raised) == f"{status}: {raised.message} (request id req-{status})"


@pytest.mark.anyio
async def test_rate_limit_message_comes_from_message_key() -> None:
    """A 429 reads its message from the documented `message` key."""
    raised = await _raised(MockAPI(error(429, {"message": "Too Many Requests"})))
    assert isinstance(raised, RateLimitError)
    assert raised.message == "Too Many Requests"
    assert raised.retry_after is None


@pytest.mark.anyio
async def test_other_errors_read_the_error_key() -> None:
    """A 400 reads its message from the documented `error` key."""
    raised = await _raised(MockAPI(error(400, {"error": "Missing required field: query"})))
    assert isinstance(raised, BadRequestError)
    assert raised.message == "Missing required field: query"


@pytest.mark.anyio
async def test_html_502_from_a_proxy_is_readable() -> None:
    """An HTML 502 page is an InternalServerError whose message is the page title, not HTML."""
    api = MockAPI(error(502, HTML_502, **{"content-type": "text/html"}))
    raised = await _raised(api)
    assert isinstance(raised, InternalServerError)
    assert raised.status_code == 502
    assert "502 Bad Gateway" in raised.message
    assert "<" not in raised.message
    assert raised.body == HTML_502


@pytest.mark.anyio
async def test_plain_text_error_body_is_readable() -> None:
    """A plain-text error body gives its first line as the message."""
    raised = await _raised(MockAPI(error(503, "upstream connect error\nmore detail")))
    assert isinstance(raised, InternalServerError)
    assert "upstream connect error" in raised.message
    assert "more detail" not in raised.message


@pytest.mark.anyio
@pytest.mark.parametrize(
    "body",
    [
        "",
        "{not json",
        "[1, 2]",
        '{"error": 42}',
        '{"error": ""}',
        '{"unexpected": "shape"}',
        "[" * 100_000,
        '{"error": 1' + "0" * 5000 + "}",
    ],
    ids=repr,
)
async def test_odd_error_bodies_still_give_the_right_class(body: str) -> None:
    """An error body that is empty, not JSON (nested too deeply, a number out of range) or not the
    usual shape still gives the status class."""
    raised = await _raised(MockAPI(httpx.Response(400, text=body)))
    assert type(raised) is BadRequestError
    assert raised.status_code == 400
    assert raised.message


@pytest.mark.anyio
async def test_request_id_is_none_without_the_header() -> None:
    """Without a request id header the error's request_id is None and str() says nothing of it."""
    raised = await _raised(MockAPI(error(401, {"error": "Invalid API key"})))
    assert isinstance(raised, AuthenticationError)
    assert raised.request_id is None
    assert str(raised) == "401: Invalid API key"


@pytest.mark.anyio
async def test_status_error_repr_is_informative() -> None:
    """repr() of a status error shows its class, status, message and request id."""
    raised = await _raised(MockAPI(error(404, {"error": "nope"}, **{"x-request-id": "abc"})))
    assert repr(raised) == "NotFoundError(status_code=404, message='nope', request_id='abc')"


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("exception", "cls"),
    [
        (httpx.ConnectError("connection refused"), APIConnectionError),
        (httpx.RemoteProtocolError("peer closed connection"), APIConnectionError),
        (httpx.ReadError("connection reset"), APIConnectionError),
        (ConnectionResetError("reset by peer"), APIConnectionError),
        (httpx.ConnectTimeout("connect timed out"), APITimeoutError),
        (httpx.ReadTimeout("read timed out"), APITimeoutError),
        (httpx.PoolTimeout("pool timed out"), APITimeoutError),
    ],
)
async def test_transport_failures_become_connection_errors(
    exception: Exception, cls: type[APIConnectionError]
) -> None:
    """Raw transport exceptions never escape: they become APIConnectionError/APITimeoutError."""
    raised = await _raised(MockAPI(exception))
    assert type(raised) is cls
    assert raised.__cause__ is exception
    assert isinstance(raised, APIConnectionError)
    assert raised.request is not None


def test_exception_tree() -> None:
    """The hierarchy is the documented one: one root, ValueError for bad parameters."""
    assert issubclass(InvalidParameterError, ValueError)
    assert issubclass(APITimeoutError, APIConnectionError)
    for cls in (
        BadRequestError,
        AuthenticationError,
        PermissionDeniedError,
        NotFoundError,
        RateLimitError,
        InternalServerError,
    ):
        assert issubclass(cls, APIStatusError)
    for branch in (
        InvalidParameterError,
        APIConnectionError,
        APIStatusError,
        APIResponseValidationError,
    ):
        assert issubclass(branch, AudioScapeError)
    assert issubclass(AudioScapeError, Exception)


def test_invalid_parameter_error_names_the_parameter() -> None:
    """InvalidParameterError carries the parameter and says the rule."""
    raised = InvalidParameterError("limit", "must be between 1 and 100, got 0")
    assert raised.parameter == "limit"
    assert str(raised) == "invalid limit: must be between 1 and 100, got 0"


@pytest.mark.anyio
@pytest.mark.parametrize(
    "base_url",
    [
        "https://api.audioscape.ai",
        "https://api.audioscape.ai/v1",
        "https://api.audioscape.ai/developer/v1/search",
        "https://api.audioscape.ai/developer/v1/developer/v1",
    ],
)
@pytest.mark.parametrize("status", [404, 405])
async def test_a_base_url_not_in_the_apis_form_gets_a_hint(base_url: str, status: int) -> None:
    """A 404 or 405 from a base URL that does not end in /developer/v1 names the right form."""
    raised = await _raised(MockAPI(error(status, {"error": "Not Found"})), base_url=base_url)
    assert isinstance(raised, APIStatusError)
    assert raised.message == (
        f"Not Found; check base_url {base_url}: the API's base URL ends in /developer/v1, "
        "as https://api.audioscape.ai/developer/v1"
    )


@pytest.mark.anyio
@pytest.mark.parametrize(
    "base_url", ["https://api.audioscape.ai/developer/v1", "https://e/developer/v1/"]
)
async def test_a_404_from_a_base_url_in_the_apis_form_is_left_as_it_is(base_url: str) -> None:
    """No hint when the base URL already has the API's form: the 404 says what the server said."""
    raised = await _raised(MockAPI(error(404, {"error": "nope"})), base_url=base_url)
    assert isinstance(raised, NotFoundError)
    assert raised.message == "nope"
