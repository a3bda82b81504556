"""`AsyncClient`: configuration, the request it sends, its life cycle, redirects."""

from __future__ import annotations

import httpx
import orjson
import pytest

from audioscape_async import (
    DEFAULT_BASE_URL,
    APIStatusError,
    AsyncClient,
    AudioScapeError,
    InsecureURLWarning,
    InvalidParameterError,
    RetryPolicy,
    SearchResponse,
)
from tests.helpers import API_KEY, MockAPI, error, ok, open_client, page_json

#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


# -- configuration -------------------------------------------------------------


def test_no_api_key_anywhere_names_the_variable() -> None:
    """Without an argument or AUDIOSCAPE_API_KEY, construction fails naming the variable."""
    with pytest.raises(AudioScapeError, match="AUDIOSCAPE_API_KEY"):
        AsyncClient()


def test_empty_api_key_is_no_api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    """An empty AUDIOSCAPE_API_KEY counts as no key at all."""
    monkeypatch.setenv("AUDIOSCAPE_API_KEY", "")
    with pytest.raises(AudioScapeError, match="AUDIOSCAPE_API_KEY"):
        AsyncClient()


@pytest.mark.anyio
async def test_api_key_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDIOSCAPE_API_KEY is sent as x-api-key when no api_key is passed."""
    monkeypatch.setenv("AUDIOSCAPE_API_KEY", API_KEY)
    api = MockAPI()
    async with open_client(api, api_key=None) as client:
        await client.search("calm piano")
    assert api.requests[0].headers["x-api-key"] == API_KEY


@pytest.mark.anyio
async def test_api_key_argument_wins_over_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An explicit api_key is used even when AUDIOSCAPE_API_KEY is set."""
    monkeypatch.setenv("AUDIOSCAPE_API_KEY", "from-the-environment")
    api = MockAPI()
    async with open_client(api, api_key=API_KEY) as client:
        await client.search("calm piano")
    assert api.requests[0].headers["x-api-key"] == API_KEY


def test_default_base_url_is_the_public_api() -> None:
    """Without base_url or AUDIOSCAPE_BASE_URL the client targets the documented API."""
    client = AsyncClient(API_KEY)
    assert str(client.base_url) == DEFAULT_BASE_URL == "https://api.audioscape.ai/developer/v1"


@pytest.mark.anyio
async def test_base_url_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """AUDIOSCAPE_BASE_URL sets where requests go when no base_url is passed."""
    monkeypatch.setenv("AUDIOSCAPE_BASE_URL", "https://staging.example.com/api/v1")
    api = MockAPI()
    async with open_client(api) as client:
        await client.search("calm piano")
    assert str(api.requests[0].url) == "https://staging.example.com/api/v1/search"


def test_base_url_argument_wins_over_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """An explicit base_url is used even when AUDIOSCAPE_BASE_URL is set."""
    monkeypatch.setenv("AUDIOSCAPE_BASE_URL", "https://staging.example.com/api/v1")
    client = AsyncClient(API_KEY, base_url="https://other.example.com/v1/")
    assert str(client.base_url) == "https://other.example.com/v1/"


@pytest.mark.parametrize("base_url", ["not a url", "ftp://example.com", "/relative/path"])
def test_base_url_must_be_absolute_http(base_url: str) -> None:
    """A base_url that is not an absolute http(s) URL is an InvalidParameterError."""
    with pytest.raises(InvalidParameterError, match="base_url"):
        AsyncClient(API_KEY, base_url=base_url)


def test_plain_http_off_this_machine_warns() -> None:
    """A plain-http base_url to another host holds a warning that the key travels in clear."""
    insecure = AsyncClient(API_KEY, base_url="http://api.example.com/v1")._pipeline.config.insecure
    assert insecure is not None
    with pytest.warns(InsecureURLWarning, match="unencrypted"):
        insecure.warn()


def test_plain_http_to_localhost_does_not_warn() -> None:
    """A plain-http base_url to a loopback host (an emulator) is accepted silently."""
    AsyncClient(API_KEY, base_url="http://127.0.0.1:8080/v1")
    AsyncClient(API_KEY, base_url="http://localhost:8080/v1")


def test_max_retries_is_shorthand_for_the_policy() -> None:
    """max_retries=N gives a policy with N retries and the other defaults."""
    client = AsyncClient(API_KEY, max_retries=7)
    assert client.retry_policy == RetryPolicy(max_retries=7)


def test_retry_policy_is_kept() -> None:
    """A RetryPolicy passed as retry= is the one in force."""
    policy = RetryPolicy(max_retries=1, initial_backoff=0.1, max_backoff=1.0)
    assert AsyncClient(API_KEY, retry=policy).retry_policy is policy


@pytest.mark.parametrize("timeout", [0, -1, True, "30"])
def test_bad_timeout_is_rejected(timeout: object) -> None:
    """A timeout that is not a positive number, an httpx.Timeout or None is rejected."""
    with pytest.raises(InvalidParameterError, match="timeout"):
        AsyncClient(API_KEY, timeout=timeout)  # type: ignore[arg-type]


def test_default_headers_may_not_carry_the_key() -> None:
    """default_headers cannot smuggle an x-api-key past the api_key argument."""
    with pytest.raises(InvalidParameterError, match="default_headers"):
        AsyncClient(API_KEY, default_headers={"X-Api-Key": "other"})


# -- the request ---------------------------------------------------------------


@pytest.mark.anyio
async def test_search_posts_the_documented_request() -> None:
    """search() POSTs JSON {query, limit, offset} to /search with the key and JSON headers."""
    api = MockAPI()
    async with open_client(api) as client:
        page = await client.search("dark cinematic boss tension", limit=1, offset=5)
    assert isinstance(page, SearchResponse)
    (request,) = api.requests
    assert request.method == "POST"
    assert str(request.url) == "https://api.audioscape.ai/developer/v1/search"
    assert request.headers["x-api-key"] == API_KEY
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("audioscape-async/")
    assert orjson.loads(request.content) == {
        "query": "dark cinematic boss tension",
        "limit": 1,
        "offset": 5,
    }


@pytest.mark.anyio
async def test_search_defaults_are_the_documented_ones() -> None:
    """Without limit or offset, search() asks for limit 20 at offset 0 and sends no filters."""
    api = MockAPI()
    async with open_client(api) as client:
        await client.search("chill lo-fi beats")
    assert api.bodies == [{"query": "chill lo-fi beats", "limit": 20, "offset": 0}]


@pytest.mark.anyio
async def test_default_headers_are_sent() -> None:
    """default_headers go out on every request next to the SDK's own headers."""
    api = MockAPI()
    async with open_client(api, default_headers={"X-Game": "zone-7"}) as client:
        await client.search("calm piano")
    assert api.requests[0].headers["x-game"] == "zone-7"
    assert api.requests[0].headers["x-api-key"] == API_KEY


@pytest.mark.anyio
async def test_search_returns_the_typed_page() -> None:
    """The answer becomes a SearchResponse with typed tracks, summaries and meta."""
    body = page_json(["42", "43"], total=57, limit=2, matched_artist="Some Artist")
    api = MockAPI(ok(body))
    async with open_client(api) as client:
        page = await client.search("some artist", limit=2)
    assert [track.asset_id for track in page.tracks] == ["42", "43"]
    assert page.tracks[0].bpm == 120.0
    assert page.artists[0].track_count == 2
    assert page.albums[0].artist == "Some Artist"
    assert (page.meta.total, page.meta.limit, page.meta.offset) == (57, 2, 0)
    assert page.meta.search_method == "semantic"
    assert page.meta.matched_artist == "Some Artist"


@pytest.mark.anyio
async def test_client_works_without_entering_it() -> None:
    """A client that was never entered with `async with` still searches, and closes."""
    api = MockAPI()
    async with httpx.AsyncClient(transport=api.transport()) as http:
        client = AsyncClient(API_KEY, http_client=http)
        await client.search("calm piano")
        await client.aclose()
        assert client.is_closed
    assert api.calls == 1


# -- life cycle ----------------------------------------------------------------


@pytest.mark.anyio
async def test_closed_client_refuses_search() -> None:
    """After leaving `async with`, search() raises AudioScapeError and sends nothing."""
    api = MockAPI()
    async with open_client(api) as client:
        pass
    assert client.is_closed
    with pytest.raises(AudioScapeError, match="closed"):
        await client.search("calm piano")
    assert api.calls == 0


@pytest.mark.anyio
async def test_closed_client_refuses_iteration() -> None:
    """After aclose(), iterating a search raises AudioScapeError and sends nothing."""
    api = MockAPI()
    async with open_client(api) as client:
        await client.aclose()
        with pytest.raises(AudioScapeError, match="closed"):
            async for _ in client.iter_tracks("calm piano"):
                pass  # pragma: no cover
    assert api.calls == 0


@pytest.mark.anyio
async def test_closed_client_cannot_be_reopened() -> None:
    """Entering a closed client again raises AudioScapeError."""
    async with open_client(MockAPI()) as client:
        pass
    with pytest.raises(AudioScapeError, match="closed"):
        await client.__aenter__()


@pytest.mark.anyio
async def test_aclose_is_idempotent() -> None:
    """Closing a client twice is harmless."""
    async with open_client(MockAPI()) as client:
        await client.aclose()
    await client.aclose()
    assert client.is_closed


@pytest.mark.anyio
async def test_own_http_client_is_left_open() -> None:
    """Closing the SDK client leaves a caller's http_client open for the caller to close."""
    api = MockAPI()
    async with httpx.AsyncClient(transport=api.transport()) as http:
        async with AsyncClient(API_KEY, http_client=http):
            pass
        assert not http.is_closed


def test_repr_shows_configuration_and_state() -> None:
    """repr() names the base URL, the retries and the state."""
    text = repr(AsyncClient(API_KEY, max_retries=2))
    assert "https://api.audioscape.ai/developer/v1" in text
    assert "max_retries=2" in text
    assert "unopened" in text


# -- redirects -----------------------------------------------------------------


@pytest.mark.anyio
@pytest.mark.parametrize("status", [301, 302, 307, 308])
async def test_redirect_is_not_followed(status: int) -> None:
    """A redirect raises an APIStatusError naming it; the target never gets a request."""
    target = "https://evil.example.net/collect"
    api = MockAPI(httpx.Response(status, headers={"location": target}))
    async with open_client(api) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.search("calm piano")
    assert api.calls == 1
    assert all(request.url.host == "api.audioscape.ai" for request in api.requests)
    error_ = caught.value
    assert error_.status_code == status
    assert target in error_.message
    assert "redirect" in error_.message
    assert "base_url" in error_.message


@pytest.mark.anyio
async def test_redirect_is_not_followed_even_if_the_http_client_follows() -> None:
    """An http_client built with follow_redirects=True still does not follow the API's redirect."""
    api = MockAPI(
        httpx.Response(307, headers={"location": "https://evil.example.net/"}),
        ok(),
    )
    async with (
        httpx.AsyncClient(transport=api.transport(), follow_redirects=True) as http,
        AsyncClient(API_KEY, http_client=http) as client,
    ):
        with pytest.raises(APIStatusError):
            await client.search("calm piano")
    assert [request.url.host for request in api.requests] == ["api.audioscape.ai"]


@pytest.mark.anyio
async def test_unmapped_error_status_is_an_api_status_error() -> None:
    """A status without its own class (418) is a plain APIStatusError with the body's error."""
    api = MockAPI(error(418, {"error": "I'm a teapot"}))
    async with open_client(api) as client:
        with pytest.raises(APIStatusError) as caught:
            await client.search("calm piano")
    assert type(caught.value) is APIStatusError
    assert caught.value.status_code == 418
    assert caught.value.message == "I'm a teapot"
