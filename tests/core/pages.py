"""Pages for the decode, convert and model tests: answers with one field broken, any page.

`DOCUMENTED_FIELDS` is every field of a one-track, one-artist, one-album answer
(`tests.helpers.page_json`), as a path; `without` and `changed` give that answer
with one of them removed or set to another value, and `dotted` writes a path as
the SDK's errors name it (``tracks[0].bpm``). `pages` draws any page the models
can hold, and `answered` is the page a real `AsyncClient` returns for a body.
"""

from __future__ import annotations

import copy
from typing import Any

import httpx
import orjson
from hypothesis import strategies as st

from audioscape_async import AlbumSummary, ArtistSummary, SearchMeta, SearchResponse, Track
from tests.helpers import MockAPI, open_client, page_json, track_json

FieldPath = tuple[str | int, ...]


def without(path: FieldPath) -> dict[str, Any]:
    """The default one-track answer with the field at `path` removed."""
    body = page_json(["1"])
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    del parent[path[-1]]
    return body


def changed(path: FieldPath, value: object) -> dict[str, Any]:
    """The default one-track answer with the field at `path` set to `value`."""
    body = copy.deepcopy(page_json(["1"]))
    parent: Any = body
    for key in path[:-1]:
        parent = parent[key]
    parent[path[-1]] = value
    return body


def dotted(path: FieldPath) -> str:
    """`path` as the SDK's messages write it: ``tracks[0].bpm``."""
    text = ""
    for key in path:
        text += f"[{key}]" if isinstance(key, int) else f".{key}"
    return text.lstrip(".")


#: Every documented field of the default answer, by path.
DOCUMENTED_FIELDS: list[FieldPath] = [
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

#: A documented field and a value of the wrong type for it.
WRONG_TYPES: list[tuple[FieldPath, object]] = [
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

WRONG_TYPE_IDS = [f"{dotted(path)}={value!r}" for path, value in WRONG_TYPES]


async def answered(body: object, **headers: str) -> SearchResponse:
    """The page an `AsyncClient` returns when the API answers 200 with `body` (bytes as is)."""
    content = body if isinstance(body, bytes) else orjson.dumps(body)
    api = MockAPI(httpx.Response(200, content=content, headers=headers))
    async with open_client(api, max_retries=0) as client:
        return await client.search("q")


# -- any page the models can hold ----------------------------------------------------------

_text = st.text(max_size=8)
_number = st.floats(allow_nan=False, allow_infinity=False)
_tracks = st.builds(Track, _text, _text, _text, _text, _number, _text, _number, _number)
_metas = st.builds(
    SearchMeta, st.integers(), st.integers(), st.integers(), _text, st.none() | _text
)
pages = st.builds(
    SearchResponse,
    st.lists(_tracks, max_size=4).map(tuple),
    st.lists(st.builds(ArtistSummary, _text, st.integers()), max_size=3).map(tuple),
    st.lists(st.builds(AlbumSummary, _text, _text, st.integers()), max_size=3).map(tuple),
    _metas,
)


def as_whole_floats(value: Any) -> Any:
    """`value` with every integer a float can hold exactly written as a float (20 as 20.0)."""
    if isinstance(value, dict):
        return {key: as_whole_floats(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_whole_floats(item) for item in value]
    if type(value) is int and abs(value) <= 2**53:
        return float(value)
    return value


#: A page at the edges: huge and negative integers, -0.0, 1e308, non-ASCII text.
BIG = SearchResponse(
    (Track("1", "Épica", "A", "B", 1e308, "x", -0.0, 2.0**60),),
    (ArtistSummary("A", 2**64),),
    (AlbumSummary("B", "A", -(2**70)),),
    SearchMeta(10**30, 2**53 + 1, 0, "semantic", None),
)
