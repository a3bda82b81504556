"""Errors that travel: every exception pickles whole, and without the API key."""

from __future__ import annotations

import pickle
from concurrent.futures import ProcessPoolExecutor

import httpx
import pytest

import audioscape_async
from audioscape_async import (
    APIConnectionError,
    APIStatusError,
    AsyncClient,
    AudioScapeError,
    AuthenticationError,
    Client,
    RateLimitError,
)
from tests.helpers import API_KEY, MockAPI, error, open_client

#: Every exception class the package exports.
ERROR_CLASSES = sorted(
    (
        value
        for value in vars(audioscape_async).values()
        if isinstance(value, type) and issubclass(value, AudioScapeError)
    ),
    key=lambda cls: cls.__name__,
)


def _fields(exc: BaseException) -> dict[str, object]:
    return {k: v for k, v in vars(exc).items() if k not in ("request", "response")}


@pytest.mark.anyio
@pytest.mark.parametrize("status", [400, 401, 403, 404, 429, 500, 503, 302, 418])
async def test_a_status_error_from_a_real_call_pickles_without_the_key(status: int) -> None:
    """The error of a real exchange unpickles to its class and fields, with no key in the bytes."""
    headers = {"retry-after": "7", "x-request-id": "req_1"}
    api = MockAPI(error(status, {"error": "nope"}, **headers))
    async with open_client(api, max_retries=0) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.search("calm piano")
    raised = caught.value
    assert raised.response is not None
    assert API_KEY in str(raised.response.request.headers)  # it is there before pickling
    data = pickle.dumps(raised)
    assert API_KEY.encode() not in data
    back = pickle.loads(data)
    assert type(back) is type(raised)
    assert _fields(back) == _fields(raised)
    assert str(back) == str(raised)
    assert back.response is None
    if status in (429, 503):
        assert back.retry_after == 7


@pytest.mark.parametrize("cls", ERROR_CLASSES, ids=lambda cls: cls.__name__)
def test_every_exported_error_class_pickles(cls: type[AudioScapeError]) -> None:
    """Each exported class, built the way the SDK builds it, survives a pickle round trip."""
    request = httpx.Request("POST", "https://x/search", headers={"x-api-key": API_KEY})
    if issubclass(cls, APIStatusError):
        made: AudioScapeError = cls("msg", status_code=429, body={"a": 1}, request_id="r")
    elif cls.__name__ == "InvalidParameterError":
        made = cls("limit", "must be 1..100")  # type: ignore[call-arg]
    elif cls.__name__ == "CrawlFileError":
        made = cls("/data/out.jsonl", "No space left on device")  # type: ignore[call-arg]
    elif cls.__name__ == "PaginationError":
        made = cls("the server ignores offset", reason="offset_ignored", offset=100)  # type: ignore[call-arg]
    elif issubclass(cls, APIConnectionError):
        made = cls("down", request=request)
    else:
        made = cls("something")
    data = pickle.dumps(made)
    assert API_KEY.encode() not in data
    back = pickle.loads(data)
    assert type(back) is cls
    assert str(back) == str(made)
    assert _fields(back) == _fields(made)


def _worker_search(base_url: str) -> None:
    """Run in a worker process: one search that fails with a 401."""
    api = MockAPI(error(401, {"error": "Invalid API key"}))
    with Client(API_KEY, http_client=httpx.AsyncClient(transport=api.transport())) as client:
        client.search("calm piano")


def _worker_raise(status: int) -> None:
    """Run in a worker process: raise the SDK's error for `status`."""
    from audioscape_async._exceptions import status_error_class

    raise status_error_class(status)("from the worker", status_code=status, retry_after=2.0)


def test_a_worker_process_raises_each_error_back_to_its_parent() -> None:
    """A `ProcessPoolExecutor` hands a 401 (and every status class) back as itself."""
    with ProcessPoolExecutor(max_workers=1) as pool:
        with pytest.raises(AuthenticationError, match="Invalid API key"):
            pool.submit(_worker_search, "unused").result()
        for status in (400, 401, 403, 404, 429, 500):
            with pytest.raises(APIStatusError) as caught:
                pool.submit(_worker_raise, status).result()
            assert caught.value.status_code == status
            assert caught.value.retry_after == 2.0
        with pytest.raises(RateLimitError):
            pool.submit(_worker_raise, 429).result()


def test_clients_refuse_to_pickle_with_a_clear_error() -> None:
    """A client holds a pool and a key: pickling one says so instead of leaking either."""
    with pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(AsyncClient(API_KEY))
    with Client(API_KEY) as client, pytest.raises(TypeError, match="cannot be pickled"):
        pickle.dumps(client)
