"""Search quality and mechanics: ranking, artists, filters, paging, determinism, the cache."""

from __future__ import annotations

import datetime as dt
import time
from collections import Counter
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from audioscape_async.emulator import (
    Catalog,
    CatalogTrack,
    Emulator,
    EmulatorServer,
    create_app,
    generate_catalog,
)
from audioscape_async.emulator import _defaults as d
from tests.emulator.support import SEED, search


@pytest.fixture(scope="module")
def emulator(catalog: Catalog) -> Emulator:
    """An in-process emulator over the session catalog (no HTTP, for speed)."""
    emulator: Emulator = create_app(catalog=catalog, seed=SEED).state.emulator
    return emulator


def walk(emulator: Emulator, query: str, **options: Any) -> Iterator[dict[str, Any]]:
    """Every track of a search, page by page, as the endpoint answers them."""
    offset = 0
    while True:
        page = emulator.search(query, limit=100, offset=offset, **options)
        yield from page["tracks"]
        offset += 100
        if offset >= page["meta"]["total"]:
            return


def top_tracks(emulator: Emulator, catalog: Catalog, query: str, count: int) -> list[CatalogTrack]:
    answer = emulator.search(query, limit=count)
    return [catalog.get(t["asset_id"]) for t in answer["tracks"]]  # type: ignore[misc]


_EXAMPLES: dict[str, Callable[[CatalogTrack], bool]] = {
    "upbeat summer vibes": lambda t: (
        bool({"upbeat", "happy", "energetic"} & set(t.moods)) and t.setting in ("summer", "beach")
    ),
    "dark cinematic tension": lambda t: (
        t.genre in ("cinematic", "orchestral") and bool({"dark", "tense"} & set(t.moods))
    ),
    "chill lo-fi beats": lambda t: t.genre == "lo-fi" and bool({"chill", "relaxed"} & set(t.moods)),
    "dark cinematic boss tension": lambda t: (
        t.genre in ("cinematic", "orchestral")
        and t.setting == "boss-battle"
        and bool({"dark", "tense"} & set(t.moods))
    ),
}


@pytest.mark.parametrize("query", list(_EXAMPLES))
def test_documented_example_queries_put_fitting_tracks_first(
    emulator: Emulator, catalog: Catalog, query: str
) -> None:
    """The documented example queries rank tracks of the asked mood, genre and setting first."""
    top = top_tracks(emulator, catalog, query, 10)
    assert all(_EXAMPLES[query](track) for track in top), [
        (t.name, t.genre, t.moods, t.setting) for t in top
    ]


def test_tempo_words_pull_bpm(emulator: Emulator, catalog: Catalog) -> None:
    """ "upbeat" ranks faster tracks first than "chill" does."""
    fast = top_tracks(emulator, catalog, "upbeat", 20)
    slow = top_tracks(emulator, catalog, "chill", 20)
    assert min(t.bpm for t in fast) > max(t.bpm for t in slow)


def test_scores_fall_and_ties_go_to_the_lower_asset_id(emulator: Emulator) -> None:
    """Scores are in 0..1, never rise down the list, and equal scores are ordered by asset id."""
    tracks = list(walk(emulator, "upbeat summer vibes"))
    keys = [(-t["score"], int(t["asset_id"])) for t in tracks]
    assert keys == sorted(keys)
    assert all(0 < t["score"] <= 1 for t in tracks)


def test_semantic_is_the_default_method(emulator: Emulator) -> None:
    """Searches answer with search_method "semantic" unless told otherwise."""
    assert emulator.search("jazz")["meta"]["search_method"] == "semantic"


def test_keyword_fallback_matches_words(emulator: Emulator, catalog: Catalog) -> None:
    """With semantic search off, results are the tracks that carry the query's words."""
    answer = emulator.search("midnight", semantic=False, limit=100)
    assert answer["meta"]["search_method"] == "text"
    assert answer["meta"]["total"] > 0
    for item in answer["tracks"]:
        track = catalog.get(item["asset_id"])
        assert track is not None
        assert "midnight" in f"{track.name} {track.album} {track.artist}".lower()


def test_app_with_semantic_off_answers_text(catalog: Catalog) -> None:
    """create_app(semantic=False) makes every answer a keyword one."""
    emulator: Emulator = create_app(catalog=catalog, semantic=False).state.emulator
    assert emulator.search("chill lo-fi beats")["meta"]["search_method"] == "text"


def test_catalog_artist_comes_first(emulator: Emulator, catalog: Catalog) -> None:
    """Naming a catalog artist puts all their tracks first and sets matched_artist."""
    artist = catalog.artists[7]
    own = sum(1 for t in catalog if t.artist == artist)
    for query, semantic in ((artist, True), (f"songs by {artist.upper()}", True), (artist, False)):
        answer = emulator.search(query, limit=100, semantic=semantic)
        assert answer["meta"]["matched_artist"] == artist
        tracks = list(walk(emulator, query, semantic=semantic))
        assert {t["artist"] for t in tracks[:own]} == {artist}
        assert all(t["artist"] != artist for t in tracks[own:])
        assert answer["artists"][0] == {"name": artist, "track_count": own}


def test_style_table_artist_gets_sound_alikes(emulator: Emulator, catalog: Catalog) -> None:
    """An artist outside the catalog but in the style table gets tracks in their style."""
    answer = emulator.search("music like hans zimmer", limit=10)
    assert answer["meta"]["matched_artist"] == "Hans Zimmer"
    top = [catalog.get(t["asset_id"]) for t in answer["tracks"]]
    assert all(t is not None and t.genre in ("cinematic", "orchestral") for t in top)
    daft = emulator.search("Daft Punk", limit=10)
    assert daft["meta"]["matched_artist"] == "Daft Punk"
    for item in daft["tracks"]:
        track = catalog.get(item["asset_id"])
        assert track is not None
        assert "funky" in track.moods or track.genre in ("house", "electronic", "funk")


def test_mood_queries_match_no_artist(emulator: Emulator) -> None:
    """A query naming no artist answers matched_artist null."""
    assert emulator.search("epic orchestral")["meta"]["matched_artist"] is None


def test_query_that_matches_nothing_is_empty(emulator: Emulator) -> None:
    """A query with no known word answers total 0 and empty lists, not an error."""
    answer = emulator.search("qwzxv plorf")
    assert answer["tracks"] == answer["artists"] == answer["albums"] == []
    assert answer["meta"]["total"] == 0


def test_groups_count_the_whole_result_set(emulator: Emulator) -> None:
    """artists and albums count every matched track, not the page, by count then name."""
    query = "chill lo-fi beats"
    tracks = list(walk(emulator, query))
    answer = emulator.search(query, limit=1)
    by_artist = Counter(t["artist"] for t in tracks)
    expected = sorted(by_artist.items(), key=lambda kv: (-kv[1], kv[0]))[: d.GROUP_LIMIT]
    assert [(a["name"], a["track_count"]) for a in answer["artists"]] == expected
    by_album = Counter((t["album"], t["artist"]) for t in tracks)
    expected_albums = sorted(by_album.items(), key=lambda kv: (-kv[1], kv[0]))[: d.GROUP_LIMIT]
    assert [((a["name"], a["artist"]), a["track_count"]) for a in answer["albums"]] == (
        expected_albums
    )


_FILTERS: list[dict[str, Any]] = [
    {"genres": ["lo-fi", "jazz"]},
    {"genres": ["LO-FI"]},
    {"genres": []},
    {"duration": {"min": 60, "max": 120.5}},
    {"duration": {"max": 90}},
    {"min_play_count": 5000},
    {"min_likes": 50},
    {"created_after": "2024-06-30"},
    {"genres": ["lo-fi"], "min_likes": 3, "created_after": "2021-01-01", "duration": {"min": 100}},
    {"genres": ["no-such-genre"]},
]


def _passes(track: CatalogTrack, filters: dict[str, Any]) -> bool:
    genres = {g.lower() for g in filters.get("genres") or []}
    duration = filters.get("duration", {})
    created = filters.get("created_after")
    return (
        (not genres or track.genre in genres)
        and track.duration >= duration.get("min", 0)
        and track.duration <= duration.get("max", float("inf"))
        and track.play_count >= filters.get("min_play_count", 0)
        and track.likes >= filters.get("min_likes", 0)
        and (created is None or track.created >= dt.date.fromisoformat(created))
    )


@pytest.mark.parametrize("filters", _FILTERS, ids=[repr(f) for f in _FILTERS])
def test_filters_match_a_brute_force_scan(
    emulator: Emulator, catalog: Catalog, filters: dict[str, Any]
) -> None:
    """A filtered search is exactly the unfiltered result minus tracks failing the filters."""
    query = "chill lo-fi beats"
    unfiltered = [t["asset_id"] for t in walk(emulator, query)]
    expected = [a for a in unfiltered if _passes(catalog.get(a), filters)]  # type: ignore[arg-type]
    got = [t["asset_id"] for t in walk(emulator, query, filters=filters)]
    assert got == expected
    assert emulator.search(query, filters=filters)["meta"]["total"] == len(expected)


@settings(max_examples=25)
@given(
    min_likes=st.none() | st.integers(0, 400),
    min_plays=st.none() | st.integers(0, 20_000),
    low=st.none() | st.floats(40, 240),
    span=st.floats(0, 200),
    day=st.none() | st.dates(dt.date(2018, 6, 1), dt.date(2026, 6, 1)),
)
def test_random_filters_match_a_brute_force_scan(
    emulator: Emulator,
    catalog: Catalog,
    min_likes: int | None,
    min_plays: int | None,
    low: float | None,
    span: float,
    day: dt.date | None,
) -> None:
    """Any combination of filter values selects exactly the tracks a scan selects."""
    filters: dict[str, Any] = {}
    if min_likes is not None:
        filters["min_likes"] = min_likes
    if min_plays is not None:
        filters["min_play_count"] = min_plays
    if low is not None:
        filters["duration"] = {"min": low, "max": low + span}
    if day is not None:
        filters["created_after"] = day.isoformat()
    query = "dark cinematic tension"
    expected = [a["asset_id"] for a in walk(emulator, query)]
    expected = [a for a in expected if _passes(catalog.get(a), filters)]  # type: ignore[arg-type]
    assert [t["asset_id"] for t in walk(emulator, query, filters=filters)] == expected


def test_pages_are_stable_and_disjoint_over_http(http: httpx.Client) -> None:
    """Walking every page twice yields the same tracks, each once, adding up to total."""

    def walk_http() -> list[str]:
        seen: list[str] = []
        offset = 0
        while True:
            body = search(http, {"query": "epic boss battle", "limit": 100, "offset": offset})
            meta = body.json()["meta"]
            seen += [t["asset_id"] for t in body.json()["tracks"]]
            offset += 100
            if offset >= meta["total"]:
                assert len(seen) == meta["total"]
                return seen

    first = walk_http()
    assert len(first) == len(set(first)) > 100
    assert walk_http() == first
    beyond = search(http, {"query": "epic boss battle", "offset": len(first)}).json()
    assert beyond["tracks"] == []
    assert beyond["meta"]["total"] == len(first)


def test_same_seed_same_catalog_and_answers() -> None:
    """A seed fixes the catalog and every answer; another seed changes them."""
    first, again, other = (generate_catalog(500, s) for s in (3, 3, 4))
    assert list(first) == list(again)
    assert list(first) != list(other)
    answers = [
        create_app(catalog=cat).state.emulator.search("dark cinematic tension", limit=50)
        for cat in (first, again)
    ]
    assert answers[0] == answers[1]


def test_replace_catalog_serves_the_new_catalog(catalog: Catalog) -> None:
    """After replace_catalog, answers (even cached ones) come from the new catalog."""
    emulator: Emulator = create_app(catalog=catalog).state.emulator
    before = emulator.search("chill lo-fi beats")
    smaller = generate_catalog(300, 99)
    emulator.replace_catalog(smaller)
    after = emulator.search("chill lo-fi beats")
    assert after["meta"]["total"] < before["meta"]["total"]
    assert all(smaller.get(t["asset_id"]) is not None for t in after["tracks"])
    emulator.reset()
    assert emulator.search("chill lo-fi beats") == before


def _deep_page_timing(tracks: int) -> tuple[float, float]:
    emulator: Emulator = create_app(catalog=generate_catalog(tracks, 1)).state.emulator
    started = time.perf_counter()
    first = emulator.search("upbeat summer vibes", limit=100)
    first_time = time.perf_counter() - started
    assert first["meta"]["total"] > 5_000
    started = time.perf_counter()
    page_50 = emulator.search("upbeat summer vibes", limit=100, offset=4_900)
    deep_time = time.perf_counter() - started
    assert len(page_50["tracks"]) == 100
    assert page_50["meta"]["total"] == first["meta"]["total"]
    return first_time, deep_time


def test_deep_page_of_100k_catalog_is_served_from_the_cache() -> None:
    """Page 50 of a 100,000-track catalog costs a slice of the cached ranking, not a re-rank."""
    first_time, deep_time = _deep_page_timing(100_000)
    assert deep_time < 0.05
    assert deep_time < first_time / 5


@pytest.mark.soak
def test_deep_page_of_a_million_tracks_is_fast() -> None:
    """Page 50 of a 1,000,000-track catalog answers well under a second after the first page."""
    _first_time, deep_time = _deep_page_timing(1_000_000)
    assert deep_time < 0.1


def test_deep_page_over_http_is_fast(http: httpx.Client) -> None:
    """Over HTTP, a deep page of a cached query answers about as fast as page 1."""
    search(http, {"query": "dark cinematic tension", "limit": 100})
    started = time.perf_counter()
    response = search(http, {"query": "dark cinematic tension", "limit": 100, "offset": 3_000})
    assert response.status_code == 200
    assert time.perf_counter() - started < 0.5


def test_live_server_answers_like_the_in_process_emulator(
    http: httpx.Client, live: EmulatorServer, emulator: Emulator
) -> None:
    """The HTTP answer equals Emulator.search's answer for the same request."""
    body = {"query": "retro racing", "limit": 7, "offset": 3, "filters": {"min_likes": 2}}
    over_http = search(http, body).json()
    direct = emulator.search("retro racing", limit=7, offset=3, filters={"min_likes": 2})
    assert over_http == direct
