"""How to test your own app against the emulator with the pytest plugin.

The fixtures come with `audioscape-async[emulator]`; run this with
`pytest examples/testing_your_app`.
"""

from __future__ import annotations

import pytest

from audioscape_async import AsyncClient, RateLimitError


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
