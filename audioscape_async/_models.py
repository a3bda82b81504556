"""The typed shapes of a search: what goes in (filters) and what comes back.

Response models are frozen, slotted attrs classes, one field per documented
JSON field, their sequences tuples: a page is a value, so a cache can hand the
same page to every caller and none of them can change it for another (setting a
field raises `attrs.exceptions.FrozenInstanceError`, an AttributeError). They
compare and hash by their JSON fields. Frozen costs decoding nothing, because
msgspec builds the instances without calling ``__init__`` (see `_decode`).

`to_dict` writes a model as the API's JSON object and `from_dict` reads one
back, with the same rules as the decoder (see `_convert`): unknown keys are
ignored, a bad field raises an `InvalidParameterError` that names it.

Request models are frozen and validate on construction, so a bad filter fails
where it is written, with an `InvalidParameterError` that names it.
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable, Mapping
from typing import Any, NoReturn, TypeVar

import attrs
import httpx

from . import _json
from ._exceptions import InvalidParameterError
from ._validation import (
    check_count,
    check_date,
    check_duration_bound,
    check_genres,
    check_limit,
    check_offset,
    check_query,
    reject_unknown_keys,
)

__all__ = [
    "AlbumSummary",
    "ArtistSummary",
    "DurationRange",
    "SearchFilters",
    "SearchMeta",
    "SearchResponse",
    "Track",
]

_M = TypeVar("_M")


def _from_dict(cls: type[_M], mapping: Mapping[str, Any]) -> _M:
    from ._convert import from_dict

    return from_dict(cls, mapping)


class _ReadOnlyHeaders(httpx.Headers):
    """The headers of an answer, read-only like the page that holds them.

    ``copy()`` gives a plain, mutable `httpx.Headers`.
    """

    def _refuse(self, *args: object, **kwargs: object) -> NoReturn:
        raise TypeError("the headers of a SearchResponse are read-only; copy() them to change them")

    __setitem__ = __delitem__ = update = _refuse

    @property
    def encoding(self) -> str:
        return httpx.Headers.encoding.fget(self)  # type: ignore[attr-defined, no-any-return]

    @encoding.setter
    def encoding(self, value: str) -> None:
        self._refuse()


def _read_only(headers: httpx.Headers | None) -> httpx.Headers | None:
    if headers is None or type(headers) is _ReadOnlyHeaders:
        return headers
    if not isinstance(headers, httpx.Headers):
        raise TypeError(f"headers must be httpx.Headers or None, got {type(headers).__name__}")
    return _ReadOnlyHeaders(headers)


@attrs.frozen
class Track:
    """One track of the catalog, as the search returns it.

    `asset_id` is the Roblox asset id (a string of digits): play it with
    ``"rbxassetid://" + track.asset_id``. `duration` is in seconds, `score` is
    the relevance of the track to the query (higher is better).
    """

    asset_id: str
    name: str
    artist: str
    album: str
    duration: float
    genre: str
    bpm: float
    score: float

    def to_dict(self) -> dict[str, str | float]:
        """The track as the API's JSON object."""
        return {
            "asset_id": self.asset_id,
            "name": self.name,
            "artist": self.artist,
            "album": self.album,
            "duration": self.duration,
            "genre": self.genre,
            "bpm": self.bpm,
            "score": self.score,
        }

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> Track:
        """The track of a mapping shaped like `to_dict`'s; unknown keys are ignored.

        A row of a file crawl reads as is (its provenance columns, ``query``
        and the rest, are left out). The rules are the decoder's: each field
        has its JSON type (an integer is a number, ``"120"`` is not); a bad
        or missing field raises `InvalidParameterError` naming it.

        >>> Track.from_dict(track.to_dict()) == track  # doctest: +SKIP
        True
        """
        return _from_dict(cls, mapping)


@attrs.frozen
class ArtistSummary:
    """An artist of the whole result set, with how many of its tracks matched."""

    name: str
    track_count: int

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> ArtistSummary:
        """The artist of a mapping shaped like the API's; see `Track.from_dict`."""
        return _from_dict(cls, mapping)


@attrs.frozen
class AlbumSummary:
    """An album of the whole result set, with how many of its tracks matched."""

    name: str
    artist: str
    track_count: int

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> AlbumSummary:
        """The album of a mapping shaped like the API's; see `Track.from_dict`."""
        return _from_dict(cls, mapping)


@attrs.frozen
class SearchMeta:
    """Paging and ranking facts about one answer.

    `total` counts every match (not just this page). `search_method` is
    ``"semantic"`` or, when the API fell back to keyword matching, ``"text"``.
    `matched_artist` names the artist a query was resolved to, if any.
    """

    total: int
    limit: int
    offset: int
    search_method: str
    matched_artist: str | None

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> SearchMeta:
        """The meta object of a mapping shaped like the API's; see `Track.from_dict`."""
        return _from_dict(cls, mapping)


def _count(items: tuple[object, ...], noun: str) -> str:
    return f"{len(items)} {noun}" if len(items) == 1 else f"{len(items)} {noun}s"


@attrs.frozen
class SearchResponse:
    """One page of search results.

    `artists` and `albums` group the whole result set. A page is frozen,
    its sequences are tuples and its `headers` are read-only: a page from the
    cache is the same object for every caller, and no caller can change it.
    `attrs.evolve(page, ...)` makes a changed copy.

    Its ``repr`` is one short line: how many tracks, artists and albums, and
    the meta (``repr(page.tracks)`` shows them all).

    The exchange that brought the page is told outside ``==`` and ``repr``:
    `request_id` (the server's id for it, if it sent one: quote it to
    support), `status_code`, the response `headers`, `elapsed` (seconds of the
    attempt that answered), `attempts` (1 unless it was retried) and
    `cache_status` (``"miss"``, ``"hit"``, ``"coalesced"`` or ``"stale"``;
    None without a cache).

    >>> page.tracks[0].asset_id  # doctest: +SKIP
    '1837070127'
    """

    tracks: tuple[Track, ...]
    artists: tuple[ArtistSummary, ...]
    albums: tuple[AlbumSummary, ...]
    meta: SearchMeta
    request_id: str | None = attrs.field(default=None, repr=False, eq=False)
    status_code: int | None = attrs.field(default=None, repr=False, eq=False)
    headers: httpx.Headers | None = attrs.field(
        default=None, repr=False, eq=False, converter=_read_only
    )
    elapsed: float | None = attrs.field(default=None, repr=False, eq=False)
    attempts: int = attrs.field(default=1, repr=False, eq=False)
    cache_status: str | None = attrs.field(default=None, repr=False, eq=False)

    def __repr__(self) -> str:
        return (
            f"SearchResponse(tracks=[{_count(self.tracks, 'track')}], "
            f"artists=[{_count(self.artists, 'artist')}], "
            f"albums=[{_count(self.albums, 'album')}], meta={self.meta!r})"
        )

    def to_dict(self) -> dict[str, object]:
        """The page as the API's JSON object (without the request id)."""
        meta = self.meta
        return {
            "tracks": [track.to_dict() for track in self.tracks],
            "artists": [{"name": a.name, "track_count": a.track_count} for a in self.artists],
            "albums": [
                {"name": a.name, "artist": a.artist, "track_count": a.track_count}
                for a in self.albums
            ],
            "meta": {
                "total": meta.total,
                "limit": meta.limit,
                "offset": meta.offset,
                "search_method": meta.search_method,
                "matched_artist": meta.matched_artist,
            },
        }

    @classmethod
    def from_dict(cls, mapping: Mapping[str, Any]) -> SearchResponse:
        """The page of a mapping shaped like `to_dict`'s (the API's JSON object).

        The rules are the decoder's (see `Track.from_dict`); the exchange's
        fields (`request_id`, `headers`, ...) are not read from the mapping and
        stay unset. A bad field raises `InvalidParameterError` naming its path,
        as in ``SearchResponse.tracks[0].bpm``.
        """
        return _from_dict(cls, mapping)


def _to_duration(value: object) -> DurationRange | None:
    if value is None or isinstance(value, DurationRange):
        return value
    if isinstance(value, Mapping):
        reject_unknown_keys("filters.duration", value, ("min", "max"))
        return DurationRange(min=value.get("min"), max=value.get("max"))
    raise _invalid("filters.duration", f"must be a DurationRange or a mapping, got {value!r}")


def _to_genres(value: object) -> tuple[str, ...] | None:
    if value is None:
        return None
    if isinstance(value, str) or not isinstance(value, Iterable):
        raise _invalid("filters.genres", f"must be a list of genre slugs, got {value!r}")
    genres = tuple(value)
    check_genres(genres)
    return genres


def _to_date(value: object) -> _dt.date | None:
    if value is None:
        return None
    return check_date("filters.created_after", value)


def _invalid(parameter: str, rule: str) -> InvalidParameterError:
    return InvalidParameterError(parameter, rule)


@attrs.frozen
class DurationRange:
    """A track length range in seconds; either end may be left open.

    >>> DurationRange(min=60, max=180)
    DurationRange(min=60, max=180)
    """

    min: float | None = None
    max: float | None = None

    def __attrs_post_init__(self) -> None:
        check_duration_bound("filters.duration.min", self.min)
        check_duration_bound("filters.duration.max", self.max)
        if self.min is None and self.max is None:
            raise _invalid("filters.duration", "give min, max or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise _invalid("filters.duration", f"min ({self.min}) must be <= max ({self.max})")

    def to_json(self) -> dict[str, float]:
        """Return the range as the API's JSON object."""
        out: dict[str, float] = {}
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        return out


@attrs.frozen
class SearchFilters:
    """Narrows a search; every field is optional and checked when set.

    >>> SearchFilters(genres=["electronic"], duration=DurationRange(max=180))
    SearchFilters(genres=('electronic',), duration=DurationRange(min=None, max=180), \
min_play_count=None, min_likes=None, created_after=None)

    `genres` are free-text slugs such as ``"electronic"`` or ``"pop"``: the API
    publishes no fixed list, so none is enforced here. `created_after` takes a
    `datetime.date` or a ``"YYYY-MM-DD"`` string.
    """

    genres: tuple[str, ...] | None = attrs.field(default=None, converter=_to_genres)
    duration: DurationRange | None = attrs.field(default=None, converter=_to_duration)
    min_play_count: int | None = None
    min_likes: int | None = None
    created_after: _dt.date | None = attrs.field(default=None, converter=_to_date)

    def __attrs_post_init__(self) -> None:
        check_count("filters.min_play_count", self.min_play_count)
        check_count("filters.min_likes", self.min_likes)

    @classmethod
    def from_mapping(cls, mapping: Mapping[str, Any]) -> SearchFilters:
        """Build filters from a mapping shaped like the API's JSON ``filters`` object."""
        reject_unknown_keys("filters", mapping, _FILTER_KEYS)
        return cls(**mapping)

    def to_json(self) -> dict[str, object]:
        """Return the filters as the API's JSON object, leaving out unset fields."""
        out: dict[str, object] = {}
        if self.genres is not None:
            out["genres"] = list(self.genres)
        if self.duration is not None:
            out["duration"] = self.duration.to_json()
        if self.min_play_count is not None:
            out["min_play_count"] = self.min_play_count
        if self.min_likes is not None:
            out["min_likes"] = self.min_likes
        if self.created_after is not None:
            out["created_after"] = self.created_after.isoformat()
        return out


_FILTER_KEYS = tuple(a.name for a in attrs.fields(SearchFilters))


def coerce_filters(filters: SearchFilters | Mapping[str, Any] | None) -> SearchFilters | None:
    """Accept filters as `SearchFilters`, an API-shaped mapping, or None."""
    if filters is None or isinstance(filters, SearchFilters):
        return filters
    if isinstance(filters, Mapping):
        return SearchFilters.from_mapping(filters)
    raise _invalid("filters", f"must be a SearchFilters or a mapping, got {type(filters).__name__}")


#: What a `filters` argument may be.
Filters = SearchFilters | Mapping[str, Any] | None


def filters_json(filters: Filters) -> dict[str, object] | None:
    """Checked filters as the API's JSON object (None: no filters)."""
    checked = coerce_filters(filters)
    return checked.to_json() if checked is not None else None


def search_body(query: str, limit: int, offset: int, filters: dict[str, object] | None) -> bytes:
    """The JSON body of one search, from arguments already checked."""
    payload: dict[str, object] = {"query": query, "limit": limit, "offset": offset}
    if filters:
        payload["filters"] = filters
    return _json.dumps(payload)


def check_search(query: str, limit: int, offset: int, filters: Filters) -> dict[str, object] | None:
    """Check the arguments of one search; return its filters as the API's JSON object."""
    check_query(query)
    check_limit("limit", limit)
    check_offset(offset)
    return filters_json(filters)
