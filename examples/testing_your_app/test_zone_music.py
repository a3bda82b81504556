"""How to test your own app against the emulator with the pytest plugin.

The fixtures come with `audioscape-async[emulator]`; run this with
`pytest examples/testing_your_app`.
"""

from __future__ import annotations

import pytest

from audioscape_async import AsyncClient, RateLimitError
from audioscape_async.emulator import EmulatorServer, Faults
from audioscape_async.pytest_plugin import RetrySleeps


async def pick_track(client: AsyncClient, mood: str) -> str | None:
    """The app's code under test: the asset id to play, or None to keep the music."""
    try:
        page = await client.search(mood, limit=1)
    except RateLimitError:
        return None
    return page.tracks[0].asset_id if page.tracks else None


@pytest.mark.anyio
async def test_picks_a_track(audioscape_client: AsyncClient) -> None:
    """A mood query finds a track to play."""
    assert await pick_track(audioscape_client, "dark cinematic boss tension")


@pytest.mark.anyio
async def test_a_single_429_is_retried(audioscape_client, audioscape_emulator) -> None:  # type: ignore[no-untyped-def]
    """One 429 is retried by the SDK; the app never sees it."""
    audioscape_emulator.emulator.force_fault("429")
    assert await pick_track(audioscape_client, "chill lo-fi beats")
    assert len(audioscape_emulator.emulator.requests) == 2


@pytest.mark.anyio
@pytest.mark.audioscape_faults({"429": 1.0})
async def test_keeps_the_music_when_rate_limited(audioscape_client: AsyncClient) -> None:
    """When every request is rate limited, the app keeps its current music."""
    assert await pick_track(audioscape_client, "chill lo-fi beats") is None


async def boss_music(client: AsyncClient) -> str | None:
    """More of the app: the boss arena asks for well-liked cinematic tracks."""
    page = await client.search(
        "dark cinematic boss tension",
        limit=1,
        filters={"genres": ["cinematic"], "min_likes": 100},
    )
    return page.tracks[0].asset_id if page.tracks else None


@pytest.mark.anyio
async def test_sends_the_boss_arena_query(audioscape_env: EmulatorServer) -> None:
    """What the app sent, read back from the emulator's log: query, filters, headers."""
    async with AsyncClient(default_headers={"x-game-zone": "boss-arena"}) as client:
        await boss_music(client)
    (sent,) = audioscape_env.emulator.requests
    assert sent.query == "dark cinematic boss tension"
    assert sent.limit == 1
    assert sent.filters == {"genres": ["cinematic"], "min_likes": 100}
    assert sent.headers["x-game-zone"] == "boss-arena"
    assert "x-api-key" not in sent.headers  # the key never reaches the log


@pytest.mark.anyio
async def test_waits_as_long_as_the_api_says(
    audioscape_client: AsyncClient,
    audioscape_emulator: EmulatorServer,
    audioscape_retries: RetrySleeps,
) -> None:
    """A 429 asking for two minutes is honoured as two minutes, in milliseconds of real time."""
    audioscape_emulator.emulator.set_faults(Faults(retry_after=120))
    audioscape_emulator.emulator.force_fault("429")
    assert await pick_track(audioscape_client, "chill lo-fi beats")
    assert audioscape_retries.sleeps == [120.0]


def test_sync_client(audioscape_sync_client) -> None:  # type: ignore[no-untyped-def]
    """The blocking client works against the same emulator."""
    page = audioscape_sync_client.search("upbeat summer vibes", limit=3)
    assert len(page.tracks) == 3


def test_env(audioscape_env) -> None:  # type: ignore[no-untyped-def]
    """Code that builds its own client from the environment finds the emulator."""
    from audioscape_async import Client

    with Client() as client:
        assert client.search("chill lo-fi beats", limit=1).tracks


@pytest.fixture
def anyio_backend() -> str:
    """Run the async tests on asyncio."""
    return "asyncio"
