"""A game backend that picks background music when a player enters a zone.

One `AsyncClient` is opened in the app's lifespan and shared by every request
(it holds a connection pool and is safe to use from many tasks at once); it is
closed on shutdown. Three zones mean three searches, so thousands of players
need only a handful of API calls:

- the `SearchCache` answers repeated zone entries from memory, and identical
  searches in flight share one request;
- when the API fails (503s, 429s, an outage) a page up to an hour old is
  served instead (`stale_if_error`), so the music keeps playing;
- the `CircuitBreaker` stops calling an API that keeps failing, so players
  are answered at once from the stale page instead of waiting on retries;
- `deadline=` bounds what one player waits, retries included.

A game run by several worker processes or hosts behind one API key shares the
key's rate limit and the cache through Redis: set `AUDIOSCAPE_REDIS_URL`.
Run it against the emulator:

    audioscape serve --rate 10/20 &          # prints the URL and the demo key
    export AUDIOSCAPE_BASE_URL=http://127.0.0.1:8080/developer/v1
    export AUDIOSCAPE_API_KEY=demo-key-audioscape-emulator
    uvicorn examples.game_zone_music:app --port 8000
    curl localhost:8000/zones/boss-arena/music
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from audioscape_async import (
    AsyncClient,
    AudioScapeError,
    CircuitBreaker,
    RateLimit,
    RedisBackend,
    SearchCache,
    SearchFilters,
)

#: What each zone of the game should sound like.
ZONE_MOODS = {
    "boss-arena": "dark cinematic boss tension",
    "beach": "upbeat summer vibes",
    "library": "chill lo-fi beats",
}

#: The longest a player waits for music, in seconds, retries included.
PLAYER_DEADLINE = 1.0


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    redis_url = os.environ.get("AUDIOSCAPE_REDIS_URL")
    # One rate limit and one cache for every worker; in process without Redis.
    fleet = RedisBackend(redis_url, fallback=True) if redis_url else None
    async with AsyncClient(
        max_retries=2,
        timeout=5.0,
        cache=SearchCache(ttl=300, stale_if_error=3_600, backend=fleet),
        circuit_breaker=CircuitBreaker(failure_threshold=5, recovery_time=30),
        rate_limit=RateLimit(requests_per_second=10, burst=20, backend=fleet),
    ) as client:
        app.state.audioscape = client
        yield
    if fleet is not None:
        await fleet.aclose()


async def zone_music(request: Request) -> JSONResponse:
    zone = request.path_params["zone"]
    query = ZONE_MOODS.get(zone)
    if query is None:
        return JSONResponse({"error": f"unknown zone {zone!r}"}, status_code=404)
    client: AsyncClient = request.app.state.audioscape
    try:
        page = await client.search(
            query, limit=1, filters=SearchFilters(min_likes=10), deadline=PLAYER_DEADLINE
        )
    except AudioScapeError as error:
        # No music, fresh or stale: the game keeps its current music.
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
            "cache": page.cache_status,  # "miss", "hit", "coalesced" or "stale"
        }
    )


app = Starlette(routes=[Route("/zones/{zone}/music", zone_music)], lifespan=lifespan)
