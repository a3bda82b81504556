"""msgspec twins of the SDK's response models (the floor), for the decode and memory benchmarks."""

from __future__ import annotations

import msgspec


class Track(msgspec.Struct):
    asset_id: str
    name: str
    artist: str
    album: str
    duration: float
    genre: str
    bpm: float
    score: float


class ArtistSummary(msgspec.Struct):
    name: str
    track_count: int


class AlbumSummary(msgspec.Struct):
    name: str
    artist: str
    track_count: int


class SearchMeta(msgspec.Struct):
    total: int
    limit: int
    offset: int
    search_method: str
    matched_artist: str | None


class SearchResponse(msgspec.Struct):
    tracks: tuple[Track, ...]
    artists: tuple[ArtistSummary, ...]
    albums: tuple[AlbumSummary, ...]
    meta: SearchMeta
    request_id: str | None = None
