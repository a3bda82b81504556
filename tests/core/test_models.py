"""Models: client-side validation (nothing sent when it fails), strict decoding of answers,
frozen pages, and from_dict."""

from __future__ import annotations

import copy
import datetime as dt
import inspect
import json
import math
import pickle
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
import httpx
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from audioscape_async import (
    AlbumSummary,
    APIResponseValidationError,
    ArtistSummary,
    AsyncClient,
    Client,
    DurationRange,
    InvalidParameterError,
    SearchCache,
    SearchFilters,
    SearchMeta,
    SearchResponse,
    Track,
)
from audioscape_async._convert import Page as _Page
from audioscape_async._decode import decode_search_response
from audioscape_async.emulator import EmulatorServer
from tests.helpers import MockAPI, ok, open_client, page_json, track_json

#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


# -- validation: every rule, nothing sent ---------------------------------------

Call = Callable[[AsyncClient], object]

BAD_CALLS: list[tuple[str, Call, str]] = [
    # query
    ("empty query", lambda c: c.search(""), "query"),
    ("blank query", lambda c: c.search("  \t"), "query"),
    ("None query", lambda c: c.search(None), "query"),  # type: ignore[arg-type]
    ("number query", lambda c: c.search(42), "query"),  # type: ignore[arg-type]
    ("empty walk query", lambda c: c.iter_pages(""), "query"),
    ("empty tracks query", lambda c: c.iter_tracks(" "), "query"),
    # limit 1..100
    ("limit 0", lambda c: c.search("q", limit=0), "limit"),
    ("limit 101", lambda c: c.search("q", limit=101), "limit"),
    ("limit -1", lambda c: c.search("q", limit=-1), "limit"),
    ("limit True", lambda c: c.search("q", limit=True), "limit"),
    ("limit float", lambda c: c.search("q", limit=10.0), "limit"),  # type: ignore[arg-type]
    ("limit str", lambda c: c.search("q", limit="10"), "limit"),  # type: ignore[arg-type]
    # offset >= 0
    ("offset -1", lambda c: c.search("q", offset=-1), "offset"),
    ("offset True", lambda c: c.search("q", offset=True), "offset"),
    ("offset float", lambda c: c.search("q", offset=1.0), "offset"),  # type: ignore[arg-type]
    ("walk offset -1", lambda c: c.iter_pages("q", offset=-1), "offset"),
    ("tracks offset -1", lambda c: c.iter_tracks("q", offset=-1), "offset"),
    # page_size 1..100
    ("page_size 0", lambda c: c.iter_pages("q", page_size=0), "page_size"),
    ("page_size 101", lambda c: c.iter_tracks("q", page_size=101), "page_size"),
    ("page_size False", lambda c: c.iter_pages("q", page_size=False), "page_size"),
    # max_items >= 1 or None
    ("max_items 0", lambda c: c.iter_pages("q", max_items=0), "max_items"),
    ("max_items -3", lambda c: c.iter_tracks("q", max_items=-3), "max_items"),
    ("max_items True", lambda c: c.iter_tracks("q", max_items=True), "max_items"),
    ("max_items float", lambda c: c.iter_tracks("q", max_items=2.0), "max_items"),  # type: ignore[arg-type]
]


async def _invoke(call: Call, client: AsyncClient) -> None:
    """Make the call; await it if it is a coroutine (search), not if it is a walk."""
    result = call(client)
    if inspect.isawaitable(result):
        await result


def _filters_call(filters: object) -> Call:
    return lambda c: c.search("q", filters=filters)  # type: ignore[arg-type]


BAD_FILTERS: list[tuple[object, str]] = [
    # the filters object itself
    (["electronic"], "filters"),
    ("genres=electronic", "filters"),
    ({"genre": ["electronic"]}, "filters"),
    ({"min_plays": 3}, "filters"),
    # genres: non-empty strings
    ({"genres": []}, "filters.genres"),
    ({"genres": "electronic"}, "filters.genres"),
    ({"genres": [""]}, "filters.genres[0]"),
    ({"genres": ["pop", "   "]}, "filters.genres[1]"),
    ({"genres": ["pop", 7]}, "filters.genres[1]"),
    ({"genres": [None]}, "filters.genres[0]"),
    # duration: min/max >= 0, min <= max, numbers
    ({"duration": {"min": -1}}, "filters.duration.min"),
    ({"duration": {"max": -0.5}}, "filters.duration.max"),
    ({"duration": {"min": 200, "max": 100}}, "filters.duration"),
    ({"duration": {"min": True}}, "filters.duration.min"),
    ({"duration": {"max": False}}, "filters.duration.max"),
    ({"duration": {"min": "60"}}, "filters.duration.min"),
    ({"duration": {"min": math.nan}}, "filters.duration.min"),
    ({"duration": {"max": math.inf}}, "filters.duration.max"),
    ({"duration": {}}, "filters.duration"),
    ({"duration": {"minimum": 60}}, "filters.duration"),
    ({"duration": "60-180"}, "filters.duration"),
    # counts >= 0, integers
    ({"min_play_count": -1}, "filters.min_play_count"),
    ({"min_play_count": True}, "filters.min_play_count"),
    ({"min_play_count": 1.5}, "filters.min_play_count"),
    ({"min_play_count": "100"}, "filters.min_play_count"),
    ({"min_likes": -1}, "filters.min_likes"),
    ({"min_likes": False}, "filters.min_likes"),
    # created_after: a real date as YYYY-MM-DD, or a datetime.date
    ({"created_after": "2024-02-30"}, "filters.created_after"),
    ({"created_after": "2023-02-29"}, "filters.created_after"),
    ({"created_after": "2024-13-01"}, "filters.created_after"),
    ({"created_after": "2024-1-01"}, "filters.created_after"),
    ({"created_after": "20240101"}, "filters.created_after"),
    ({"created_after": "2024-W01-1"}, "filters.created_after"),
    ({"created_after": "2024-01-01T00:00:00"}, "filters.created_after"),
    ({"created_after": "yesterday"}, "filters.created_after"),
    ({"created_after": ""}, "filters.created_after"),
    ({"created_after": 20240101}, "filters.created_after"),
    ({"created_after": True}, "filters.created_after"),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("call", "parameter"),
    [pytest.param(call, parameter, id=name) for name, call, parameter in BAD_CALLS]
    + [
        pytest.param(_filters_call(filters), parameter, id=f"filters={filters!r}")
        for filters, parameter in BAD_FILTERS
    ],
)
async def test_invalid_argument_sends_nothing(call: Call, parameter: str) -> None:
    """Each broken rule raises InvalidParameterError naming the parameter; nothing is sent."""
    api = MockAPI()
    async with open_client(api) as client:
        with pytest.raises(InvalidParameterError) as caught:
            await _invoke(call, client)
    assert caught.value.parameter == parameter
    assert isinstance(caught.value, ValueError)
    assert parameter in str(caught.value)
    assert api.calls == 0


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("filters", "parameter"),
    [pytest.param(f, p, id=f"filters={f!r}") for f, p in BAD_FILTERS if isinstance(f, dict)],
)
async def test_invalid_filters_fail_in_walks_before_sending(
    filters: dict[str, Any], parameter: str
) -> None:
    """iter_pages and iter_tracks check filters when called, before anything is sent."""
    api = MockAPI()
    async with open_client(api) as client:
        with pytest.raises(InvalidParameterError) as caught:
            client.iter_tracks("q", filters=filters)
        assert caught.value.parameter == parameter
        with pytest.raises(InvalidParameterError):
            client.iter_pages("q", filters=filters)
    assert api.calls == 0


@pytest.mark.parametrize(
    ("make", "parameter"),
    [
        (lambda: SearchFilters(genres=[]), "filters.genres"),
        (lambda: SearchFilters(min_likes=-1), "filters.min_likes"),
        (lambda: SearchFilters(min_play_count=True), "filters.min_play_count"),
        (lambda: SearchFilters(created_after="2024-02-30"), "filters.created_after"),
        (lambda: DurationRange(min=-1), "filters.duration.min"),
        (lambda: DurationRange(min=10, max=5), "filters.duration"),
        (lambda: DurationRange(), "filters.duration"),
        (lambda: SearchFilters.from_mapping({"typo": 1}), "filters"),
    ],
)
def test_filter_models_validate_where_written(make: Callable[[], object], parameter: str) -> None:
    """SearchFilters and DurationRange reject a broken rule at construction."""
    with pytest.raises(InvalidParameterError) as caught:
        make()
    assert caught.value.parameter == parameter


@pytest.mark.anyio
@pytest.mark.parametrize(
    "kwargs",
    [
        {"limit": 1},
        {"limit": 100},
        {"offset": 0},
        {"offset": 10_000},
        {"filters": {"duration": {"min": 0}}},
        {"filters": {"duration": {"min": 90, "max": 90}}},
        {"filters": {"duration": {"min": 30.5, "max": 90.25}}},
        {"filters": {"min_play_count": 0, "min_likes": 0}},
        {"filters": {"created_after": "2024-02-29"}},
        {"filters": {"created_after": dt.date(2024, 2, 29)}},
        {"filters": {"genres": ["any-free-text-slug"]}},
        {"filters": {}},
        {"filters": None},
    ],
    ids=repr,
)
async def test_edge_values_are_accepted(kwargs: dict[str, Any]) -> None:
    """Values on the edge of each rule are valid and sent."""
    api = MockAPI()
    async with open_client(api) as client:
        await client.search("q", **kwargs)
    assert api.calls == 1


# -- filters: model or mapping, same JSON -----------------------------------------


@pytest.mark.anyio
async def test_filters_model_and_mapping_send_the_same_body() -> None:
    """SearchFilters and an API-shaped mapping produce byte-identical request bodies."""
    model = SearchFilters(
        genres=["electronic", "pop"],
        duration=DurationRange(min=60, max=180),
        min_play_count=1000,
        min_likes=50,
        created_after=dt.date(2024, 1, 1),
    )
    mapping = {
        "genres": ["electronic", "pop"],
        "duration": {"min": 60, "max": 180},
        "min_play_count": 1000,
        "min_likes": 50,
        "created_after": "2024-01-01",
    }
    api = MockAPI()
    async with open_client(api) as client:
        await client.search("q", filters=model)
        await client.search("q", filters=mapping)
        await client.search("q", filters=SearchFilters.from_mapping(mapping))
    first, second, third = (request.content for request in api.requests)
    assert first == second == third
    assert orjson.loads(first)["filters"] == mapping


@pytest.mark.anyio
@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(duration=DurationRange(max=180)),
        {"duration": {"max": 180}},
        SearchFilters(duration={"max": 180}),
    ],
    ids=["model", "mapping", "model-with-mapping"],
)
async def test_open_ended_duration_sends_only_the_given_end(filters: object) -> None:
    """A duration with only max set sends only max."""
    api = MockAPI()
    async with open_client(api) as client:
        await client.search("q", filters=filters)  # type: ignore[arg-type]
    assert api.bodies[0]["filters"] == {"duration": {"max": 180}}


@pytest.mark.anyio
async def test_empty_filters_send_no_filters_key() -> None:
    """Filters with nothing set leave `filters` out of the body."""
    api = MockAPI()
    async with open_client(api) as client:
        await client.search("q", filters=SearchFilters())
        await client.search("q", filters={})
    assert all("filters" not in body for body in api.bodies)


@pytest.mark.parametrize(
    "value",
    [dt.date(2024, 3, 5), dt.datetime(2024, 3, 5, 23, 59), "2024-03-05"],
    ids=["date", "datetime", "string"],
)
def test_created_after_forms_encode_as_iso_date(value: object) -> None:
    """created_after as a date, a datetime or a YYYY-MM-DD string encodes as YYYY-MM-DD."""
    filters = SearchFilters(created_after=value)
    assert filters.created_after == dt.date(2024, 3, 5)
    assert filters.to_json() == {"created_after": "2024-03-05"}


def test_genres_are_free_text() -> None:
    """Any non-empty genre slug is accepted: there is no fixed list."""
    filters = SearchFilters(genres=["vaporwave-ish", "Épica", "lo-fi hip hop"])
    assert filters.genres == ("vaporwave-ish", "Épica", "lo-fi hip hop")


# -- decoding ------------------------------------------------------------------------


async def _decode(body: object, **headers: str) -> SearchResponse:
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    api = MockAPI(httpx.Response(200, content=content, headers=headers))
    async with open_client(api, max_retries=0) as client:
        return await client.search("q")


async def _decode_error(body: object, **headers: str) -> APIResponseValidationError:
    with pytest.raises(APIResponseValidationError) as caught:
        await _decode(body, **headers)
    return caught.value


@pytest.mark.anyio
async def test_decodes_every_documented_field() -> None:
    """Every documented field lands in the typed model with its JSON value."""
    body = page_json(["7"], total=1, limit=20, search_method="text", matched_artist="X")
    body["tracks"][0] = track_json(
        "7",
        name="Boss",
        artist="X",
        album="Y",
        duration=95,
        genre="orchestral",
        bpm=140.5,
        score=1,
    )
    page = await _decode(body)
    track = page.tracks[0]
    assert (track.asset_id, track.name, track.artist, track.album) == ("7", "Boss", "X", "Y")
    assert (track.duration, track.genre, track.bpm, track.score) == (95.0, "orchestral", 140.5, 1.0)
    assert isinstance(track.duration, float)
    assert isinstance(track.score, float)
    assert page.meta.search_method == "text"
    assert page.meta.matched_artist == "X"
    assert page.artists[0].name == "Some Artist"
    assert page.albums[0].track_count == 1


@pytest.mark.anyio
async def test_unknown_fields_are_ignored_at_every_level() -> None:
    """Fields the docs do not list (top level, tracks, summaries, meta) are ignored."""
    body = page_json(["1"])
    body["new_top_level"] = {"anything": [1, 2]}
    body["tracks"][0]["mood"] = "dark"
    body["artists"][0]["image"] = "https://example.com/a.png"
    body["albums"][0]["year"] = 2024
    body["meta"]["took_ms"] = 12
    page = await _decode(body)
    assert page.tracks[0].asset_id == "1"
    assert page.meta.total == 1


@pytest.mark.anyio
async def test_whole_numbers_written_as_floats_are_integers() -> None:
    """An integer field written as 20.0 decodes as the integer 20."""
    body = page_json(["1"])
    body["meta"].update(total=20.0, limit=20.0, offset=0.0)
    page = await _decode(body)
    assert (page.meta.total, page.meta.limit, page.meta.offset) == (20, 20, 0)
    assert isinstance(page.meta.total, int)


def _without(path: tuple[str | int, ...]) -> dict[str, Any]:
    body = page_json(["1"])
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body


def _with(path: tuple[str | int, ...], value: object) -> dict[str, Any]:
    body = copy.deepcopy(page_json(["1"]))
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return body


DOCUMENTED_FIELDS: list[tuple[str | int, ...]] = [
    ("tracks",),
    ("artists",),
    ("albums",),
    ("meta",),
    *[("tracks", 0, name) for name in track_json()],
    ("artists", 0, "name"),
    ("artists", 0, "track_count"),
    ("albums", 0, "name"),
    ("albums", 0, "artist"),
    ("albums", 0, "track_count"),
    *[("meta", name) for name in page_json()["meta"]],
]


def _dotted(path: tuple[str | int, ...]) -> str:
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text.lstrip(".")


@pytest.mark.anyio
@pytest.mark.parametrize("path", DOCUMENTED_FIELDS, ids=_dotted)
async def test_missing_documented_field_is_named(path: tuple[str | int, ...]) -> None:
    """A documented field missing from the answer raises APIResponseValidationError naming it."""
    raised = await _decode_error(_without(path))
    assert _dotted(path) in str(raised)


WRONG_TYPES: list[tuple[tuple[str | int, ...], object]] = [
    (("tracks",), {}),
    (("tracks",), ""),
    (("tracks",), "abc"),
    (("tracks",), None),
    (("artists",), {"name": "x"}),
    (("albums",), 3),
    (("meta",), []),
    (("meta",), None),
    (("tracks", 0), "1837070127"),
    (("tracks", 0, "asset_id"), 1837070127),
    (("tracks", 0, "name"), None),
    (("tracks", 0, "artist"), ["a"]),
    (("tracks", 0, "duration"), "3:00"),
    (("tracks", 0, "duration"), True),
    (("tracks", 0, "genre"), 5),
    (("tracks", 0, "bpm"), "120"),
    (("tracks", 0, "bpm"), None),
    (("tracks", 0, "score"), False),
    (("artists", 0, "track_count"), 1.5),
    (("artists", 0, "track_count"), "2"),
    (("albums", 0, "track_count"), True),
    (("meta", "total"), "10"),
    (("meta", "total"), True),
    (("meta", "limit"), None),
    (("meta", "offset"), 0.5),
    (("meta", "search_method"), 1),
    (("meta", "matched_artist"), 5),
    (("meta", "matched_artist"), False),
]


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "value"),
    WRONG_TYPES,
    ids=[f"{_dotted(path)}={value!r}" for path, value in WRONG_TYPES],
)
async def test_wrong_type_is_named(path: tuple[str | int, ...], value: object) -> None:
    """A documented field of the wrong type raises APIResponseValidationError naming it."""
    raised = await _decode_error(_with(path, value))
    assert _dotted(path) in str(raised)


@pytest.mark.anyio
@pytest.mark.parametrize("content", [b"[]", b'"ok"', b"null", b"42", b"true"])
async def test_json_that_is_not_an_object_is_rejected(content: bytes) -> None:
    """A 2xx body that is JSON but not an object raises APIResponseValidationError."""
    raised = await _decode_error(content)
    assert "object" in str(raised)


@pytest.mark.anyio
@pytest.mark.parametrize(
    "content",
    [b"<html><body>Service Temporarily Unavailable</body></html>", b"", b'{"tracks": [', b"\xff"],
    ids=["html", "empty", "truncated", "not-utf8"],
)
async def test_non_json_2xx_is_a_validation_error(content: bytes) -> None:
    """A 2xx body that is not JSON raises APIResponseValidationError, with the response kept."""
    raised = await _decode_error(content, **{"x-request-id": "req-77"})
    assert "not valid JSON" in str(raised)
    assert raised.response is not None
    assert raised.response.status_code == 200
    assert raised.request_id == "req-77"


@pytest.mark.anyio
async def test_validation_error_keeps_body_and_response() -> None:
    """A wrongly shaped answer's error carries the decoded body and the HTTP response."""
    body = _with(("meta", "total"), "many")
    raised = await _decode_error(body)
    assert raised.body == body
    assert raised.response is not None


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["x-request-id", "request-id"])
async def test_request_id_is_kept_on_the_page_but_not_in_its_repr(header: str) -> None:
    """The response's request id header is kept on the page, left out of repr and equality."""
    page = await _decode(page_json(["1"]), **{header: "req-0042"})
    assert page.request_id == "req-0042"
    assert "req-0042" not in repr(page)
    plain = await _decode(page_json(["1"]))
    assert plain.request_id is None
    assert page == plain


@pytest.mark.anyio
async def test_matched_artist_may_be_null() -> None:
    """meta.matched_artist is a string or null, as documented."""
    assert (await _decode(page_json(["1"], matched_artist=None))).meta.matched_artist is None
    assert (await _decode(page_json(["1"], matched_artist="Y"))).meta.matched_artist == "Y"


@pytest.mark.anyio
async def test_decoded_page_through_ok_helper() -> None:
    """The default test page decodes (a guard for the helpers the other tests rely on)."""
    api = MockAPI(ok())
    async with open_client(api) as client:
        page = await client.search("q")
    assert [track.asset_id for track in page.tracks] == ["1837070127"]


# -- decoding never lets anything else escape ------------------------------------------

_json = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=12,
)


@given(
    st.one_of(
        _json.map(orjson.dumps),
        st.builds(_with, st.sampled_from(DOCUMENTED_FIELDS), _json).map(orjson.dumps),
        st.binary(max_size=64),
    )
)
def test_decoding_raises_nothing_but_validation_errors(content: bytes) -> None:
    """Any body, JSON or not, decodes or raises APIResponseValidationError: nothing else."""
    raised: APIResponseValidationError | None = None
    try:
        decode_search_response(content, "req-1")
    except APIResponseValidationError as caught:
        raised = caught
    if raised is not None:
        assert raised.request_id == "req-1"
        assert str(raised)


# -- strictness: every documented field x a value of every JSON type ------------------

#: Every documented field: its path in a one-track, one-artist, one-album page, and its kind.
FIELD_KINDS: list[tuple[tuple[str | int, ...], str]] = [
    *[(("tracks", 0, name), "str") for name in ("asset_id", "name", "artist", "album", "genre")],
    *[(("tracks", 0, name), "number") for name in ("duration", "bpm", "score")],
    (("artists", 0, "name"), "str"),
    (("artists", 0, "track_count"), "int"),
    (("albums", 0, "name"), "str"),
    (("albums", 0, "artist"), "str"),
    (("albums", 0, "track_count"), "int"),
    *[(("meta", name), "int") for name in ("total", "limit", "offset")],
    (("meta", "search_method"), "str"),
    (("meta", "matched_artist"), "str?"),
    *[((name,), "array") for name in ("tracks", "artists", "albums")],
    (("meta",), "object"),
    *[((name, 0), "object") for name in ("tracks", "artists", "albums")],
]

#: A value of every JSON type (and the edges within types), with the kinds that accept it.
JSON_VALUES: list[tuple[object, frozenset[str]]] = [
    (None, frozenset({"str?"})),
    (True, frozenset()),
    (False, frozenset()),
    (0, frozenset({"int", "number"})),
    (-7, frozenset({"int", "number"})),
    (2**53 + 1, frozenset({"int", "number"})),
    (2**64 - 1, frozenset({"int", "number"})),
    (20.0, frozenset({"int", "number"})),
    (-0.0, frozenset({"int", "number"})),
    (7.5, frozenset({"number"})),
    (1e300, frozenset({"int", "number"})),
    ("120", frozenset({"str", "str?"})),
    ("", frozenset({"str", "str?"})),
    ("Épica \U0001f3b5", frozenset({"str", "str?"})),
    ([], frozenset({"array"})),
    ([1], frozenset()),
    (["1837070127"], frozenset()),
    ({}, frozenset()),
    ({"name": "x"}, frozenset()),
]


def _get(page: SearchResponse, path: tuple[str | int, ...]) -> Any:
    value: Any = page
    for step in path:
        value = value[step] if isinstance(step, int) else getattr(value, step)
    return value


@pytest.mark.parametrize(
    ("path", "kind", "value", "accepted_by"),
    [(path, kind, value, ok) for path, kind in FIELD_KINDS for value, ok in JSON_VALUES],
    ids=[f"{_dotted(path)}={value!r:.20}" for path, _ in FIELD_KINDS for value, _ in JSON_VALUES],
)
def test_each_field_takes_only_its_json_type(
    path: tuple[str | int, ...], kind: str, value: object, accepted_by: frozenset[str]
) -> None:
    """Each field accepts exactly its JSON type, decoded exactly; anything else names the field."""
    content = orjson.dumps(_with(path, value))
    if kind not in accepted_by:
        with pytest.raises(APIResponseValidationError) as caught:
            decode_search_response(content, "req-1")
        assert _dotted(path) in str(caught.value)
        assert caught.value.request_id == "req-1"
        return
    decoded = _get(decode_search_response(content, "req-1"), path)
    if kind == "int":
        assert type(decoded) is int
        assert decoded == int(value)  # type: ignore[call-overload]
    elif kind == "number":
        assert type(decoded) is float
        assert decoded == float(value)  # type: ignore[arg-type]
    else:
        assert type(decoded) is {"str": str, "str?": type(value), "array": tuple}[kind]
        assert decoded == (tuple(value) if kind == "array" else value)  # type: ignore[arg-type]


@pytest.mark.parametrize("value", [2**64, 10**30, -(10**40), 2**53 + 1])
def test_integers_of_any_size_decode_exactly(value: int) -> None:
    """An integer field holds the JSON integer exactly, however large (not via a float)."""
    body = _with(("meta", "total"), value)
    page = decode_search_response(json.dumps(body).encode())
    assert type(page.meta.total) is int
    assert page.meta.total == value


@pytest.mark.parametrize("junk", [b'"\xff"', b'"\xed\xa0\x80"', b'{"k": "caf\xe9"}'])
def test_invalid_utf8_anywhere_is_not_json(junk: bytes) -> None:
    """Invalid UTF-8, even in a field the SDK ignores, makes the body invalid JSON."""
    content = b'{"new_field": ' + junk + b", " + orjson.dumps(page_json(["1"]))[1:]
    with pytest.raises(APIResponseValidationError, match="not valid JSON"):
        decode_search_response(content)
    assert decode_search_response(content.replace(junk, b'"ok \xc3\xa9"')).tracks


def test_page_fields_are_the_json_fields_of_the_response() -> None:
    """The decoder reads exactly the SearchResponse fields that come from the JSON (and compare)."""
    from_json = [field.name for field in attrs.fields(SearchResponse) if field.eq]
    assert list(_Page.__annotations__) == from_json == list(page_json())


def test_import_loads_no_decoding_library_until_the_first_decode() -> None:
    """`import audioscape_async` loads neither msgspec nor cattrs; a valid page loads no cattrs."""
    script = (
        "import sys, audioscape_async\n"
        "from audioscape_async._decode import decode_search_response\n"
        "print(sorted(m for m in ('msgspec', 'cattrs') if m in sys.modules))\n"
        f"decode_search_response({orjson.dumps(page_json(['1']))!r})\n"
        "print(sorted(m for m in ('msgspec', 'cattrs') if m in sys.modules))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.split("\n")[:2] == ["[]", "['msgspec']"]


# -- round trip: any page the models can hold comes back equal -------------------------

_text = st.text(max_size=8)
_number = st.floats(allow_nan=False, allow_infinity=False)
_tracks = st.builds(Track, _text, _text, _text, _text, _number, _text, _number, _number)
_metas = st.builds(
    SearchMeta, st.integers(), st.integers(), st.integers(), _text, st.none() | _text
)
_pages = st.builds(
    SearchResponse,
    st.lists(_tracks, max_size=4).map(tuple),
    st.lists(st.builds(ArtistSummary, _text, st.integers()), max_size=3).map(tuple),
    st.lists(st.builds(AlbumSummary, _text, _text, st.integers()), max_size=3).map(tuple),
    _metas,
)


def _whole_floats(value: Any) -> Any:
    """`value` with every integer a float can hold exactly written as a float (20 as 20.0)."""
    if isinstance(value, dict):
        return {key: _whole_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_floats(item) for item in value]
    if type(value) is int and abs(value) <= 2**53:
        return float(value)
    return value


_BIG = SearchResponse(
    (Track("1", "Épica", "A", "B", 1e308, "x", -0.0, 2.0**60),),
    (ArtistSummary("A", 2**64),),
    (AlbumSummary("B", "A", -(2**70)),),
    SearchMeta(10**30, 2**53 + 1, 0, "semantic", None),
)


@given(page=_pages, whole_floats=st.booleans(), ascii_only=st.booleans())
@example(page=_BIG, whole_floats=True, ascii_only=False)
@example(page=_BIG, whole_floats=False, ascii_only=True)
def test_a_page_round_trips_through_json(
    page: SearchResponse, whole_floats: bool, ascii_only: bool
) -> None:
    """decode(encode(page)) == page, with the same types and values, however it is written."""
    body = page.to_dict()
    content = json.dumps(_whole_floats(body) if whole_floats else body, ensure_ascii=ascii_only)
    decoded = decode_search_response(content.encode(), "req-9")
    assert decoded == page
    assert repr(decoded) == repr(page)  # 20 and 20.0 are equal, but not the same type
    assert decoded.request_id == "req-9"


# -- frozen pages: a cached page is one value for every caller -------------------------


def _try_to_change(page: SearchResponse) -> list[str]:
    """Every way a caller might change a page through its public API; what each raised."""
    assert page.headers is not None
    headers = page.headers
    attempts: list[Callable[[], object]] = [
        lambda: setattr(page.tracks[0], "name", "forged"),
        lambda: setattr(page.meta, "total", 0),
        lambda: setattr(page.artists[0], "track_count", 0),
        lambda: setattr(page.albums[0], "name", "forged"),
        lambda: setattr(page, "tracks", ()),
        lambda: setattr(page, "cache_status", "miss"),
        lambda: page.tracks.append(page.tracks[0]),  # type: ignore[attr-defined]
        lambda: page.tracks.__setitem__(0, page.tracks[-1]),  # type: ignore[index]
        lambda: headers.__setitem__("x-request-id", "forged"),
        lambda: headers.__delitem__("content-type"),
        lambda: headers.update({"x-forged": "1"}),
        lambda: headers.pop("content-type"),
        lambda: headers.setdefault("x-forged", "1"),
        lambda: headers.clear(),
        lambda: setattr(headers, "encoding", "utf-16"),
    ]
    raised = []
    for attempt in attempts:
        with pytest.raises((AttributeError, TypeError)) as caught:
            attempt()
        raised.append(type(caught.value).__name__)
    return raised


def _snapshot(page: SearchResponse) -> tuple[object, ...]:
    assert page.headers is not None
    return (page.to_dict(), page.headers.multi_items(), page.headers.encoding, page.request_id)


@pytest.mark.anyio
async def test_a_cached_page_cannot_be_changed_for_the_next_caller(
    audioscape_emulator: EmulatorServer,
) -> None:
    """Through a real client with a cache: no public way changes a page (frozen models, tuples,
    read-only headers), and the next hit is the very same, unchanged page."""
    server = audioscape_emulator
    async with AsyncClient(server.api_key, base_url=server.url, cache=SearchCache()) as client:
        miss = await client.search("dark cinematic", limit=5)
        hit = await client.search("dark cinematic", limit=5)
        before = _snapshot(hit)
        raised = _try_to_change(hit)
        _try_to_change(miss)
        again = await client.search("dark cinematic", limit=5)
    assert (miss.cache_status, hit.cache_status, again.cache_status) == ("miss", "hit", "hit")
    assert "FrozenInstanceError" in raised
    assert again is hit  # no copy per hit: nobody can change it
    assert _snapshot(again) == before
    assert again == miss
    assert len(server.emulator.requests) == 1


def test_a_cached_page_cannot_be_changed_through_the_sync_client(
    audioscape_emulator: EmulatorServer,
) -> None:
    """The same through the sync `Client`: a hit is unchanged after another caller's attempts."""
    server = audioscape_emulator
    with Client(server.api_key, base_url=server.url, cache=SearchCache()) as client:
        miss = client.search("dark cinematic", limit=5)
        before = _snapshot(miss)
        _try_to_change(miss)
        hit = client.search("dark cinematic", limit=5)
    assert hit.cache_status == "hit"
    assert _snapshot(hit) == before


@pytest.mark.anyio
async def test_a_pages_headers_read_like_httpx_headers_and_copy_to_a_mutable_one() -> None:
    """A page's headers are an httpx.Headers (lookups work); copy() gives a mutable one."""
    page = await _decode(page_json(["1"]), **{"x-request-id": "req-7", "x-extra": "a"})
    assert isinstance(page.headers, httpx.Headers)
    assert page.headers["x-request-id"] == "req-7"
    assert page.headers.get("X-EXTRA") == "a"
    mine = page.headers.copy()
    mine["x-extra"] = "b"
    assert (mine["x-extra"], page.headers["x-extra"]) == ("b", "a")


def test_pages_compare_and_hash_by_their_json_fields() -> None:
    """Equal pages hash alike whatever their exchange; tracks go in sets and dict keys."""
    content = orjson.dumps(page_json(["1", "2"]))
    first = decode_search_response(content, "req-1", status_code=200, attempts=1)
    second = decode_search_response(content, "req-2", status_code=203, attempts=3)
    assert first == second
    assert hash(first) == hash(second)
    assert len({*first.tracks, *second.tracks}) == 2
    assert attrs.evolve(first, cache_status="hit") == first


@pytest.mark.anyio
async def test_a_page_pickles_with_its_exchange_and_read_only_headers() -> None:
    """A page from a real call unpickles equal, with its exchange, headers still read-only."""
    page = await _decode(page_json(["1"]), **{"x-request-id": "req-7"})
    back = pickle.loads(pickle.dumps(page))
    assert back == page
    assert repr(back) == repr(page)
    assert (back.request_id, back.status_code, back.attempts) == ("req-7", 200, 1)
    assert back.headers is not None
    assert page.headers is not None
    assert back.headers.multi_items() == page.headers.multi_items()
    with pytest.raises(TypeError, match="read-only"):
        back.headers["x-request-id"] = "forged"


def test_a_page_built_with_mutable_headers_keeps_its_own_read_only_copy() -> None:
    """Headers given to a page are copied read-only: changing the original changes no page."""
    headers = httpx.Headers({"x-request-id": "req-1"})
    page = attrs.evolve(decode_search_response(orjson.dumps(page_json(["1"]))), headers=headers)
    headers["x-request-id"] = "changed"
    assert page.headers is not None
    assert page.headers["x-request-id"] == "req-1"


# -- from_dict: the models read their own to_dict, and crawl rows ----------------------


@given(page=_pages, whole_floats=st.booleans())
@example(page=_BIG, whole_floats=True)
def test_from_dict_round_trips_every_model(page: SearchResponse, whole_floats: bool) -> None:
    """Each model's from_dict(to_dict()) is equal, with the same types (20.0 reads as 20)."""
    body = page.to_dict()
    data: dict[str, Any] = _whole_floats(body) if whole_floats else body
    back = SearchResponse.from_dict(data)
    assert back == page
    assert repr(back) == repr(page)
    for track, item in zip(page.tracks, data["tracks"], strict=True):
        assert repr(Track.from_dict(item)) == repr(track)
    for artist, item in zip(page.artists, data["artists"], strict=True):
        assert ArtistSummary.from_dict(item) == artist
    for album, item in zip(page.albums, data["albums"], strict=True):
        assert AlbumSummary.from_dict(item) == album
    assert repr(SearchMeta.from_dict(data["meta"])) == repr(page.meta)


def test_from_dict_reads_no_exchange_and_ignores_unknown_keys() -> None:
    """Keys a model does not have are ignored, the exchange's fields included."""
    page = decode_search_response(orjson.dumps(page_json(["1"])))
    data: dict[str, Any] = {**page.to_dict(), "request_id": "forged", "attempts": 9}
    data["tracks"][0]["mood"] = "dark"
    back = SearchResponse.from_dict(data)
    assert back == page
    assert (back.request_id, back.attempts, back.headers) == (None, 1, None)


@pytest.mark.anyio
async def test_track_from_dict_reads_the_rows_of_a_file_crawl(
    audioscape_emulator: EmulatorServer, tmp_path: Path
) -> None:
    """Every track row a real crawl writes (provenance columns and all) reads back as the
    track the search returned; the crawl's other lines are refused, naming a field."""
    server = audioscape_emulator
    out = tmp_path / "tracks.jsonl"
    queries = ["dark cinematic", "dark"]
    async with AsyncClient(server.api_key, base_url=server.url) as client:
        await client.crawl_to_file(queries, out, max_items=60, page_size=20)
        found: dict[str, Track] = {}  # the first query to find a track writes its row
        for query in queries:
            async for track in client.iter_tracks(query, max_items=60, page_size=20):
                found.setdefault(track.asset_id, track)
    rows = [orjson.loads(line) for line in out.read_bytes().splitlines()]
    tracks = [row for row in rows if "asset_id" in row]
    assert tracks
    assert "query_rank" in tracks[0]
    for row in tracks:
        assert Track.from_dict(row) == found[row["asset_id"]]
    for row in rows:
        if "asset_id" not in row:
            with pytest.raises(InvalidParameterError, match=r"Track\.asset_id"):
                Track.from_dict(row)


@pytest.mark.parametrize(
    ("path", "value"),
    WRONG_TYPES,
    ids=[f"{_dotted(path)}={value!r}" for path, value in WRONG_TYPES],
)
def test_from_dict_names_the_wrong_field(path: tuple[str | int, ...], value: object) -> None:
    """A field of the wrong type raises InvalidParameterError whose parameter is its path."""
    with pytest.raises(InvalidParameterError) as caught:
        SearchResponse.from_dict(_with(path, value))
    expected = "SearchResponse." + _dotted(path)
    assert caught.value.parameter.startswith(expected)
    assert expected in str(caught.value)


@pytest.mark.parametrize("path", DOCUMENTED_FIELDS, ids=_dotted)
def test_from_dict_names_the_missing_field(path: tuple[str | int, ...]) -> None:
    """A missing field raises InvalidParameterError naming it, and saying it is missing."""
    with pytest.raises(InvalidParameterError, match="missing") as caught:
        SearchResponse.from_dict(_without(path))
    assert caught.value.parameter == "SearchResponse." + _dotted(path)


@pytest.mark.parametrize(
    ("make", "says"),
    [
        (lambda: Track.from_dict({**track_json(), "bpm": "120"}), "Track.bpm: expected a number"),
        (lambda: Track.from_dict({**track_json(), "asset_id": 7}), "Track.asset_id: expected a"),
        (lambda: Track.from_dict(["1"]), "Track: expected an object, got list"),  # type: ignore[arg-type]
        (lambda: SearchMeta.from_dict({"total": 1}), "SearchMeta.limit: required field missing"),
        (lambda: ArtistSummary.from_dict({"name": 1}), "ArtistSummary.name: expected a string"),
        (lambda: AlbumSummary.from_dict(None), "AlbumSummary: expected an object"),  # type: ignore[arg-type]
    ],
)
def test_from_dict_error_says_which_field_and_why(make: Callable[[], object], says: str) -> None:
    """The error of each model's from_dict reads 'invalid <Model>.<field>: <what is wrong>'."""
    with pytest.raises(InvalidParameterError) as caught:
        make()
    assert f"invalid {says}" in str(caught.value)
    assert isinstance(caught.value, ValueError)


def test_from_dict_names_every_bad_field() -> None:
    """Several bad fields: the first is the parameter, the message names the others too."""
    data = track_json()
    data.update(bpm="120", score=None)
    with pytest.raises(InvalidParameterError) as caught:
        Track.from_dict(data)
    assert caught.value.parameter == "Track.bpm"
    assert "Track.score" in str(caught.value)


def test_the_fast_reader_knows_every_integer_field() -> None:
    """`_convert` mends whole floats in exactly the models' int fields (a field added to a
    model with type int is mended too, or this fails)."""
    import typing

    from audioscape_async import _convert

    for cls, names in _convert._INTEGERS.items():
        hints = typing.get_type_hints(cls)
        assert names == tuple(name for name in _convert.json_fields(cls) if hints[name] is int)
    nested = {name: (kind, many) for name, kind, many in _convert._NESTED}
    hints = typing.get_type_hints(SearchResponse)
    for name in _convert.json_fields(SearchResponse):
        kind = hints[name]
        many = typing.get_origin(kind) is tuple
        model = typing.get_args(kind)[0] if many else kind
        if _convert._INTEGERS[model]:
            assert nested.pop(name) == (model, many)
    assert not nested
