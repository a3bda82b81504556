"""`_convert`: mappings become models by one set of rules, fast or exact, naming what is wrong.

Two readers, `structure` (msgspec, in C) and `structure_slowly` (cattrs), take each
field's JSON type only, read a whole float as an integer and ignore unknown keys;
the exact one names every bad field by path. The models' `from_dict` goes through
them and raises `InvalidParameterError` naming the first bad field.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from types import MappingProxyType
from typing import Any

import msgspec
import orjson
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from audioscape_async import (
    AlbumSummary,
    ArtistSummary,
    AsyncClient,
    InvalidParameterError,
    SearchMeta,
    SearchResponse,
    Track,
)
from audioscape_async._convert import ShapeError, structure, structure_slowly
from audioscape_async._decode import decode_search_response
from audioscape_async.emulator import EmulatorServer
from tests.core.pages import (
    BIG,
    DOCUMENTED_FIELDS,
    WRONG_TYPE_IDS,
    WRONG_TYPES,
    FieldPath,
    as_whole_floats,
    changed,
    dotted,
    pages,
    without,
)
from tests.helpers import full_repr, page_json, track_json

# -- the two readers: the same rules ---------------------------------------------------------


@given(page=pages, whole=st.booleans())
@example(page=BIG, whole=True)
def test_both_readers_read_any_page_alike(page: SearchResponse, whole: bool) -> None:
    """`structure` and `structure_slowly` give the same page, with the same types, from its
    JSON mapping, however its integers are written (20 or 20.0)."""
    data = as_whole_floats(page.to_dict()) if whole else page.to_dict()
    fast = structure(data, SearchResponse)
    exact = structure_slowly(data, SearchResponse, "response")
    assert full_repr(fast) == full_repr(exact) == full_repr(page)


@pytest.mark.parametrize(("path", "value"), WRONG_TYPES, ids=WRONG_TYPE_IDS)
def test_both_readers_refuse_a_wrong_type(path: FieldPath, value: object) -> None:
    """What one reader refuses the other refuses too; the exact one names the field under the
    caller's path."""
    data = changed(path, value)
    with pytest.raises(msgspec.ValidationError):  # it says no more than that
        structure(data, SearchResponse)
    with pytest.raises(ShapeError) as caught:
        structure_slowly(data, SearchResponse, "response")
    assert caught.value.problems[0][0].startswith(f"response.{dotted(path)}")


def test_the_exact_reader_names_every_problem() -> None:
    """Each bad field is one (path, message) pair; the message says what was expected."""
    meta = {**page_json()["meta"], "total": "x", "limit": None}
    with pytest.raises(ShapeError) as caught:
        structure_slowly(meta, SearchMeta, "meta")
    assert caught.value.problems == [
        ("meta.total", "expected an integer, got str 'x'"),
        ("meta.limit", "expected an integer, got NoneType None"),
    ]
    assert str(caught.value) == "; ".join(f"{m} @ {p}" for p, m in caught.value.problems)
    with pytest.raises(ShapeError) as caught:
        structure_slowly([meta], SearchMeta, "meta")
    assert caught.value.problems == [("meta", "expected an object, got list")]


def test_any_mapping_reads_like_a_dict() -> None:
    """A read-only mapping, at the top or inside, reads as the dict it holds would."""
    body = page_json(["1", "2"])
    nested = {**body, "tracks": [MappingProxyType(track) for track in body["tracks"]]}
    expected = decode_search_response(orjson.dumps(body))
    assert structure(MappingProxyType(nested), SearchResponse) == expected
    assert structure_slowly(MappingProxyType(nested), SearchResponse, "r") == expected
    assert SearchResponse.from_dict(MappingProxyType(nested)) == expected
    assert Track.from_dict(MappingProxyType(track_json("7"))).asset_id == "7"


# -- from_dict: the models read their own to_dict, and crawl rows ----------------------


@given(page=pages, whole_floats=st.booleans())
@example(page=BIG, whole_floats=True)
def test_from_dict_round_trips_every_model(page: SearchResponse, whole_floats: bool) -> None:
    """Each model's from_dict(to_dict()) is equal, with the same types (20.0 reads as 20)."""
    body = page.to_dict()
    data: dict[str, Any] = as_whole_floats(body) if whole_floats else body
    back = SearchResponse.from_dict(data)
    assert back == page
    assert full_repr(back) == full_repr(page)
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
    ids=WRONG_TYPE_IDS,
)
def test_from_dict_names_the_wrong_field(path: tuple[str | int, ...], value: object) -> None:
    """A field of the wrong type raises InvalidParameterError whose parameter is its path."""
    with pytest.raises(InvalidParameterError) as caught:
        SearchResponse.from_dict(changed(path, value))
    expected = "SearchResponse." + dotted(path)
    assert caught.value.parameter.startswith(expected)
    assert expected in str(caught.value)


@pytest.mark.parametrize("path", DOCUMENTED_FIELDS, ids=dotted)
def test_from_dict_names_the_missing_field(path: tuple[str | int, ...]) -> None:
    """A missing field raises InvalidParameterError naming it, and saying it is missing."""
    with pytest.raises(InvalidParameterError, match="missing") as caught:
        SearchResponse.from_dict(without(path))
    assert caught.value.parameter == "SearchResponse." + dotted(path)


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
