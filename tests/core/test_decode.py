"""`_decode`: an answer is read strictly, or refused naming the field, with its request id.

Every documented field must be there with its JSON type (an integer written ``20.0``
is still an integer); a field missing or of the wrong type is an
`APIResponseValidationError` whose message names the field's path
(``tracks[0].bpm``) and which carries the request id; fields the documentation does
not list are ignored; and nothing else ever escapes, whatever the body. The first
tests go through a real `AsyncClient` (over `httpx.MockTransport`), the others call
`decode_search_response` directly.
"""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

import attrs
import httpx
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from audioscape_async import APIResponseValidationError, SearchResponse
from audioscape_async._convert import Page
from audioscape_async._decode import decode_search_response
from tests.core.pages import (
    BIG,
    DOCUMENTED_FIELDS,
    WRONG_TYPE_IDS,
    WRONG_TYPES,
    answered,
    as_whole_floats,
    changed,
    dotted,
    pages,
    without,
)
from tests.helpers import MockAPI, full_repr, ok, open_client, page_json, track_json

#: No test here waits out a retry backoff (the `sleeps` fixture records them).
pytestmark = pytest.mark.usefixtures("sleeps")


# -- through a client: what the caller gets -------------------------------------------


async def _decode_error(body: object, **headers: str) -> APIResponseValidationError:
    with pytest.raises(APIResponseValidationError) as caught:
        await answered(body, **headers)
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
    page = await answered(body)
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
    page = await answered(body)
    assert page.tracks[0].asset_id == "1"
    assert page.meta.total == 1


@pytest.mark.anyio
async def test_whole_numbers_written_as_floats_are_integers() -> None:
    """An integer field written as 20.0 decodes as the integer 20."""
    body = page_json(["1"])
    body["meta"].update(total=20.0, limit=20.0, offset=0.0)
    page = await answered(body)
    assert (page.meta.total, page.meta.limit, page.meta.offset) == (20, 20, 0)
    assert isinstance(page.meta.total, int)


@pytest.mark.anyio
@pytest.mark.parametrize("path", DOCUMENTED_FIELDS, ids=dotted)
async def test_missing_documented_field_is_named(path: tuple[str | int, ...]) -> None:
    """A documented field missing from the answer raises APIResponseValidationError naming it."""
    raised = await _decode_error(without(path))
    assert dotted(path) in str(raised)


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("path", "value"),
    WRONG_TYPES,
    ids=WRONG_TYPE_IDS,
)
async def test_wrong_type_is_named(path: tuple[str | int, ...], value: object) -> None:
    """A documented field of the wrong type raises APIResponseValidationError naming it."""
    raised = await _decode_error(changed(path, value))
    assert dotted(path) in str(raised)


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
    body = changed(("meta", "total"), "many")
    raised = await _decode_error(body)
    assert raised.body == body
    assert raised.response is not None


@pytest.mark.anyio
@pytest.mark.parametrize("header", ["x-request-id", "request-id"])
async def test_request_id_is_kept_on_the_page_but_not_in_its_repr(header: str) -> None:
    """The response's request id header is kept on the page, left out of repr and equality."""
    page = await answered(page_json(["1"]), **{header: "req-0042"})
    assert page.request_id == "req-0042"
    assert "req-0042" not in repr(page)
    plain = await answered(page_json(["1"]))
    assert plain.request_id is None
    assert page == plain


@pytest.mark.anyio
async def test_matched_artist_may_be_null() -> None:
    """meta.matched_artist is a string or null, as documented."""
    assert (await answered(page_json(["1"], matched_artist=None))).meta.matched_artist is None
    assert (await answered(page_json(["1"], matched_artist="Y"))).meta.matched_artist == "Y"


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
        st.builds(changed, st.sampled_from(DOCUMENTED_FIELDS), _json).map(orjson.dumps),
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
    ids=[f"{dotted(path)}={value!r:.20}" for path, _ in FIELD_KINDS for value, _ in JSON_VALUES],
)
def test_each_field_takes_only_its_json_type(
    path: tuple[str | int, ...], kind: str, value: object, accepted_by: frozenset[str]
) -> None:
    """Each field accepts exactly its JSON type, decoded exactly; anything else names the field."""
    content = orjson.dumps(changed(path, value))
    if kind not in accepted_by:
        with pytest.raises(APIResponseValidationError) as caught:
            decode_search_response(content, "req-1")
        assert dotted(path) in str(caught.value)
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
    body = changed(("meta", "total"), value)
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
    assert list(Page.__annotations__) == from_json == list(page_json())


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


@given(page=pages, whole_floats=st.booleans(), ascii_only=st.booleans())
@example(page=BIG, whole_floats=True, ascii_only=False)
@example(page=BIG, whole_floats=False, ascii_only=True)
def test_a_page_round_trips_through_json(
    page: SearchResponse, whole_floats: bool, ascii_only: bool
) -> None:
    """decode(encode(page)) == page, with the same types and values, however it is written."""
    body = page.to_dict()
    content = json.dumps(as_whole_floats(body) if whole_floats else body, ensure_ascii=ascii_only)
    decoded = decode_search_response(content.encode(), "req-9")
    assert decoded == page
    assert full_repr(decoded) == full_repr(page)  # 20 and 20.0 are equal, but not the same type
    assert decoded.request_id == "req-9"


# -- the exchange: told by the caller, never by the body --------------------------------


@pytest.mark.parametrize("whole", [False, True], ids=["msgspec", "fallback"])
def test_the_exchange_comes_from_the_caller_never_from_the_body(whole: bool) -> None:
    """Request id, status, headers, elapsed and attempts are the caller's, on the fast path and
    on the fallback (an integer written 20.0); body keys of the same names set nothing."""
    body: dict[str, Any] = page_json(["1"])
    forged = {"request_id": "forged", "status_code": 500, "headers": {"x-request-id": "forged"}}
    body.update(forged, elapsed=9.0, attempts=99, cache_status="hit")
    if whole:
        body["meta"]["total"] = 1.0
    headers = httpx.Headers({"x-request-id": "req-5"})
    page = decode_search_response(
        orjson.dumps(body), "req-5", status_code=203, headers=headers, elapsed=0.25, attempts=2
    )
    assert (page.request_id, page.status_code, page.elapsed, page.attempts) == (
        "req-5", 203, 0.25, 2,
    )  # fmt: skip
    assert page.headers is not None
    assert page.headers["x-request-id"] == "req-5"
    assert page.cache_status is None
    assert type(page.meta.total) is int
    assert page == decode_search_response(orjson.dumps(page_json(["1"])))
