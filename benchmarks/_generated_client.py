"""A stand-in for the client openapi-python-client generates from the API's OpenAPI document.

Written by hand for the start-up benchmark (benchmarks/first_result.py), in
the pattern that generator follows: an attrs `Client` (and
`AuthenticatedClient`) that owns an `httpx.Client`, attrs models with
``to_dict`` and ``from_dict`` for the body, the answer and its parts (each
keeping unknown keys in ``additional_properties``), an `UNSET` sentinel for
optional fields, a generic `Response`, and one module per endpoint with
``sync`` / ``sync_detailed`` / ``asyncio`` / ``asyncio_detailed``, here the
`search` namespace::

    client = AuthenticatedClient(base_url=url, token=key, prefix="", auth_header_name="x-api-key")
    with client:
        page = search.sync(client=client, body=SearchBody(query="chill lo-fi beats", limit=1))

The generator spreads this over about twenty modules (one per model) and
parses with the standard library's json through `httpx.Response.json`, as
here; one module imports a little faster than twenty, so the comparison errs
in the generated client's favour.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping, MutableMapping
from http import HTTPStatus
from types import SimpleNamespace
from typing import Any, Generic, Literal, TypeVar

import httpx
from attrs import define, evolve
from attrs import field as _attrs_field

T = TypeVar("T")


class Unset:
    """The type of `UNSET`: an optional field that was not given."""

    def __bool__(self) -> Literal[False]:
        return False


UNSET: Unset = Unset()


class UnexpectedStatus(Exception):
    """Raised by a call when the server answers with an undocumented status."""

    def __init__(self, status_code: int, content: bytes) -> None:
        self.status_code = status_code
        self.content = content
        super().__init__(f"Unexpected status code: {status_code}\n\nResponse content:\n{content!r}")


@define
class Response(Generic[T]):
    """An answer of an endpoint: the HTTP facts and the parsed body."""

    status_code: HTTPStatus
    content: bytes
    headers: MutableMapping[str, str]
    parsed: T | None


# -- the clients -----------------------------------------------------------------


@define
class Client:
    """Keeps the settings of the connection and the `httpx.Client` made from them."""

    raise_on_unexpected_status: bool = _attrs_field(default=False, kw_only=True)
    _base_url: str = _attrs_field(alias="base_url")
    _cookies: dict[str, str] = _attrs_field(factory=dict, kw_only=True, alias="cookies")
    _headers: dict[str, str] = _attrs_field(factory=dict, kw_only=True, alias="headers")
    _timeout: httpx.Timeout | None = _attrs_field(default=None, kw_only=True, alias="timeout")
    _verify_ssl: bool = _attrs_field(default=True, kw_only=True, alias="verify_ssl")
    _follow_redirects: bool = _attrs_field(default=False, kw_only=True, alias="follow_redirects")
    _httpx_args: dict[str, Any] = _attrs_field(factory=dict, kw_only=True, alias="httpx_args")
    _client: httpx.Client | None = _attrs_field(default=None, init=False)
    _async_client: httpx.AsyncClient | None = _attrs_field(default=None, init=False)

    def with_headers(self, headers: dict[str, str]) -> Client:
        """A copy of the client with more headers."""
        if self._client is not None:
            self._client.headers.update(headers)
        return evolve(self, headers={**self._headers, **headers})

    def _client_headers(self) -> dict[str, str]:
        return self._headers

    def get_httpx_client(self) -> httpx.Client:
        """The `httpx.Client` of this client, made on first use."""
        if self._client is None:
            self._client = httpx.Client(
                base_url=self._base_url,
                cookies=self._cookies,
                headers=self._client_headers(),
                timeout=self._timeout,
                verify=self._verify_ssl,
                follow_redirects=self._follow_redirects,
                **self._httpx_args,
            )
        return self._client

    def __enter__(self) -> Client:
        self.get_httpx_client().__enter__()
        return self

    def __exit__(self, *args: Any, **kwargs: Any) -> None:
        self.get_httpx_client().__exit__(*args, **kwargs)

    def get_async_httpx_client(self) -> httpx.AsyncClient:
        """The `httpx.AsyncClient` of this client, made on first use."""
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(
                base_url=self._base_url,
                cookies=self._cookies,
                headers=self._client_headers(),
                timeout=self._timeout,
                verify=self._verify_ssl,
                follow_redirects=self._follow_redirects,
                **self._httpx_args,
            )
        return self._async_client

    async def __aenter__(self) -> Client:
        await self.get_async_httpx_client().__aenter__()
        return self

    async def __aexit__(self, *args: Any, **kwargs: Any) -> None:
        await self.get_async_httpx_client().__aexit__(*args, **kwargs)


@define
class AuthenticatedClient(Client):
    """A `Client` that sends a token on every request (here, the ``x-api-key`` header)."""

    token: str = _attrs_field(kw_only=True)
    prefix: str = _attrs_field(default="Bearer", kw_only=True)
    auth_header_name: str = _attrs_field(default="Authorization", kw_only=True)

    def _client_headers(self) -> dict[str, str]:
        value = f"{self.prefix} {self.token}" if self.prefix else self.token
        return {**self._headers, self.auth_header_name: value}


# -- the models ------------------------------------------------------------------


class SearchMethod(str, enum.Enum):
    """`meta.search_method`."""

    SEMANTIC = "semantic"
    TEXT = "text"

    def __str__(self) -> str:
        return str(self.value)


@define
class SearchBodyFiltersDuration:
    """`filters.duration`: a range of seconds."""

    min_: float | Unset = UNSET
    max_: float | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        field_dict: dict[str, Any] = dict(self.additional_properties)
        if not isinstance(self.min_, Unset):
            field_dict["min"] = self.min_
        if not isinstance(self.max_, Unset):
            field_dict["max"] = self.max_
        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchBodyFiltersDuration:
        d = dict(src_dict)
        duration = cls(min_=d.pop("min", UNSET), max_=d.pop("max", UNSET))
        duration.additional_properties = d
        return duration


@define
class SearchBodyFilters:
    """`filters`: what narrows a search."""

    genres: list[str] | Unset = UNSET
    duration: SearchBodyFiltersDuration | Unset = UNSET
    min_play_count: int | Unset = UNSET
    min_likes: int | Unset = UNSET
    created_after: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        field_dict: dict[str, Any] = dict(self.additional_properties)
        if not isinstance(self.genres, Unset):
            field_dict["genres"] = list(self.genres)
        if not isinstance(self.duration, Unset):
            field_dict["duration"] = self.duration.to_dict()
        if not isinstance(self.min_play_count, Unset):
            field_dict["min_play_count"] = self.min_play_count
        if not isinstance(self.min_likes, Unset):
            field_dict["min_likes"] = self.min_likes
        if not isinstance(self.created_after, Unset):
            field_dict["created_after"] = self.created_after
        return field_dict

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchBodyFilters:
        d = dict(src_dict)
        raw_duration = d.pop("duration", UNSET)
        filters = cls(
            genres=list(d.pop("genres", [])) if "genres" in d else UNSET,
            duration=UNSET
            if isinstance(raw_duration, Unset)
            else SearchBodyFiltersDuration.from_dict(raw_duration),
            min_play_count=d.pop("min_play_count", UNSET),
            min_likes=d.pop("min_likes", UNSET),
            created_after=d.pop("created_after", UNSET),
        )
        filters.additional_properties = d
        return filters


@define
class SearchBody:
    """The body of `search`."""

    query: str
    limit: int | Unset = UNSET
    offset: int | Unset = UNSET
    filters: SearchBodyFilters | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        field_dict: dict[str, Any] = dict(self.additional_properties)
        field_dict["query"] = self.query
        if not isinstance(self.limit, Unset):
            field_dict["limit"] = self.limit
        if not isinstance(self.offset, Unset):
            field_dict["offset"] = self.offset
        if not isinstance(self.filters, Unset):
            field_dict["filters"] = self.filters.to_dict()
        return field_dict


@define
class SearchResponseTracksItem:
    """One track of an answer."""

    asset_id: str
    name: str
    artist: str
    album: str
    duration: float
    genre: str
    bpm: float
    score: float
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchResponseTracksItem:
        d = dict(src_dict)
        item = cls(
            asset_id=d.pop("asset_id"),
            name=d.pop("name"),
            artist=d.pop("artist"),
            album=d.pop("album"),
            duration=d.pop("duration"),
            genre=d.pop("genre"),
            bpm=d.pop("bpm"),
            score=d.pop("score"),
        )
        item.additional_properties = d
        return item


@define
class SearchResponseArtistsItem:
    """One artist of an answer."""

    name: str
    track_count: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchResponseArtistsItem:
        d = dict(src_dict)
        item = cls(name=d.pop("name"), track_count=d.pop("track_count"))
        item.additional_properties = d
        return item


@define
class SearchResponseAlbumsItem:
    """One album of an answer."""

    name: str
    artist: str
    track_count: int
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchResponseAlbumsItem:
        d = dict(src_dict)
        item = cls(name=d.pop("name"), artist=d.pop("artist"), track_count=d.pop("track_count"))
        item.additional_properties = d
        return item


@define
class SearchResponseMeta:
    """The paging facts of an answer."""

    total: int
    limit: int
    offset: int
    search_method: SearchMethod
    matched_artist: str | None
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchResponseMeta:
        d = dict(src_dict)

        def _parse_matched_artist(data: object) -> str | None:
            return None if data is None else str(data)

        meta = cls(
            total=d.pop("total"),
            limit=d.pop("limit"),
            offset=d.pop("offset"),
            search_method=SearchMethod(d.pop("search_method")),
            matched_artist=_parse_matched_artist(d.pop("matched_artist")),
        )
        meta.additional_properties = d
        return meta


@define
class SearchResponse200:
    """A 200 answer of `search`."""

    tracks: list[SearchResponseTracksItem]
    artists: list[SearchResponseArtistsItem]
    albums: list[SearchResponseAlbumsItem]
    meta: SearchResponseMeta
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchResponse200:
        d = dict(src_dict)
        tracks = [SearchResponseTracksItem.from_dict(item) for item in d.pop("tracks")]
        artists = [SearchResponseArtistsItem.from_dict(item) for item in d.pop("artists")]
        albums = [SearchResponseAlbumsItem.from_dict(item) for item in d.pop("albums")]
        page = cls(
            tracks=tracks,
            artists=artists,
            albums=albums,
            meta=SearchResponseMeta.from_dict(d.pop("meta")),
        )
        page.additional_properties = d
        return page


@define
class SearchResponseError:
    """A 400, 401 or 500 answer: ``{"error": ...}``."""

    error: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchResponseError:
        d = dict(src_dict)
        answer = cls(error=d.pop("error"))
        answer.additional_properties = d
        return answer


@define
class SearchResponse429:
    """A 429 answer: ``{"message": ...}``."""

    message: str
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    @classmethod
    def from_dict(cls, src_dict: Mapping[str, Any]) -> SearchResponse429:
        d = dict(src_dict)
        answer = cls(message=d.pop("message"))
        answer.additional_properties = d
        return answer


# -- the endpoint ----------------------------------------------------------------

SearchAnswer = SearchResponse200 | SearchResponseError | SearchResponse429


def _get_kwargs(*, body: SearchBody) -> dict[str, Any]:
    return {
        "method": "post",
        "url": "/search",
        "json": body.to_dict(),
        "headers": {"Content-Type": "application/json"},
    }


def _parse_response(*, client: Client, response: httpx.Response) -> SearchAnswer | None:
    if response.status_code == 200:
        return SearchResponse200.from_dict(response.json())
    if response.status_code in (400, 401, 500):
        return SearchResponseError.from_dict(response.json())
    if response.status_code == 429:
        return SearchResponse429.from_dict(response.json())
    if client.raise_on_unexpected_status:
        raise UnexpectedStatus(response.status_code, response.content)
    return None


def _build_response(*, client: Client, response: httpx.Response) -> Response[SearchAnswer]:
    return Response(
        status_code=HTTPStatus(response.status_code),
        content=response.content,
        headers=response.headers,
        parsed=_parse_response(client=client, response=response),
    )


def _sync_detailed(*, client: Client, body: SearchBody) -> Response[SearchAnswer]:
    response = client.get_httpx_client().request(**_get_kwargs(body=body))
    return _build_response(client=client, response=response)


def _sync(*, client: Client, body: SearchBody) -> SearchAnswer | None:
    return _sync_detailed(client=client, body=body).parsed


async def _asyncio_detailed(*, client: Client, body: SearchBody) -> Response[SearchAnswer]:
    response = await client.get_async_httpx_client().request(**_get_kwargs(body=body))
    return _build_response(client=client, response=response)


async def _asyncio(*, client: Client, body: SearchBody) -> SearchAnswer | None:
    return (await _asyncio_detailed(client=client, body=body)).parsed


#: The endpoint's module (``api/default/search.py`` in a generated package).
search = SimpleNamespace(
    sync=_sync, sync_detailed=_sync_detailed, asyncio=_asyncio, asyncio_detailed=_asyncio_detailed
)
