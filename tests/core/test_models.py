"""`_models`: the filters validate where written (and nothing is sent when a call's
arguments break a rule), and a page, once made, is one frozen value for every caller.

How an answer becomes a page is `test_decode.py`; how a mapping becomes a model
(`from_dict`) is `test_convert.py`."""

from __future__ import annotations

import datetime as dt
import inspect
import math
import pickle
from collections.abc import Callable
from typing import Any

import attrs
import httpx
import orjson
import pytest

from audioscape_async import (
    AsyncClient,
    Client,
    DurationRange,
    InvalidParameterError,
    SearchCache,
    SearchFilters,
    SearchResponse,
)
from audioscape_async._decode import decode_search_response
from audioscape_async.emulator import EmulatorServer
from tests.core.pages import answered
from tests.helpers import MockAPI, full_repr, open_client, page_json

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
    page = await answered(page_json(["1"]), **{"x-request-id": "req-7", "x-extra": "a"})
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
    page = await answered(page_json(["1"]), **{"x-request-id": "req-7"})
    back = pickle.loads(pickle.dumps(page))
    assert back == page
    assert full_repr(back) == full_repr(page)
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


def test_a_page_repr_is_one_short_line_of_counts_and_meta() -> None:
    """repr(page) counts tracks, artists and albums and shows the meta, however big the page."""
    body = page_json([str(n) for n in range(25)], total=12_690)
    body["artists"] = [{"name": f"Artist {n}", "track_count": 1} for n in range(25)]
    body["albums"] = [{"name": "One", "artist": "Artist 0", "track_count": 25}]
    page = SearchResponse.from_dict(body)
    assert repr(page) == (
        "SearchResponse(tracks=[25 tracks], artists=[25 artists], albums=[1 album], "
        "meta=SearchMeta(total=12690, limit=20, offset=0, search_method='semantic', "
        "matched_artist=None))"
    )
    assert "Artist 7" not in repr(page)
    assert "Artist 7" in repr(page.artists)
