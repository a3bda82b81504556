"""pydantic v2 twins of the SDK's response models, for the decode and memory benchmarks.

Same fields and types; ``ConfigDict(strict=True)`` so types are checked the way
the SDK checks them (see `decode`); unknown keys are ignored (the default).
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True)


class Track(_Strict):
    asset_id: str
    name: str
    artist: str
    album: str
    duration: float
    genre: str
    bpm: float
    score: float


class ArtistSummary(_Strict):
    name: str
    track_count: int


class AlbumSummary(_Strict):
    name: str
    artist: str
    track_count: int


class SearchMeta(_Strict):
    total: int
    limit: int
    offset: int
    search_method: str
    matched_artist: str | None


class SearchResponse(_Strict):
    tracks: tuple[Track, ...]
    artists: tuple[ArtistSummary, ...]
    albums: tuple[AlbumSummary, ...]
    meta: SearchMeta
    request_id: str | None = None
