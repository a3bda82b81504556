"""The programs in examples/ run against the emulator."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from audioscape_async.emulator import EmulatorServer

EXAMPLES = Path(__file__).parents[2] / "examples"


def _env(server: EmulatorServer) -> dict[str, str]:
    return {
        **os.environ,
        "AUDIOSCAPE_BASE_URL": server.url,
        "AUDIOSCAPE_API_KEY": server.api_key,
        "PYTHONPATH": str(EXAMPLES.parent),
    }


def test_top_tracks_script(audioscape_server: EmulatorServer) -> None:
    """The sync script prints five ranked tracks and the meta line."""
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "top_tracks.py"), "upbeat summer vibes"],
        capture_output=True,
        text=True,
        env=_env(audioscape_server),
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split(".")[0] for line in lines[:5]] == ["1", "2", "3", "4", "5"]
    assert "tracks matched (semantic search)" in lines[-1]


@pytest.mark.anyio
async def test_game_zone_music_app(
    audioscape_env: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The web app's lifespan opens one client and loads every zone; the boss arena gets a
    dark cinematic track from the cache, and the music plays on while the API fails."""
    import httpx

    monkeypatch.syspath_prepend(str(EXAMPLES.parent))
    from examples.game_zone_music import app

    transport = httpx.ASGITransport(app=app)
    async with (
        app.router.lifespan_context(app),
        httpx.AsyncClient(transport=transport, base_url="http://game") as http,
    ):
        assert len(audioscape_env.emulator.requests) == 3  # the warm-up: one per zone
        boss = await http.get("/zones/boss-arena/music")
        assert boss.status_code == 200
        assert boss.json()["sound_id"].startswith("rbxassetid://")
        assert boss.json()["genre"] in {"cinematic", "orchestral", "metal", "ambient"}
        assert boss.json()["cache"] == "hit"
        assert (await http.get("/zones/nowhere/music")).status_code == 404
        audioscape_env.emulator.set_faults({"500": 1.0})
        beach = await http.get("/zones/beach/music")
        assert (beach.status_code, beach.json()["cache"]) == (200, "hit")
        assert len(audioscape_env.emulator.requests) == 3
        client = app.state.audioscape
    assert client.is_closed


def test_plugin_example_suite(audioscape_server: EmulatorServer) -> None:
    """The example test suite for users passes with the plugin's fixtures, in its own pytest."""
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "testing_your_app"],
        capture_output=True,
        text=True,
        cwd=EXAMPLES,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "7 passed" in result.stdout


def test_fastapi_zone_music_app_under_uvicorn(
    audioscape_env: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The FastAPI example under a real uvicorn: its lifespan opens one client, a dependency
    hands it to each request (the second visit is a cache hit), and shutdown closes it."""
    import httpx

    from tests.serving.game_scenario import AppServer

    monkeypatch.syspath_prepend(str(EXAMPLES.parent))
    from examples.fastapi_zone_music import app

    with AppServer(app) as server, httpx.Client(base_url=server.url) as http:
        first = http.get("/zones/boss-arena/music")
        assert first.status_code == 200, first.text
        assert first.json()["sound_id"].startswith("rbxassetid://")
        assert first.json()["genre"] in {"cinematic", "orchestral", "metal", "ambient"}
        assert first.json()["cache"] == "miss"
        again = http.get("/zones/boss-arena/music")
        assert again.json() == {**first.json(), "cache": "hit"}
        assert http.get("/zones/nowhere/music").status_code == 404
        audioscape_env.emulator.set_faults({"500": 1.0})
        failed = http.get("/zones/beach/music")
        assert failed.status_code == 503
        assert "500" in failed.json()["detail"]
        client = app.state.audioscape
        assert not client.is_closed
    assert client.is_closed


@pytest.mark.anyio
async def test_fastapi_example_client_can_be_overridden(
    audioscape_env: EmulatorServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A test swaps the shared client for its own through `dependency_overrides`."""
    import httpx

    from audioscape_async import AsyncClient

    monkeypatch.syspath_prepend(str(EXAMPLES.parent))
    from examples.fastapi_zone_music import app, get_client

    async with AsyncClient(max_retries=0) as mine:
        app.dependency_overrides[get_client] = lambda: mine
        try:
            transport = httpx.ASGITransport(app=app)  # no lifespan: only the override serves
            async with httpx.AsyncClient(transport=transport, base_url="http://game") as http:
                response = await http.get("/zones/library/music")
        finally:
            app.dependency_overrides.clear()
    assert response.status_code == 200, response.text
    assert response.json()["cache"] is None  # this client has no cache
