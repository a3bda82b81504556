"""Catalogs: the seeded generator, and loading a user's JSONL or CSV file."""

from __future__ import annotations

import datetime as dt
import time
from pathlib import Path

import attrs
import orjson
import pytest

from audioscape_async.emulator import (
    CATALOG_COLUMNS,
    Catalog,
    CatalogError,
    CatalogTrack,
    create_app,
    generate_catalog,
    load_catalog,
)
from audioscape_async.emulator import _vocabulary as vocab


def test_generated_catalog_is_deterministic(catalog: Catalog) -> None:
    """The same size and seed give identical tracks; the default seed is 0."""
    again = generate_catalog(len(catalog), 0)
    assert list(again) == list(catalog)
    assert list(generate_catalog(100)) == list(generate_catalog(100, 0))


def test_generated_tracks_are_well_formed(catalog: Catalog) -> None:
    """Asset ids are unique ascending digit strings; every field is in its documented range."""
    tracks = list(catalog)
    ids = [int(t.asset_id) for t in tracks]
    assert ids == sorted(set(ids))
    for track in tracks:
        assert track.asset_id.isdigit()
        assert track.genre in vocab.GENRES
        assert 45 <= track.duration <= 240
        assert 40 <= track.bpm <= 210
        assert track.play_count >= 10
        assert 0 <= track.likes <= track.play_count
        assert dt.date(2019, 1, 1) <= track.created <= dt.date(2025, 12, 31)
        assert len(track.moods) == 2
        assert len(set(track.moods)) == 2
        assert all(m in vocab.MOODS for m in track.moods)
        assert track.instrument in vocab.INSTRUMENTS
        assert track.setting in vocab.SETTINGS


def test_titles_are_built_from_the_tracks_descriptors(catalog: Catalog) -> None:
    """Every title uses a word of the track's moods or setting, so names read like the music."""
    for track in list(catalog)[:2000]:
        words = set(vocab.SETTING_WORDS[track.setting or ""])
        for mood in track.moods:
            words |= set(vocab.MOOD_WORDS[mood][0]) | set(vocab.MOOD_WORDS[mood][1])
        assert any(word in track.name for word in words), track


def test_artists_have_albums_and_genres_spread(catalog: Catalog) -> None:
    """Each album belongs to one artist, and the catalog spans every genre."""
    album_artist: dict[str, set[str]] = {}
    for track in catalog:
        album_artist.setdefault(f"{track.artist}/{track.album}", set()).add(track.artist)
    assert all(len(artists) == 1 for artists in album_artist.values())
    assert set(catalog.genres) == set(vocab.GENRES)
    assert {t.genre for t in catalog} == set(vocab.GENRES)
    assert len(catalog.artists) == len(set(catalog.artists)) > 100


def test_get_finds_tracks_by_asset_id(catalog: Catalog) -> None:
    """Catalog.get finds a track by asset id and answers None for unknown ones."""
    track = catalog[123]
    assert catalog.get(track.asset_id) == track
    assert catalog.get("1") is None
    assert catalog.get("abc") is None
    assert catalog[-1] == list(catalog)[-1]
    with pytest.raises(IndexError):
        catalog[len(catalog)]


def test_generation_of_100k_is_fast() -> None:
    """100,000 tracks generate in well under the few seconds allowed."""
    started = time.perf_counter()
    big = generate_catalog(100_000, 2)
    assert time.perf_counter() - started < 3
    assert len(big) == 100_000


@pytest.mark.soak
def test_generation_of_a_million_tracks_stays_fast() -> None:
    """A million tracks generate within seconds, with unique ids."""
    started = time.perf_counter()
    big = generate_catalog(1_000_000, 0)
    assert time.perf_counter() - started < 30
    assert len(big) == 1_000_000
    assert big[0].asset_id != big[-1].asset_id


@pytest.mark.parametrize("tracks", [-1, 1.5, True, "10"])
def test_bad_sizes_are_refused(tracks: object) -> None:
    """A negative, fractional or non-int size raises CatalogError."""
    with pytest.raises(CatalogError, match="tracks"):
        generate_catalog(tracks)  # type: ignore[arg-type]


def test_empty_catalog_answers_nothing() -> None:
    """A zero-track catalog is valid and every search answers total 0."""
    emulator = create_app(tracks=0).state.emulator
    assert emulator.search("jazz")["meta"]["total"] == 0


@pytest.mark.parametrize("suffix", [".jsonl", ".csv"])
def test_written_catalog_loads_back_identically(tmp_path: Path, suffix: str) -> None:
    """Catalog.write then load_catalog gives back the same tracks, in either format."""
    original = generate_catalog(300, 8)
    path = tmp_path / f"catalog{suffix}"
    original.write(path)
    assert list(load_catalog(path)) == list(original)


def test_minimal_jsonl_gets_defaults_and_derived_descriptors(tmp_path: Path) -> None:
    """Only the required columns are needed; descriptors come from the name and genre."""
    rows = [
        {"asset_id": "20", "name": "Dark Boss Fight", "artist": "Me", "genre": "cinematic",
         "duration": 95},
        {"asset_id": 10, "name": "Sunny Beach Party", "artist": "Me", "genre": "pop",
         "duration": 120.5, "bpm": 118, "play_count": 7, "likes": 2, "created": "2024-02-29",
         "moods": ["happy"], "setting": "beach", "extra": "ignored"},
    ]  # fmt: skip
    path = tmp_path / "mine.jsonl"
    path.write_bytes(b"\n".join(orjson.dumps(r) for r in rows) + b"\n\n")
    loaded = load_catalog(path)
    first, second = list(loaded)
    assert first == CatalogTrack(
        asset_id="10", name="Sunny Beach Party", artist="Me", album="Singles", genre="pop",
        duration=120.5, bpm=118, play_count=7, likes=2, created=dt.date(2024, 2, 29),
        moods=("happy",), instrument=first.instrument, setting="beach",
    )  # fmt: skip
    assert first.instrument in vocab.GENRE_PROFILES["pop"].instruments
    assert second.asset_id == "20"
    assert "dark" in second.moods
    assert second.setting == "boss-battle"
    assert second.bpm == sum(vocab.GENRE_PROFILES["cinematic"].bpm) // 2
    assert second.created == dt.date(2006, 9, 1)
    answer = create_app(catalog=loaded).state.emulator.search("dark boss battle")
    assert answer["tracks"][0]["asset_id"] == "20"


def test_csv_catalog_loads(tmp_path: Path) -> None:
    """A CSV with a header row loads; moods are separated by '|'."""
    path = tmp_path / "mine.csv"
    path.write_text(
        "asset_id,name,artist,genre,duration,moods,likes\n"
        "5,Rainy Cafe,Ann,lo-fi,80,chill|sad,3\n"
        "6,Metro,Bob,hip-hop,99.5,,\n",
        encoding="utf-8",
    )
    first, second = load_catalog(path)
    assert first.moods == ("chill", "sad")
    assert first.likes == 3
    assert second.likes == 0
    assert second.moods


_GOOD_ROW = {"asset_id": "1", "name": "A", "artist": "B", "genre": "pop", "duration": 1}


def _row(**changes: object) -> str:
    """A JSONL line: the good row with some columns changed (None removes one)."""
    row = {**_GOOD_ROW, **changes}
    return orjson.dumps({k: v for k, v in row.items() if v is not None}).decode()


_BAD_JSONL = [
    (_row(duration=None), "'duration' is required"),
    (_row(asset_id="x1"), "'asset_id'"),
    (_row(asset_id="01"), "leading zeros"),
    (_row(name=""), "'name'"),
    (_row(duration=-1), "'duration'"),
    (_row(duration="long"), "'duration'"),
    (_row(bpm=0), "'bpm'"),
    (_row(likes=1.5), "'likes'"),
    (_row(created="2023-02-30"), "'created'"),
    (_row(moods=["a", "b", "c"]), "'moods'"),
    (_row(moods=[1]), "'moods'"),
    ("[1, 2]", "JSON object"),
    ("{nope", "not valid JSON"),
]


@pytest.mark.parametrize(("line", "what"), _BAD_JSONL)
def test_bad_jsonl_rows_name_line_and_column(tmp_path: Path, line: str, what: str) -> None:
    """A bad row raises CatalogError naming the file's line and the column at fault."""
    path = tmp_path / "bad.jsonl"
    path.write_text(_row(asset_id="2") + "\n" + line + "\n", encoding="utf-8")
    with pytest.raises(CatalogError) as info:
        load_catalog(path)
    message = str(info.value)
    assert message.startswith(f"{path}:2: ")
    assert what in message


def test_bad_csv_cell_names_its_line(tmp_path: Path) -> None:
    """A CSV error names the physical line of the bad row and its column."""
    path = tmp_path / "bad.csv"
    path.write_text(
        "asset_id,name,artist,genre,duration\n1,A,B,pop,60\n2,C,D,rock,soon\n", encoding="utf-8"
    )
    with pytest.raises(CatalogError, match=r"bad\.csv:3: column 'duration'"):
        load_catalog(path)


def test_csv_without_required_columns_is_refused(tmp_path: Path) -> None:
    """A CSV header lacking required columns names them."""
    path = tmp_path / "bad.csv"
    path.write_text("asset_id,name\n1,A\n", encoding="utf-8")
    with pytest.raises(CatalogError, match="artist, genre, duration"):
        load_catalog(path)


def test_duplicate_asset_ids_name_both_lines(tmp_path: Path) -> None:
    """Two rows with one asset id are refused, naming where each is."""
    row = '{"asset_id": "7", "name": "A", "artist": "B", "genre": "pop", "duration": 1}'
    path = tmp_path / "dup.jsonl"
    path.write_text(f"{row}\n{row.replace('A', 'Z')}\n", encoding="utf-8")
    with pytest.raises(CatalogError, match=r"dup\.jsonl:2: duplicate asset_id '7'.*dup\.jsonl:1"):
        load_catalog(path)


@pytest.mark.parametrize(("name", "content", "what"), [
    ("empty.jsonl", "\n", "no tracks"),
    ("catalog.xml", "<x/>", "unknown catalog format"),
])  # fmt: skip
def test_unusable_files_are_refused(tmp_path: Path, name: str, content: str, what: str) -> None:
    """An empty file or an unknown format raises CatalogError."""
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    with pytest.raises(CatalogError, match=what):
        load_catalog(path)


def test_catalog_columns_are_documented() -> None:
    """CATALOG_COLUMNS lists exactly the CatalogTrack fields a file may hold, in order."""
    assert list(CATALOG_COLUMNS) == [field.name for field in attrs.fields(CatalogTrack)]
