"""The documented contract: headers, body validation, error bodies, the answer's shape."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from audioscape_async import _constants as c
from audioscape_async.emulator import DEMO_API_KEY, EmulatorServer, create_app
from tests.emulator.support import search


def test_answer_has_exactly_the_documented_shape(http: httpx.Client) -> None:
    """A search answers tracks, artists, albums and meta with the documented fields and types."""
    response = search(http, {"query": "upbeat summer vibes", "limit": 5})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    body = response.json()
    assert set(body) == {"tracks", "artists", "albums", "meta"}
    assert len(body["tracks"]) == 5
    for track in body["tracks"]:
        assert set(track) == {
            "asset_id", "name", "artist", "album", "duration", "genre", "bpm", "score",
        }  # fmt: skip
        assert isinstance(track["asset_id"], str)
        assert track["asset_id"].isdigit()
        for text in ("name", "artist", "album", "genre"):
            assert isinstance(track[text], str)
            assert track[text]
        for number in ("duration", "bpm", "score"):
            assert isinstance(track[number], (int, float))
            assert not isinstance(track[number], bool)
        assert 0 <= track["score"] <= 1
    for artist in body["artists"]:
        assert set(artist) == {"name", "track_count"}
        assert isinstance(artist["track_count"], int)
    for album in body["albums"]:
        assert set(album) == {"name", "artist", "track_count"}
    meta = body["meta"]
    assert set(meta) == {"total", "limit", "offset", "search_method", "matched_artist"}
    assert meta["limit"] == 5
    assert meta["offset"] == 0
    assert meta["total"] >= 5
    assert meta["search_method"] in c.SEARCH_METHODS
    assert meta["matched_artist"] is None


def test_limit_and_offset_default_to_20_and_0(http: httpx.Client) -> None:
    """Without limit and offset, a search returns the first 20 tracks."""
    body = search(http, {"query": "chill lo-fi beats"}).json()
    assert body["meta"]["limit"] == c.DEFAULT_LIMIT == 20
    assert body["meta"]["offset"] == c.DEFAULT_OFFSET == 0
    assert len(body["tracks"]) == 20


_NULLABLE_PATHS = [
    ("query",),
    ("limit",),
    ("offset",),
    ("filters",),
    ("filters", "genres"),
    ("filters", "duration"),
    ("filters", "duration", "min"),
    ("filters", "duration", "max"),
    ("filters", "min_play_count"),
    ("filters", "min_likes"),
    ("filters", "created_after"),
]


@pytest.mark.parametrize("path", _NULLABLE_PATHS, ids=".".join)
def test_null_is_a_400_naming_the_field_for_every_field(
    http: httpx.Client, path: tuple[str, ...]
) -> None:
    """null is refused like any wrong type, with the same wording, in every field."""
    body: dict[str, Any] = {"query": "jazz"}
    node = body
    for name in path[:-1]:
        node = node.setdefault(name, {})
    node[path[-1]] = None
    response = search(http, body)
    assert response.status_code == 400
    message = response.json()["error"]
    assert ".".join(path) in message
    assert message.endswith("got null")


@pytest.mark.parametrize(("field", "value"), [("limit", 27.0), ("offset", 40.0), ("limit", 1e1)])
def test_integral_numbers_are_integers(http: httpx.Client, field: str, value: float) -> None:
    """A JSON number with an integral value (27.0, 1e1) is accepted as that integer."""
    response = search(http, {"query": "jazz", field: value})
    assert response.status_code == 200
    assert response.json()["meta"][field] == int(value)
    assert isinstance(response.json()["meta"][field], int)


@pytest.mark.parametrize("field", ["limit", "offset"])
def test_fractional_numbers_are_a_400_naming_the_field(http: httpx.Client, field: str) -> None:
    """27.5 is not an integer: 400, and the message names the field and the value."""
    response = search(http, {"query": "jazz", field: 27.5})
    assert response.status_code == 400
    assert response.json()["error"].startswith(f"Invalid field: {field} must be an integer")
    assert "27.5" in response.json()["error"]


def test_an_offset_past_json_integers_is_a_400(http: httpx.Client) -> None:
    """An offset past 2**53 - 1 (the largest exact JSON integer) is refused, not a 500."""
    response = search(http, {"query": "jazz", "offset": 2**64})
    assert response.status_code == 400
    assert "offset" in response.json()["error"]


def test_an_empty_duration_range_matches_nothing(http: httpx.Client) -> None:
    """A duration min above its max is a valid request whose range holds no track."""
    response = search(http, {"query": "jazz", "filters": {"duration": {"min": 90, "max": 60}}})
    assert response.status_code == 200
    assert response.json()["tracks"] == []
    assert response.json()["meta"]["total"] == 0


@pytest.mark.parametrize("limit", [1, 100])
def test_limit_bounds_are_accepted(http: httpx.Client, limit: int) -> None:
    """Limits 1 and 100 are allowed and honoured."""
    body = search(http, {"query": "rock", "limit": limit}).json()
    assert len(body["tracks"]) == limit


def test_unknown_fields_are_ignored(http: httpx.Client) -> None:
    """Unknown top-level and filter fields don't change or refuse the answer."""
    plain = search(http, {"query": "jazz", "filters": {"min_likes": 1}}).json()
    extra = search(
        http, {"query": "jazz", "mode": "x", "filters": {"min_likes": 1, "colour": "red"}}
    ).json()
    assert extra == plain


def test_missing_query_is_the_documented_400(http: httpx.Client) -> None:
    """A body without query answers exactly {"error": "Missing required field: query"}."""
    response = search(http, {"limit": 5})
    assert response.status_code == 400
    assert response.json() == {"error": "Missing required field: query"}


_BAD_BODIES: list[tuple[Any, str]] = [
    ({"query": ""}, "Missing required field: query"),
    ({"query": "   "}, "Missing required field: query"),
    ({"query": 5}, "query"),
    ({"query": ["jazz"]}, "query"),
    ({"query": "x", "limit": 0}, "limit"),
    ({"query": "x", "limit": 101}, "limit"),
    ({"query": "x", "limit": -1}, "limit"),
    ({"query": "x", "limit": "10"}, "limit"),
    ({"query": "x", "limit": 10.5}, "limit"),
    ({"query": "x", "limit": True}, "limit"),
    ({"query": "x", "offset": -1}, "offset"),
    ({"query": "x", "offset": 1.5}, "offset"),
    ({"query": "x", "offset": False}, "offset"),
    ({"query": "x", "filters": "pop"}, "filters"),
    ({"query": "x", "filters": []}, "filters"),
    ({"query": "x", "filters": {"genres": "pop"}}, "filters.genres"),
    ({"query": "x", "filters": {"genres": [1]}}, "filters.genres"),
    ({"query": "x", "filters": {"genres": [""]}}, "filters.genres"),
    ({"query": "x", "filters": {"duration": 60}}, "filters.duration"),
    ({"query": "x", "filters": {"duration": {"min": "1"}}}, "filters.duration.min"),
    ({"query": "x", "filters": {"duration": {"max": -5}}}, "filters.duration.max"),
    ({"query": "x", "filters": {"duration": {"min": True}}}, "filters.duration.min"),
    ({"query": "x", "filters": {"min_play_count": -1}}, "filters.min_play_count"),
    ({"query": "x", "filters": {"min_play_count": "10"}}, "filters.min_play_count"),
    ({"query": "x", "filters": {"min_likes": True}}, "filters.min_likes"),
    ({"query": "x", "filters": {"created_after": "2024-13-01"}}, "filters.created_after"),
    ({"query": "x", "filters": {"created_after": "2023-02-29"}}, "filters.created_after"),
    ({"query": "x", "filters": {"created_after": "20240101"}}, "filters.created_after"),
    ({"query": "x", "filters": {"created_after": "2024-1-1"}}, "filters.created_after"),
    ({"query": "x", "filters": {"created_after": 2024}}, "filters.created_after"),
    (["jazz"], "JSON object"),
    ("jazz", "JSON object"),
]


@pytest.mark.parametrize(("body", "named"), _BAD_BODIES, ids=[repr(b) for b, _ in _BAD_BODIES])
def test_invalid_body_is_a_400_naming_the_field(http: httpx.Client, body: Any, named: str) -> None:
    """Each invalid body answers 400 with an error message that names the field."""
    response = search(http, body)
    assert response.status_code == 400
    error = response.json()
    assert set(error) == {"error"}
    assert named in error["error"]


@pytest.mark.parametrize(
    "content", [b"{query: jazz", b"[" * 5000, b'{"query": "x", "limit": 1' + b"0" * 5000 + b"}"]
)
def test_body_that_is_not_json_is_a_400(http: httpx.Client, content: bytes) -> None:
    """A body that does not parse (malformed, nested past the parser's limit, a number out of
    range) is refused with a clear message, not a 500."""
    response = http.post("/search", content=content, headers={"content-type": "application/json"})
    assert response.status_code == 400
    assert response.json() == {"error": "Request body must be valid JSON"}


@pytest.mark.parametrize("content_type", [None, "text/plain", "application/x-www-form-urlencoded"])
def test_content_type_must_be_json(http: httpx.Client, content_type: str | None) -> None:
    """A request not declared application/json is refused with 400 naming Content-Type."""
    headers = {"content-type": content_type} if content_type else {}
    response = http.post("/search", content=b'{"query": "jazz"}', headers=headers)
    assert response.status_code == 400
    assert "Content-Type must be application/json" in response.json()["error"]


def test_content_type_parameters_are_accepted(http: httpx.Client) -> None:
    """application/json with a charset parameter (any case) is fine."""
    response = http.post(
        "/search",
        content=b'{"query": "jazz"}',
        headers={"content-type": "Application/JSON; charset=utf-8"},
    )
    assert response.status_code == 200


def test_oversized_body_is_a_413(http: httpx.Client) -> None:
    """A body over the size limit is refused with 413, not read whole."""
    response = search(http, {"query": "x" * 100_000})
    assert response.status_code == 413
    assert "too large" in response.json()["error"]


def test_missing_api_key_is_the_documented_401(live: EmulatorServer) -> None:
    """No x-api-key header answers exactly {"error": "Invalid API key"}."""
    response = httpx.post(live.url + "/search", json={"query": "jazz"})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid API key"}


def test_unknown_api_key_is_the_documented_401(live: EmulatorServer) -> None:
    """An unknown key answers 401 even for an otherwise invalid body."""
    response = httpx.post(live.url + "/search", json={}, headers={"x-api-key": "sk-wrong"})
    assert response.status_code == 401
    assert response.json() == {"error": "Invalid API key"}


def test_only_the_configured_keys_are_accepted() -> None:
    """An app given its own keys accepts those and no longer the demo key."""
    app = create_app(tracks=50, api_keys=("alpha", "beta"))
    with EmulatorServer(app) as server:
        for key, status in (("alpha", 200), ("beta", 200), (DEMO_API_KEY, 401)):
            response = httpx.post(
                server.url + "/search", json={"query": "jazz"}, headers={"x-api-key": key}
            )
            assert response.status_code == status


def test_every_answer_carries_a_request_id(http: httpx.Client, live: EmulatorServer) -> None:
    """200, 400, 401, 404, 405, fault and admin answers all carry a distinct x-request-id."""
    answers = [
        search(http),
        search(http, {"limit": 1}),
        httpx.post(live.url + "/search", json={"query": "x"}),
        http.get("/nowhere"),
        http.get("/search"),
        search(http, x_emulator_fault="500"),
        search(http, x_emulator_fault="503"),
        http.get(live.root_url + "/_emulator/state"),
    ]
    ids = [answer.headers.get("x-request-id") for answer in answers]
    assert all(ids), ids
    assert len(set(ids)) == len(ids)


def test_request_ids_follow_from_the_seed() -> None:
    """Two emulators with one seed give the same request ids; another seed gives others."""

    def ids(seed: int) -> list[str]:
        with EmulatorServer(create_app(tracks=20, seed=seed)) as server:
            return [
                httpx.post(
                    server.url + "/search", json={"query": "x"}, headers={"x-api-key": DEMO_API_KEY}
                ).headers["x-request-id"]
                for _ in range(3)
            ]

    assert ids(1) == ids(1)
    assert ids(1) != ids(2)


def test_unknown_path_and_method_answer_json_errors(http: httpx.Client) -> None:
    """Other paths answer 404 and GET on search answers 405, both as JSON errors."""
    missing = http.post("/other", json={"query": "x"})
    assert missing.status_code == 404
    assert missing.json() == {"error": "Not Found"}
    wrong_method = http.get("/search")
    assert wrong_method.status_code == 405
    assert wrong_method.headers["allow"] == "POST"


def test_search_is_served_only_at_the_documented_path(live: EmulatorServer) -> None:
    """The endpoint lives at /developer/v1/search, not at the bare /search."""
    response = httpx.post(
        live.root_url + "/search", json={"query": "x"}, headers={"x-api-key": live.api_key}
    )
    assert response.status_code == 404
    assert live.url.endswith("/developer/v1")
