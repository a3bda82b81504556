"""A game backend that picks background music when a player enters a zone.

One `AsyncClient` is opened in the app's lifespan and shared by every request
(it holds a connection pool and is safe to use from many tasks at once); it is
closed on shutdown. Run it against the emulator:

    audioscape serve &                       # prints the URL and the demo key
    export AUDIOSCAPE_BASE_URL=http://127.0.0.1:8080/developer/v1
    export AUDIOSCAPE_API_KEY=demo-key-audioscape-emulator
    uvicorn examples.game_zone_music:app --port 8000
    curl localhost:8000/zones/boss-arena/music
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from audioscape_async import AsyncClient, AudioScapeError, SearchFilters

#: What each zone of the game should sound like.
ZONE_MOODS = {
    "boss-arena": "dark cinematic boss tension",
    "beach": "upbeat summer vibes",
    "library": "chill lo-fi beats",
}


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    async with AsyncClient(max_retries=2, timeout=5.0) as client:
        app.state.audioscape = client
        yield


async def zone_music(request: Request) -> JSONResponse:
    zone = request.path_params["zone"]
    query = ZONE_MOODS.get(zone)
    if query is None:
        return JSONResponse({"error": f"unknown zone {zone!r}"}, status_code=404)
    client: AsyncClient = request.app.state.audioscape
    try:
        page = await client.search(query, limit=1, filters=SearchFilters(min_likes=10))
    except AudioScapeError as error:
        # The game keeps its current music rather than failing the request.
        return JSONResponse({"error": str(error)}, status_code=503)
    if not page.tracks:
        return JSONResponse({"error": "no tracks"}, status_code=404)
    track = page.tracks[0]
    return JSONResponse(
        {
            "zone": zone,
            "sound_id": f"rbxassetid://{track.asset_id}",
            "name": track.name,
            "artist": track.artist,
            "genre": track.genre,
        }
    )


app = Starlette(routes=[Route("/zones/{zone}/music", zone_music)], lifespan=lifespan)
