"""Retry-After done fully: on 503 as on 429, as `retry-after-ms`, and a capped client pause."""

from __future__ import annotations

import pytest

from audioscape_async import InternalServerError, RateLimitError, RetryPolicy
from tests.helpers import MockAPI, error, ok, open_client, record_sleeps


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        ({"retry-after": "4"}, 4.0),
        ({"retry-after-ms": "1500"}, 1.5),
        ({"retry-after-ms": "250.5", "retry-after": "9"}, 0.2505),
        ({"retry-after-ms": "soon", "retry-after": "3"}, 3.0),
    ],
)
async def test_a_503_with_retry_after_is_waited_as_asked(
    monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], expected: float
) -> None:
    """A 503's Retry-After (or retry-after-ms, which wins) is the delay before the retry."""
    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(error(503, None, **headers), ok())
    async with open_client(api) as client:
        await client.search("calm piano")
    assert sleeps == [pytest.approx(expected)]


@pytest.mark.anyio
async def test_a_503_retry_after_pauses_the_whole_client(monkeypatch: pytest.MonkeyPatch) -> None:
    """Once a 503 said "come back in 5 s", the client's next call waits the rest of it."""
    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(error(503, None, **{"retry-after": "5"}), ok())
    async with open_client(api, max_retries=0) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.search("calm piano")
        assert caught.value.retry_after == 5
        await client.search("calm piano")
    assert len(sleeps) == 1
    assert 4.5 < sleeps[0] <= 5


@pytest.mark.anyio
async def test_eleven_days_of_retry_after_is_one_error_and_a_capped_pause(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 429 asking for 11 days raises once; the next call waits the cap, then tries again."""
    sleeps = record_sleeps(monkeypatch)
    eleven_days = str(11 * 86_400)
    api = MockAPI(error(429, None, **{"retry-after": eleven_days}), ok())
    policy = RetryPolicy(max_retry_after=20)
    async with open_client(api, retry=policy) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.search("calm piano")
        assert caught.value.retry_after == 11 * 86_400
        assert sleeps == []
        page = await client.search("calm piano")
    assert page.tracks
    assert len(sleeps) == 1
    assert 19 < sleeps[0] <= 20
    assert len(api.requests) == 2


@pytest.mark.anyio
async def test_a_503_past_the_limit_is_not_slept(monkeypatch: pytest.MonkeyPatch) -> None:
    """A 503 whose Retry-After is past `max_retry_after` is raised at once, like a 429."""
    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(error(503, None, **{"retry-after": "600"}), ok())
    async with open_client(api) as client:
        with pytest.raises(InternalServerError) as caught:
            await client.search("calm piano")
    assert caught.value.retry_after == 600
    assert sleeps == []
    assert "retry after 600 s" in str(caught.value)


@pytest.mark.anyio
async def test_a_500_retry_after_is_ignored(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only 429 and 503 carry Retry-After's meaning; a 500's header is not trusted."""
    sleeps = record_sleeps(monkeypatch)
    api = MockAPI(error(500, None, **{"retry-after": "30"}), ok())
    async with open_client(api) as client:
        await client.search("calm piano")
    assert len(sleeps) == 1
    assert sleeps[0] <= 0.5
