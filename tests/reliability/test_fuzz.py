"""Hostile input: whatever the server answers and whatever the caller passes, the SDK stays typed.

Answers are fuzzed through an `httpx.MockTransport` (fast, no sockets): any
status, any bytes, any JSON, the documented shape bent field by field, pages
of thousands of tracks. Every call ends in a fully typed `SearchResponse` or
an `AudioScapeError` subclass, never anything else. Parameters are fuzzed the
same way: an invalid value is an `InvalidParameterError` before any request.
Unicode queries travel to the emulator over a real socket and back.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st

from audioscape_async import (
    AlbumSummary,
    APIResponseValidationError,
    APIStatusError,
    ArtistSummary,
    AsyncClient,
    AudioScapeError,
    InvalidParameterError,
    RateLimitError,
    SearchMeta,
    SearchResponse,
    Track,
)
from audioscape_async._constants import MAX_JSON_INT
from audioscape_async.emulator import EmulatorServer
from tests.helpers import API_KEY, MockAPI, ids, open_client, page_json

# -- what a typed result is ----------------------------------------------------------


def _is_number(value: object) -> bool:
    return type(value) is float and math.isfinite(value)


def assert_typed(page: object) -> None:
    """`page` is a SearchResponse whose every field has its declared type, all the way down."""
    assert type(page) is SearchResponse
    assert type(page.tracks) is tuple
    assert type(page.artists) is tuple
    assert type(page.albums) is tuple
    for track in page.tracks:
        assert type(track) is Track
        for name in ("asset_id", "name", "artist", "album", "genre"):
            assert type(getattr(track, name)) is str
        for name in ("duration", "bpm", "score"):
            assert _is_number(getattr(track, name))
    for artist in page.artists:
        assert type(artist) is ArtistSummary
        assert type(artist.name) is str
        assert type(artist.track_count) is int
    for album in page.albums:
        assert type(album) is AlbumSummary
        assert type(album.name) is str
        assert type(album.artist) is str
        assert type(album.track_count) is int
    meta = page.meta
    assert type(meta) is SearchMeta
    assert type(meta.total) is int
    assert type(meta.limit) is int
    assert type(meta.offset) is int
    assert type(meta.search_method) is str
    assert meta.matched_artist is None or type(meta.matched_artist) is str
    assert page.request_id is None or type(page.request_id) is str


async def _search_against(
    response: httpx.Response | Callable[[httpx.Request], httpx.Response],
) -> object:
    """One search (no retries) against a transport that answers `response`; the outcome."""
    api = MockAPI(response)
    try:
        async with open_client(api, max_retries=0) as client:
            return await client.search("anything")
    except AudioScapeError as error:
        return error


# -- answers: any bytes, any JSON, any status --------------------------------------------

json_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(2**63), max_value=2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(max_size=20),
)
FIELD_NAMES = [
    "tracks",
    "artists",
    "albums",
    "meta",
    "asset_id",
    "name",
    "artist",
    "album",
    "duration",
    "genre",
    "bpm",
    "score",
    "track_count",
    "total",
    "limit",
    "offset",
    "search_method",
    "matched_artist",
]
json_values = st.recursive(
    json_scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.dictionaries(
            st.one_of(st.sampled_from(FIELD_NAMES), st.text(max_size=8)), inner, max_size=6
        ),
    ),
    max_leaves=25,
)


@pytest.mark.anyio
@given(
    body=st.binary(max_size=512),
    content_type=st.sampled_from(["application/json", "text/html", ""]),
)
@example(body=b"", content_type="application/json")
@example(body=b"\xff\xfe{", content_type="application/json")
@example(body=b"1e400", content_type="application/json")
@example(body=b'{"tracks": []}' * 2, content_type="application/json")
async def test_any_bytes_in_a_200_end_typed(body: bytes, content_type: str) -> None:
    """Any bytes as a 200 answer: a typed page or an APIResponseValidationError, nothing else."""
    headers = {"content-type": content_type} if content_type else {}
    outcome = await _search_against(httpx.Response(200, content=body, headers=headers))
    if not isinstance(outcome, SearchResponse):
        assert type(outcome) is APIResponseValidationError, repr(outcome)
    else:
        assert_typed(outcome)


@pytest.mark.anyio
@given(value=json_values)
async def test_any_json_in_a_200_ends_typed(value: object) -> None:
    """Any JSON value as a 200 answer: a typed page or an APIResponseValidationError."""
    outcome = await _search_against(httpx.Response(200, content=json.dumps(value).encode()))
    if isinstance(outcome, SearchResponse):
        assert_typed(outcome)
    else:
        assert type(outcome) is APIResponseValidationError, repr(outcome)
        assert outcome.body == value


@pytest.mark.anyio
@given(
    status=st.integers(min_value=100, max_value=599),
    body=st.one_of(
        st.binary(max_size=256), json_values.map(lambda value: json.dumps(value).encode())
    ),
    retry_after=st.one_of(st.none(), st.text(max_size=30), st.integers(-5, 10**12).map(str)),
    request_id=st.one_of(
        st.none(),
        st.text(st.characters(min_codepoint=33, max_codepoint=126), min_size=1, max_size=40),
    ),
)
@example(status=429, body=b"", retry_after="nan", request_id=None)
@example(status=429, body=b"", retry_after="inf", request_id=None)
@example(status=429, body=b"", retry_after="Wed, 21 Oct 2015 07:28:00", request_id=None)
@example(status=503, body=b"<html><title>" + b"x" * 10_000, retry_after=None, request_id=None)
@example(status=302, body=b"", retry_after=None, request_id=None)
async def test_any_status_and_headers_end_typed(
    status: int, body: bytes, retry_after: str | None, request_id: str | None
) -> None:
    """Any status, body, Retry-After and request id: the right typed outcome for that status."""
    headers = {}
    if retry_after is not None:
        assume(retry_after.isprintable() and retry_after.isascii())
        headers["retry-after"] = retry_after
    if request_id is not None:
        headers["x-request-id"] = request_id
    outcome = await _search_against(httpx.Response(status, content=body, headers=headers))
    if 200 <= status < 300:
        if isinstance(outcome, SearchResponse):
            assert_typed(outcome)
            assert outcome.request_id == (request_id or None)
        else:
            assert type(outcome) is APIResponseValidationError, repr(outcome)
        return
    assert isinstance(outcome, APIStatusError), repr(outcome)
    assert outcome.status_code == status
    assert outcome.request_id == (request_id or None)
    assert len(str(outcome)) < 5_000
    if status == 429:
        assert isinstance(outcome, RateLimitError)
        wait = outcome.retry_after
        assert wait is None or (math.isfinite(wait) and wait >= 0)


# -- the documented shape, bent one field at a time ------------------------------------------

#: Every documented field: its path in a one-track, one-artist, one-album page, and its kind.
FIELDS: list[tuple[tuple[str | int, ...], str]] = [
    *[(("tracks", 0, name), "str") for name in ("asset_id", "name", "artist", "album", "genre")],
    *[(("tracks", 0, name), "number") for name in ("duration", "bpm", "score")],
    (("artists", 0, "name"), "str"),
    (("artists", 0, "track_count"), "int"),
    (("albums", 0, "name"), "str"),
    (("albums", 0, "artist"), "str"),
    (("albums", 0, "track_count"), "int"),
    (("meta", "total"), "int"),
    (("meta", "limit"), "int"),
    (("meta", "offset"), "int"),
    (("meta", "search_method"), "str"),
    (("meta", "matched_artist"), "str?"),
    (("tracks",), "list"),
    (("artists",), "list"),
    (("albums",), "list"),
    (("meta",), "object"),
]

#: Values of every JSON type, for retyping; each tagged with the kinds that accept it.
RETYPED: list[tuple[object, set[str]]] = [
    (None, {"str?"}),
    (True, set()),
    (False, set()),
    (0, {"int", "number"}),
    (7.0, {"int", "number"}),
    (7.5, {"number"}),
    ("7", {"str", "str?"}),
    ("", {"str", "str?"}),
    ([], {"list"}),
    ([1, 2], set()),
    ({}, set()),
    ({"a": 1}, set()),
]
HUGE: dict[str, list[object]] = {
    "str": ["x" * 300_000, "\U0001f3b5" * 50_000],
    "str?": ["y" * 300_000],
    "number": [1.7976931348623157e308, 2**63 - 1, 10**30],
    "int": [2**63 - 1, 2**64 - 1, 10**30],
}
NEGATIVE: dict[str, list[object]] = {
    "number": [-1, -1.5, -1.7976931348623157e308],
    "int": [-1, -(2**63)],
}


def _set(body: dict[str, Any], path: tuple[str | int, ...], value: object) -> None:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value


def _delete(body: dict[str, Any], path: tuple[str | int, ...]) -> None:
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    del target[path[-1]]


@st.composite
def bent_pages(draw: st.DrawFn) -> tuple[dict[str, Any], bool | None, str]:
    """A documented page with one field bent; whether the SDK must accept it (None: either)."""
    body = page_json(["1837070127"])
    path, kind = draw(st.sampled_from(FIELDS))
    how = draw(st.sampled_from(["remove", "null", "retype", "huge", "negative", "extra"]))
    if how == "remove":
        _delete(body, path)
        return body, False, f"remove {path}"
    if how == "null":
        _set(body, path, None)
        return body, kind == "str?", f"null {path}"
    if how == "retype":
        value, accepted_by = draw(st.sampled_from(RETYPED))
        _set(body, path, value)
        return body, kind in accepted_by, f"retype {path} to {value!r}"
    if how == "huge":
        values = HUGE.get(kind)
        if not values:
            _set(body, path, list(range(5_000)) if kind == "list" else {"k" * 10_000: 1})
            return body, False, f"huge wrong {path}"
        value = draw(st.sampled_from(values))
        _set(body, path, value)
        return body, True, f"huge {path}"
    if how == "negative":
        values = NEGATIVE.get(kind)
        if not values:
            _set(body, path, -1)
            return body, False, f"negative {path}"
        _set(body, path, draw(st.sampled_from(values)))
        # Negative counts and durations are nonsense, yet typed: either outcome is clean.
        return body, None, f"negative {path}"
    # extra: unknown keys at the level of the field, of every JSON type
    extra = draw(
        st.dictionaries(st.text(min_size=1, max_size=10), json_values, min_size=1, max_size=4)
    )
    target: Any = body
    for step in path[:-1]:
        target = target[step]
    if isinstance(target, dict):
        for key, value in extra.items():
            if key not in target:
                target[key] = value
    return body, True, f"extra keys beside {path}"


@pytest.mark.anyio
@settings(suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(bent=bent_pages())
async def test_documented_shape_bent_one_field_at_a_time(
    bent: tuple[dict[str, Any], bool | None, str],
) -> None:
    """Each field removed, nulled, retyped, huge, negative or with extras: accepted iff valid."""
    body, must_accept, how = bent
    outcome = await _search_against(httpx.Response(200, content=json.dumps(body).encode()))
    if isinstance(outcome, SearchResponse):
        assert must_accept is not False, f"{how}: accepted an invalid answer"
        assert_typed(outcome)
    else:
        assert type(outcome) is APIResponseValidationError, f"{how}: {outcome!r}"
        assert must_accept is not True, f"{how}: rejected a valid answer: {outcome}"
        assert len(str(outcome)) < 5_000, "the message stays readable whatever the body"


@pytest.mark.anyio
@pytest.mark.parametrize("count", [1_000, 5_000])
async def test_a_page_of_thousands_of_tracks_decodes(count: int) -> None:
    """A page far larger than the documented maximum still decodes, every track typed."""
    body = page_json(ids(count), total=count, limit=100)
    outcome = await _search_against(httpx.Response(200, content=json.dumps(body).encode()))
    assert_typed(outcome)
    assert isinstance(outcome, SearchResponse)
    assert len(outcome.tracks) == count


@pytest.mark.anyio
async def test_a_walk_over_oversized_pages_delivers_each_track_once() -> None:
    """A server that ignores `limit` and sends 1,500 tracks a page: each track once, then done."""
    catalog = ids(6_000)

    def respond(_request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        offset = body["offset"]
        chunk = catalog[offset : offset + 1_500]
        return httpx.Response(
            200, json=page_json(chunk, total=len(catalog), offset=offset, limit=body["limit"])
        )

    api = MockAPI(respond=respond)
    async with open_client(api, max_retries=0) as client:
        got = [track.asset_id async for track in client.iter_tracks("q", concurrency=4)]
    assert got == catalog
    assert api.calls < len(catalog) // 100  # it moved by what came back, not by what it asked


@pytest.mark.anyio
async def test_a_walk_over_garbage_pages_fails_typed() -> None:
    """A walk whose second page is garbage ends in APIResponseValidationError, nothing else."""
    answers = [
        httpx.Response(200, json=page_json(ids(100), total=1_000)),
        httpx.Response(200, content=b'{"tracks": "nope"}'),
    ]
    api = MockAPI(*answers)
    async with open_client(api, max_retries=0) as client:
        with pytest.raises(APIResponseValidationError):
            async for _ in client.iter_tracks("q"):
                pass


# -- parameters: anything invalid is refused before a request -----------------------------

#: Values of many Python types, valid nowhere or almost nowhere.
anything = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-(10**20), max_value=10**20),
    st.floats(),
    st.text(max_size=10),
    st.binary(max_size=5),
    st.lists(st.integers(), max_size=3),
    st.dictionaries(st.text(max_size=5), st.integers(), max_size=3),
    st.just(object()),
    st.just(float("nan")),
    st.just(...),
)
blank = st.text(st.sampled_from(" \t\n\r\x0b\x0c\u00a0\u2003\u3000\u2028\u200a"), max_size=6)
lone_surrogate = st.tuples(
    st.text(max_size=5),
    st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
    st.text(max_size=5),
).map("".join)


def _valid_int(value: object, low: int, high: int | None) -> bool:
    return type(value) is int and value >= low and (high is None or value <= high)


@pytest.mark.anyio
@given(query=st.one_of(anything.filter(lambda v: not isinstance(v, str)), blank, lone_surrogate))
@example(query="\x00")  # a NUL alone is not blank: it must be sent, not refused
async def test_invalid_query_is_refused_before_sending(query: object) -> None:
    """A query not a string, blank, or not encodable: InvalidParameterError and no request."""
    api = MockAPI()
    async with open_client(api) as client:
        if query == "\x00":
            await client.search(query)
            assert api.calls == 1
            return
        with pytest.raises(InvalidParameterError) as caught:
            await client.search(query)  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterError):
            client.iter_tracks(query)  # type: ignore[arg-type]
        with pytest.raises(InvalidParameterError):
            client.crawl(query)  # type: ignore[arg-type]
    assert caught.value.parameter == "query"
    assert api.calls == 0


@pytest.mark.anyio
@given(name=st.sampled_from(["limit", "offset"]), value=anything)
async def test_any_paging_value_is_sent_or_refused(name: str, value: object) -> None:
    """limit/offset: a valid integer is sent as is; anything else is refused before sending."""
    api = MockAPI()
    valid = _valid_int(value, 1, 100) if name == "limit" else _valid_int(value, 0, MAX_JSON_INT)
    refused: InvalidParameterError | None = None
    async with open_client(api) as client:
        try:
            await client.search("q", **{name: value})  # type: ignore[arg-type]
        except InvalidParameterError as error:
            refused = error
    if refused is not None:
        assert not valid, f"refused a valid {name}={value!r}"
        assert refused.parameter == name
        assert api.calls == 0
    else:
        assert valid, f"sent an invalid {name}={value!r}"
        assert api.bodies[-1][name] == value


@pytest.mark.anyio
@given(
    name=st.sampled_from(["page_size", "max_items", "offset", "concurrency"]),
    value=anything,
    walk=st.sampled_from(["iter_tracks", "iter_pages", "crawl"]),
)
async def test_any_walk_argument_is_checked_when_the_walk_is_made(
    name: str, value: object, walk: str
) -> None:
    """A walk's arguments are checked when it is created: InvalidParameterError, no request."""
    bounds = {
        "page_size": (1, 100),
        "max_items": (1, None),
        "offset": (0, MAX_JSON_INT),
        "concurrency": (1, 64),
    }
    valid = _valid_int(value, *bounds[name]) or (name == "max_items" and value is None)
    api = MockAPI()
    refused: InvalidParameterError | None = None
    async with open_client(api) as client:
        try:
            made = getattr(client, walk)("q", **{name: value})
        except InvalidParameterError as error:
            refused = error
        else:
            await made.aclose()
    assert api.calls == 0
    if refused is not None:
        assert not valid, f"refused a valid {name}={value!r}"
        assert refused.parameter == name
    else:
        assert valid, f"accepted an invalid {name}={value!r}"


filter_values = st.fixed_dictionaries(
    {},
    optional={
        "genres": st.one_of(
            anything, st.lists(st.one_of(st.text(max_size=6), anything), max_size=3)
        ),
        "duration": st.one_of(
            anything,
            st.fixed_dictionaries({}, optional={"min": anything, "max": anything}),
            st.dictionaries(st.text(max_size=4), st.floats(), max_size=2),
        ),
        "min_play_count": anything,
        "min_likes": anything,
        "created_after": st.one_of(anything, st.dates().map(str), st.text(max_size=12)),
        "unknown": anything,
    },
)


@pytest.mark.anyio
@given(filters=st.one_of(filter_values, anything))
@example(filters={"genres": ["pop"], "duration": {"min": 0, "max": 1e9}, "min_likes": 0})
@example(filters={"genres": ["\ud800"]})
@example(filters={"duration": {"min": float("nan")}})
@example(filters={"created_after": "2024-02-30"})
async def test_any_filters_are_sent_or_refused(filters: object) -> None:
    """Arbitrary filters: sent as checked JSON, or InvalidParameterError before any request."""
    api = MockAPI()
    refused: InvalidParameterError | None = None
    async with open_client(api) as client:
        try:
            await client.search("q", filters=filters)  # type: ignore[arg-type]
        except InvalidParameterError as error:
            refused = error
    if refused is not None:
        assert refused.parameter.startswith("filters")
        assert api.calls == 0
        return
    assert api.calls == 1
    sent = api.bodies[0].get("filters", {})
    assert filters is None or isinstance(filters, dict)
    assert set(sent) <= {"genres", "duration", "min_play_count", "min_likes", "created_after"}
    for key in ("min_play_count", "min_likes"):
        if key in sent:
            assert _valid_int(sent[key], 0, MAX_JSON_INT)
    if "genres" in sent:
        assert sent["genres"]
        assert all(isinstance(g, str) and g.strip() for g in sent["genres"])
    if "duration" in sent:
        assert all(math.isfinite(v) and v >= 0 for v in sent["duration"].values())


@given(
    option=st.sampled_from(
        [
            "timeout",
            "max_retries",
            "retry",
            "base_url",
            "api_key",
            "default_headers",
            "rate_limit",
            "transport",
            "http_client",
        ]
    ),
    value=anything,
)
@example(option="default_headers", value={"x-a": "a\r\nx-injected: 1"})
@example(option="default_headers", value={"bad name": "v"})
@example(option="default_headers", value={"x-a": 1})
@example(option="default_headers", value={"content-length": "5"})
@example(option="default_headers", value={"X-API-Key": "other"})
@example(option="api_key", value=" padded ")
@example(option="base_url", value="ftp://example.com")
@example(option="timeout", value=float("nan"))
@example(option="timeout", value=float("inf"))
@example(option="max_retries", value=3.0)
@example(option="max_retries", value=True)
def test_any_constructor_option_is_accepted_or_refused_cleanly(option: str, value: object) -> None:
    """Any value of any constructor option: a client, or an AudioScapeError, never anything else."""
    options: dict[str, Any] = {"api_key": API_KEY, option: value}
    refused: AudioScapeError | None = None
    try:
        AsyncClient(**options)
    except AudioScapeError as error:
        refused = error
    valid = _VALID_OPTION.get(option, _unjudged)(value)
    if refused is None:
        assert valid is not False, f"accepted {option}={value!r}"
    elif isinstance(refused, InvalidParameterError):
        assert valid is not True, f"refused {option}={value!r}: {refused}"
        assert refused.parameter.split(".")[0].split("[")[0] == option
        assert API_KEY not in str(refused)
    else:  # "no API key" is its own message
        assert option == "api_key"
        assert not value


def _is_count(value: object) -> bool:
    return type(value) is int and value >= 0


def _is_timeout(value: object) -> bool:
    if value is None:
        return True
    return type(value) in (int, float) and math.isfinite(value) and value > 0  # type: ignore[arg-type,operator]


def _unjudged(_value: object) -> None:
    return None


#: For the options with a simple rule: is this value valid (None: not judged here)?
_VALID_OPTION: dict[str, Callable[[object], bool | None]] = {
    "timeout": _is_timeout,
    "max_retries": lambda v: v is None or _is_count(v),
    "transport": lambda v: v in ("auto", "httpx", "aiohttp"),
    "retry": lambda v: v is None,
    "rate_limit": lambda v: v is None,
    "http_client": lambda v: v is None,
}


@pytest.mark.anyio
@pytest.mark.parametrize(
    "headers",
    [
        {"x-a": "a\r\nx-injected: 1"},
        {"x-a": "a\nb"},
        {"x-a": "nul\x00"},
        {"bad name": "v"},
        {"": "v"},
        {"x-a": 1},
        {b"x-a": "v"},
        {"content-length": "5"},
        {"Transfer-Encoding": "chunked"},
    ],
)
async def test_headers_that_cannot_go_on_the_wire_are_refused(headers: dict[Any, Any]) -> None:
    """default_headers that would inject a header, break framing or not encode: refused at once."""
    with pytest.raises(InvalidParameterError) as caught:
        AsyncClient(API_KEY, default_headers=headers)
    assert caught.value.parameter.startswith("default_headers")


# -- Unicode over the wire --------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_emulator() -> Iterator[EmulatorServer]:
    """A small emulator (cheap to rank any query) over a real loopback socket."""
    with EmulatorServer(tracks=300, seed=3) as server:
        yield server


unicode_queries = st.text(
    st.characters(codec="utf-8", exclude_categories=["Cs"]), min_size=1, max_size=60
).filter(lambda text: bool(text.strip()))


@pytest.mark.anyio
@settings(max_examples=25)
@given(query=unicode_queries)
@example(query="Ñandú — بحث موسيقي هادئ — 夜のジャズ — 🎵🔥👩‍🎤")
@example(query="שקט \u202e RTL override \u202c")
@example(query="nul\x00inside")
@example(query="\U0010ffff\ufeff zero\u200bwidth")
@example(query="x" * 4_000)
async def test_unicode_queries_round_trip_through_the_emulator(
    small_emulator: EmulatorServer, query: str
) -> None:
    """A query in any script (emoji, RTL, NUL) reaches the server intact and comes back typed."""
    async with AsyncClient(
        small_emulator.api_key, base_url=small_emulator.url, max_retries=0, timeout=10.0
    ) as client:
        page = await client.search(query, limit=3, filters={"genres": [query]})
    assert_typed(page)
    record = small_emulator.emulator.requests[-1]
    assert record.query == query
    assert record.status == 200
