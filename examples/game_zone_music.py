"""A game backend that picks background music when a player enters a zone.

One `AsyncClient` is opened in the app's lifespan and shared by every request
(it holds a connection pool and is safe to use from many tasks at once); it is
closed on shutdown. Three zones mean three searches, so thousands of players
need only a handful of API calls, and no player waits for one:

- the lifespan loads every zone's music before the first player arrives
  (`warm`);
- the `SearchCache` answers repeated zone entries from memory, and identical
  searches in flight share one request;
- when a zone's music is older than `CACHE_TTL`, players still get it at once
  while one background refresh fetches the next (`stale_while_revalidate`);
- when the API fails (503s, 429s, an outage) a page up to an hour old is
  served instead (`stale_if_error`), so the music keeps playing;
- the `CircuitBreaker` stops calling an API that keeps failing, so players
  are answered at once from the stale page instead of waiting on retries;
- `deadline=` bounds what one player waits, retries included.

A game run by several worker processes or hosts behind one API key shares the
key's rate limit and the cache through Redis: set `AUDIOSCAPE_REDIS_URL`. Then
each zone's page is fetched, warmed and refreshed once for the whole fleet.
Run it against the emulator:

    audioscape serve --rate 10/20 &          # prints the URL and the demo key
    export AUDIOSCAPE_BASE_URL=http://127.0.0.1:8080/developer/v1
    export AUDIOSCAPE_API_KEY=demo-key-audioscape-emulator
    uvicorn examples.game_zone_music:app --port 8000
    curl localhost:8000/zones/boss-arena/music
"""

from __future__ import annotations

import contextlib
import logging
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

#: What every zone's track must have.
ZONE_FILTERS = SearchFilters(min_likes=10)

#: The longest a player waits for music, in seconds, retries included.
PLAYER_DEADLINE = 1.0

#: Seconds a zone's music is fresh (`GAME_CACHE_TTL` to change it); for ten minutes
#: after, players get it at once while it is refreshed in the background.
CACHE_TTL = float(os.environ.get("GAME_CACHE_TTL", "300"))

logger = logging.getLogger(__name__)


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    redis_url = os.environ.get("AUDIOSCAPE_REDIS_URL")
    # One rate limit and one cache for every worker; in process without Redis.
    fleet = RedisBackend(redis_url, fallback=True) if redis_url else None
    cache = SearchCache(
        ttl=CACHE_TTL, stale_while_revalidate=600, stale_if_error=3_600, backend=fleet
    )
    async with AsyncClient(
        max_retries=2,
        timeout=5.0,
        cache=cache,
        circuit_breaker=CircuitBreaker(failure_threshold=5, recovery_time=30),
        rate_limit=RateLimit(requests_per_second=10, burst=20, backend=fleet),
    ) as client:
        # Every zone's music before the first player: what a player's search would ask.
        zones = [{"query": q, "limit": 1, "filters": ZONE_FILTERS} for q in ZONE_MOODS.values()]
        report = await client.warm(zones, deadline=10)
        for item in report.failed:  # the players' first searches will try again
            logger.warning("no music loaded for %r: %s", item.query, item.error)
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
        page = await client.search(query, limit=1, filters=ZONE_FILTERS, deadline=PLAYER_DEADLINE)
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
