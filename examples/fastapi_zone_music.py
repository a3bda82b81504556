"""The zone-music backend of `game_zone_music.py`, in FastAPI.

The app's lifespan opens one `AsyncClient` (with a `SearchCache`) and closes it
on shutdown; a dependency, `get_client`, hands that one client to every
endpoint that asks for it, so no request opens a connection pool of its own.
A test can swap it for another client with `app.dependency_overrides`.

Run it against the emulator:

    audioscape serve &                       # prints the export line to paste
    export AUDIOSCAPE_BASE_URL=http://127.0.0.1:8080/developer/v1
    export AUDIOSCAPE_API_KEY=demo-key-audioscape-emulator
    uvicorn examples.fastapi_zone_music:app --port 8000
    curl localhost:8000/zones/boss-arena/music
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Request

from audioscape_async import AsyncClient, AudioScapeError, SearchCache

#: What each zone of the game should sound like.
ZONE_MOODS = {
    "boss-arena": "dark cinematic boss tension",
    "beach": "upbeat summer vibes",
    "library": "chill lo-fi beats",
}

#: The longest a player waits for music, in seconds, retries included.
PLAYER_DEADLINE = 1.0


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    # The key and base URL come from AUDIOSCAPE_API_KEY and AUDIOSCAPE_BASE_URL.
    async with AsyncClient(max_retries=2, timeout=5.0, cache=SearchCache(ttl=300)) as client:
        app.state.audioscape = client
        yield


def get_client(request: Request) -> AsyncClient:
    """The app's one shared client (opened by the lifespan)."""
    client: AsyncClient = request.app.state.audioscape
    return client


Client = Annotated[AsyncClient, Depends(get_client)]

app = FastAPI(title="Zone music", lifespan=lifespan)


@app.get("/zones/{zone}/music")
async def zone_music(zone: str, client: Client) -> dict[str, str | None]:
    """The track to play in `zone`: its Roblox sound id, name, artist and genre."""
    query = ZONE_MOODS.get(zone)
    if query is None:
        raise HTTPException(status_code=404, detail=f"unknown zone {zone!r}")
    try:
        page = await client.search(query, limit=1, deadline=PLAYER_DEADLINE)
    except AudioScapeError as error:
        # No music this time: the game keeps what it plays.
        raise HTTPException(status_code=503, detail=str(error)) from None
    if not page.tracks:
        raise HTTPException(status_code=404, detail="no tracks")
    track = page.tracks[0]
    return {
        "zone": zone,
        "sound_id": f"rbxassetid://{track.asset_id}",
        "name": track.name,
        "artist": track.artist,
        "genre": track.genre,
        "cache": page.cache_status,  # "miss", "hit" or "coalesced"
    }
