"""The emulator's music catalog: generated from a seed, or loaded from a file.

Tracks are stored column by column in compact `array`s, with repeated strings
(names, artists, albums, genres, descriptors) kept once in a table and
referenced by number, so a million tracks cost tens of megabytes, not the
gigabyte a dict per track would. Rows are kept in ascending `asset_id`
order, which lets the ranker break ties by asset id for free (a stable sort
over row numbers) and lets `Catalog.get` use a binary search.
"""

from __future__ import annotations

import csv
import datetime as _dt
import itertools
import math
import random
import re
from array import array
from bisect import bisect_left
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import attrs

from audioscape_async import _json

from . import _defaults as d
from . import _vocabulary as v
from ._exceptions import CatalogError


@attrs.frozen
class CatalogTrack:
    """One track of a catalog, with everything the emulator knows about it.

    The API answers with `asset_id`, `name`, `artist`, `album`, `duration`,
    `genre` and `bpm`; filters read `play_count`, `likes` and `created`; the
    semantic ranker reads the descriptors `moods`, `instrument` and `setting`.
    (The SDK's `audioscape_async.Track` is what a client decodes from an answer.)
    """

    asset_id: str
    name: str
    artist: str
    album: str
    genre: str
    duration: float
    bpm: float
    play_count: int = 0
    likes: int = 0
    created: _dt.date = d.DEFAULT_CREATED
    moods: tuple[str, ...] = ()
    instrument: str | None = None
    setting: str | None = None


class _Interner:
    """Assigns each distinct string a small number, in order of first sight."""

    __slots__ = ("ids", "values")

    def __init__(self, initial: Iterable[str] = ()) -> None:
        self.values: list[str] = []
        self.ids: dict[str, int] = {}
        for value in initial:
            self.add(value)

    def add(self, value: str) -> int:
        found = self.ids.get(value)
        if found is None:
            found = self.ids[value] = len(self.values)
            self.values.append(value)
        return found


@attrs.define(slots=True)
class _Columns:
    """Column storage shared by the generator, the loader and the ranker.

    Descriptor tables hold "" at index 0, meaning "none".
    """

    asset_ids: array[int] = attrs.field(factory=lambda: array("q"))
    name_ids: array[int] = attrs.field(factory=lambda: array("I"))
    artist_ids: array[int] = attrs.field(factory=lambda: array("I"))
    album_ids: array[int] = attrs.field(factory=lambda: array("I"))
    genre_ids: array[int] = attrs.field(factory=lambda: array("H"))
    durations: array[float] = attrs.field(factory=lambda: array("d"))
    bpms: array[float] = attrs.field(factory=lambda: array("d"))
    play_counts: array[int] = attrs.field(factory=lambda: array("q"))
    likes: array[int] = attrs.field(factory=lambda: array("q"))
    created: array[int] = attrs.field(factory=lambda: array("I"))
    mood_a: array[int] = attrs.field(factory=lambda: array("H"))
    mood_b: array[int] = attrs.field(factory=lambda: array("H"))
    instrument: array[int] = attrs.field(factory=lambda: array("H"))
    setting: array[int] = attrs.field(factory=lambda: array("H"))
    names: list[str] = attrs.field(factory=list)
    artists: list[str] = attrs.field(factory=list)
    albums: list[str] = attrs.field(factory=list)
    album_artist: array[int] = attrs.field(factory=lambda: array("I"))
    genres: list[str] = attrs.field(factory=list)
    moods: list[str] = attrs.field(factory=lambda: [""])
    instruments: list[str] = attrs.field(factory=lambda: [""])
    settings: list[str] = attrs.field(factory=lambda: [""])
    #: Derived by `finish`: log-scaled play count in 0..1, a small tie-breaker between
    #: equally good matches, and whole bpm capped for tempo lookup tables.
    popularity: array[float] = attrs.field(factory=lambda: array("f"))
    tempo: array[int] = attrs.field(factory=lambda: array("H"))

    def finish(self) -> None:
        """Derive the popularity and tempo columns once every row is in."""
        top = max(self.play_counts, default=0)
        scale = math.log10(top + 1) or 1.0
        self.popularity = array("f", (math.log10(p + 1) / scale for p in self.play_counts))
        cap = d.MAX_TEMPO_BUCKET
        self.tempo = array("H", (min(int(bpm), cap) for bpm in self.bpms))


class Catalog:
    """An immutable music catalog the emulator searches.

    Build one with `generate_catalog`, `load_catalog` or `Catalog.from_tracks`.
    Iterating yields `CatalogTrack`s in ascending asset id order.

        >>> catalog = generate_catalog(100, seed=1)
        >>> len(catalog)
        100
        >>> catalog.get(catalog[0].asset_id) == catalog[0]
        True
    """

    __slots__ = ("_columns", "description")

    def __init__(self, columns: _Columns, description: str) -> None:
        # Private: the public ways in are the three builders named above.
        self._columns = columns
        #: A short human description, e.g. "10,000 generated tracks (seed 0)".
        self.description = description

    @classmethod
    def from_tracks(cls, tracks: Iterable[CatalogTrack], *, description: str = "") -> Catalog:
        """Build a catalog from `CatalogTrack` objects (asset ids must be unique digit strings)."""
        rows = list(tracks)
        for number, track in enumerate(rows, start=1):
            _asset_id_value(track.asset_id, f"track {number}")
        return _build_from_rows(rows, description or f"{len(rows):,} tracks", "track")

    def __len__(self) -> int:
        return len(self._columns.asset_ids)

    def __iter__(self) -> Iterator[CatalogTrack]:
        return (self._track(row) for row in range(len(self)))

    def __getitem__(self, row: int) -> CatalogTrack:
        """The track at `row` (0-based, in asset id order; negative rows count from the end)."""
        size = len(self)
        if not -size <= row < size:
            raise IndexError(f"catalog row {row} out of range (catalog has {size} tracks)")
        return self._track(row % size)

    def __repr__(self) -> str:
        return f"<Catalog {self.description}>"

    def get(self, asset_id: str) -> CatalogTrack | None:
        """The track with this asset id, or None."""
        if not asset_id.isdigit():
            return None
        ids = self._columns.asset_ids
        wanted = int(asset_id)
        row = bisect_left(ids, wanted)
        if row < len(ids) and ids[row] == wanted:
            return self._track(row)
        return None

    @property
    def genres(self) -> tuple[str, ...]:
        """Every genre slug the catalog uses."""
        return tuple(self._columns.genres)

    @property
    def artists(self) -> tuple[str, ...]:
        """Every artist name in the catalog."""
        return tuple(self._columns.artists)

    def write(self, path: str | Path) -> None:
        """Write the catalog as JSONL (".jsonl") or CSV (".csv"), in `load_catalog`'s format."""
        target = Path(path)
        suffix = target.suffix.lower()
        if suffix == ".jsonl":
            with target.open("wb") as out:
                for track in self:
                    out.write(_json.dumps(_track_to_row(track, csv_style=False)) + b"\n")
        elif suffix == ".csv":
            with target.open("w", newline="", encoding="utf-8") as out:
                writer = csv.DictWriter(out, fieldnames=CATALOG_COLUMNS)
                writer.writeheader()
                for track in self:
                    writer.writerow(_track_to_row(track, csv_style=True))
        else:
            raise CatalogError(f"{target}: unknown catalog format (use .jsonl or .csv)")

    def _track(self, row: int) -> CatalogTrack:
        c = self._columns
        moods = tuple(c.moods[m] for m in (c.mood_a[row], c.mood_b[row]) if m)
        return CatalogTrack(
            asset_id=str(c.asset_ids[row]),
            name=c.names[c.name_ids[row]],
            artist=c.artists[c.artist_ids[row]],
            album=c.albums[c.album_ids[row]],
            genre=c.genres[c.genre_ids[row]],
            duration=c.durations[row],
            bpm=number(c.bpms[row]),
            play_count=c.play_counts[row],
            likes=c.likes[row],
            created=_dt.date.fromordinal(c.created[row]),
            moods=moods,
            instrument=c.instruments[c.instrument[row]] or None,
            setting=c.settings[c.setting[row]] or None,
        )


def number(value: float) -> float:
    """A float that is a whole number as an int, so JSON shows 120, not 120.0."""
    return int(value) if value.is_integer() else value


# --------------------------------------------------------------------------- generation


def generate_catalog(tracks: int = d.DEFAULT_TRACKS, seed: int = d.DEFAULT_SEED) -> Catalog:
    """Generate a deterministic catalog of Roblox-style music.

    The same `(tracks, seed)` always gives the same catalog, on any platform.
    A million tracks take a few seconds and under 100 MB.

        >>> generate_catalog(10, seed=7)[0] == generate_catalog(10, seed=7)[0]
        True
    """
    if isinstance(tracks, bool) or not isinstance(tracks, int) or tracks < 0:
        raise CatalogError(f"tracks must be a non-negative integer, got {tracks!r}")
    if isinstance(seed, bool) or not isinstance(seed, int):
        raise CatalogError(f"seed must be an integer, got {seed!r}")
    # Only `random()` is used: its stream is fixed for a seed across Python versions,
    # unlike the helpers built on it.
    rnd = random.Random(seed).random
    cols = _Columns()
    cols.genres = list(v.GENRES)
    cols.moods = ["", *v.MOODS]
    cols.instruments = ["", *v.INSTRUMENTS]
    cols.settings = ["", *v.SETTINGS]
    mood_id = {m: i for i, m in enumerate(cols.moods)}
    setting_id = {s: i for i, s in enumerate(cols.settings)}
    instrument_id = {s: i for i, s in enumerate(cols.instruments)}
    profiles = [
        (
            tuple(mood_id[m] for m in p.moods),
            tuple(instrument_id[i] for i in p.instruments),
            tuple(setting_id[s] for s in p.settings),
            p.bpm,
        )
        for p in v.GENRE_PROFILES.values()
    ]
    n_genres, n_settings = len(cols.genres), len(v.SETTINGS)

    # Artists: distinct "{first} {second}" names, each with a home genre and a signature mood.
    n_combos = len(v.ARTIST_FIRST) * len(v.ARTIST_SECOND)
    n_artists = min(max(1, math.ceil(tracks / d.TRACKS_PER_ARTIST)), n_combos)
    order = _permutation(n_combos, rnd)[:n_artists]
    cols.artists = [
        f"{v.ARTIST_FIRST[k // len(v.ARTIST_SECOND)]} {v.ARTIST_SECOND[k % len(v.ARTIST_SECOND)]}"
        for k in order
    ]
    artist_genre = [int(rnd() * n_genres) for _ in range(n_artists)]
    artist_mood = [_pick(profiles[g][0], rnd) for g in artist_genre]

    # A few artists make most of the music, as on any real platform.
    artist_of = array("I", (int(n_artists * rnd() ** 1.7) for _ in range(tracks)))
    counts = [0] * n_artists
    for a in artist_of:
        counts[a] += 1
    album_first: list[int] = []
    album_count: list[int] = []
    n_album_names = len(v.ALBUM_FIRST) * len(v.ALBUM_SECOND)
    for a in range(n_artists):
        n_albums = min(max(1, round(counts[a] / d.TRACKS_PER_ALBUM)), n_album_names)
        start = int(rnd() * n_album_names)
        album_first.append(len(cols.albums))
        album_count.append(n_albums)
        for k in range(n_albums):
            # 37 is prime to the number of names, so an artist's albums never repeat a name.
            combo = (start + 37 * k) % n_album_names
            first, second = divmod(combo, len(v.ALBUM_SECOND))
            cols.albums.append(f"{v.ALBUM_FIRST[first]} {v.ALBUM_SECOND[second]}")
            cols.album_artist.append(a)

    words = _Interner()
    mood_adjs = [()] + [tuple(words.add(w) for w in v.MOOD_WORDS[m][0]) for m in v.MOODS]
    mood_nouns = [()] + [tuple(words.add(w) for w in v.MOOD_WORDS[m][1]) for m in v.MOODS]
    setting_nouns = [()] + [tuple(words.add(w) for w in v.SETTING_WORDS[s]) for s in v.SETTINGS]
    templates = ("{0} {1}", "{0} {1}", "{0} in the {1}", "{0} {1}")
    word = words.values
    name_ids: dict[tuple[int, int, int], int] = {}
    tempo_shift = [0] + [v.MOOD_TEMPO_SHIFT.get(m, 0) for m in v.MOODS]
    first_day = d.FIRST_CREATED.toordinal()
    span = d.LAST_CREATED.toordinal() - first_day + 1

    append_asset = cols.asset_ids.append
    for row in range(tracks):
        a = artist_of[row]
        g = artist_genre[a] if rnd() < 0.75 else int(rnd() * n_genres)
        p_moods, p_instruments, p_settings, (lo, hi) = profiles[g]
        m1 = artist_mood[a] if g == artist_genre[a] and rnd() < 0.5 else _pick(p_moods, rnd)
        k = int(rnd() * len(p_moods))
        m2 = p_moods[k] if p_moods[k] != m1 else p_moods[(k + 1) % len(p_moods)]
        s = _pick(p_settings, rnd) if rnd() < 0.85 else 1 + int(rnd() * n_settings)
        bpm = lo + rnd() * (hi - lo) + (tempo_shift[m1] + tempo_shift[m2]) / 2
        plays = int(10 ** (1 + 6.3 * rnd() ** 1.6))

        template = int(rnd() * 4)
        if template == 0:
            key = (0, _pick(mood_adjs[m1], rnd), _pick(setting_nouns[s], rnd))
        elif template == 1:
            key = (1, _pick(setting_nouns[s], rnd), _pick(mood_nouns[m1], rnd))
        elif template == 2:
            key = (2, _pick(mood_nouns[m1], rnd), _pick(setting_nouns[s], rnd))
        else:
            key = (3, _pick(mood_adjs[m1], rnd), _pick(mood_nouns[m2], rnd))
        name_id = name_ids.get(key)
        if name_id is None:
            name_id = name_ids[key] = len(cols.names)
            cols.names.append(templates[key[0]].format(word[key[1]], word[key[2]]))

        append_asset(d.ASSET_ID_BASE + row * d.ASSET_ID_STRIDE + int(rnd() * d.ASSET_ID_STRIDE))
        cols.name_ids.append(name_id)
        cols.artist_ids.append(a)
        cols.album_ids.append(album_first[a] + int(rnd() * album_count[a]))
        cols.genre_ids.append(g)
        cols.durations.append(round(45.0 + rnd() * 195.0, 1))
        cols.bpms.append(round(min(max(bpm, lo - 12), hi + 12)))
        cols.play_counts.append(plays)
        cols.likes.append(int(plays * (0.002 + 0.06 * rnd())))
        cols.created.append(first_day + int(rnd() * span))
        cols.mood_a.append(m1)
        cols.mood_b.append(m2)
        cols.instrument.append(_pick(p_instruments, rnd))
        cols.setting.append(s)
    cols.finish()
    return Catalog(cols, f"{tracks:,} generated tracks (seed {seed})")


def _pick(options: Sequence[int], rnd: Any) -> int:
    return options[int(rnd() * len(options))]


def _permutation(n: int, rnd: Any) -> list[int]:
    """Fisher-Yates on `random()` alone, so the order is stable across Python versions."""
    items = list(range(n))
    for i in range(n - 1, 0, -1):
        j = int(rnd() * (i + 1))
        items[i], items[j] = items[j], items[i]
    return items


# --------------------------------------------------------------------------- loading

#: The columns of a catalog file, in the order `Catalog.write` puts them.
#: Required: asset_id, name, artist, genre, duration. The rest are optional.
CATALOG_COLUMNS = (
    "asset_id",
    "name",
    "artist",
    "album",
    "genre",
    "duration",
    "bpm",
    "play_count",
    "likes",
    "created",
    "moods",
    "instrument",
    "setting",
)
_REQUIRED = ("asset_id", "name", "artist", "genre", "duration")
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
#: Moods in a CSV cell are separated by this character ("dark|tense").
CSV_LIST_SEPARATOR = "|"


def load_catalog(path: str | Path) -> Catalog:
    """Load a catalog from a JSONL (one object per line) or CSV (header row) file.

    Columns: `asset_id` (digits, unique), `name`, `artist`, `genre`, `duration`
    (seconds) are required; `album` (default "Singles"), `bpm` (default: the
    middle of the genre's usual tempo, else 120), `play_count`, `likes`
    (default 0), `created` (YYYY-MM-DD, default 2006-09-01), `moods` (up to two;
    a JSON array or "a|b" in CSV), `instrument` and `setting` are optional.
    Missing descriptors are derived from the name and genre. Other columns are
    ignored. A bad row raises `CatalogError` naming the file, line and column.
    """
    source = Path(path)
    suffix = source.suffix.lower()
    try:
        if suffix in (".jsonl", ".ndjson"):
            rows = list(_read_jsonl(source))
        elif suffix == ".csv":
            rows = list(_read_csv(source))
        else:
            raise CatalogError(f"{source}: unknown catalog format (use .jsonl or .csv)")
    except OSError as exc:
        raise CatalogError(f"{source}: cannot read catalog: {exc.strerror or exc}") from None
    if not rows:
        raise CatalogError(f"{source}: the catalog file has no tracks")
    return _build_from_rows(
        [track for _, track in rows],
        f"{len(rows):,} tracks from {source.name}",
        "line",
        [line for line, _ in rows],
        str(source),
    )


def _read_jsonl(source: Path) -> Iterator[tuple[int, CatalogTrack]]:
    with source.open("rb") as lines:
        for line_no, raw in enumerate(lines, start=1):
            if not raw.strip():
                continue
            where = f"{source}:{line_no}"
            try:
                record = _json.loads(raw)
            except _json.JSONError as exc:
                raise CatalogError(f"{where}: not valid JSON ({exc})") from None
            if not isinstance(record, dict):
                raise CatalogError(f"{where}: expected a JSON object per line")
            yield line_no, _parse_row(record, where)


def _read_csv(source: Path) -> Iterator[tuple[int, CatalogTrack]]:
    with source.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        missing = [name for name in _REQUIRED if name not in header]
        if missing:
            raise CatalogError(f"{source}:1: missing column(s) {', '.join(missing)}")
        for record in reader:
            where = f"{source}:{reader.line_num}"
            if None in record:
                raise CatalogError(f"{where}: more cells than header columns")
            cells: dict[str, Any] = {
                key: value for key, value in record.items() if value not in (None, "")
            }
            if "moods" in cells:
                cells["moods"] = [m.strip() for m in cells["moods"].split(CSV_LIST_SEPARATOR)]
            yield reader.line_num, _parse_row(cells, where)


def _parse_row(record: Mapping[str, Any], where: str) -> CatalogTrack:
    def fail(column: str, problem: str) -> CatalogError:
        return CatalogError(f"{where}: column {column!r}: {problem}, got {record.get(column)!r}")

    for column in _REQUIRED:
        if record.get(column) in (None, ""):
            raise CatalogError(f"{where}: column {column!r} is required")

    def text(column: str, default: str | None = None) -> str | None:
        value = record.get(column)
        if value is None:
            return default
        if not isinstance(value, str) or not value.strip():
            raise fail(column, "expected a non-empty string")
        return value.strip()

    def amount(column: str, *, whole: bool) -> float | None:
        value = record.get(column)
        if value is None:
            return None
        if isinstance(value, str):
            try:
                value = float(value) if not whole or not value.strip().isdigit() else int(value)
            except ValueError:
                raise fail(column, "expected a number") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise fail(column, "expected a number")
        if not math.isfinite(value) or value < 0:
            raise fail(column, "expected a non-negative number")
        if whole and value != int(value):
            raise fail(column, "expected a whole number")
        return value

    raw_id = record["asset_id"]
    asset_id = str(raw_id) if isinstance(raw_id, int) and not isinstance(raw_id, bool) else raw_id
    if not isinstance(asset_id, str):
        raise fail("asset_id", "expected a string of digits")
    try:
        _asset_id_value(asset_id, "")
    except CatalogError as exc:
        raise fail("asset_id", str(exc)) from None

    created = d.DEFAULT_CREATED
    raw_created = record.get("created")
    if raw_created is not None:
        if not isinstance(raw_created, str) or not _DATE.fullmatch(raw_created):
            raise fail("created", "expected a date as YYYY-MM-DD")
        try:
            created = _dt.date.fromisoformat(raw_created)
        except ValueError:
            raise fail("created", "expected a real calendar date") from None

    moods = record.get("moods")
    if moods is None:
        moods = []
    if isinstance(moods, str):
        moods = [moods]
    if not isinstance(moods, list) or not all(isinstance(m, str) and m.strip() for m in moods):
        raise fail("moods", "expected a list of non-empty strings")
    if len(moods) > d.MAX_MOODS:
        raise fail("moods", f"expected at most {d.MAX_MOODS} moods")

    genre = text("genre") or ""
    bpm = amount("bpm", whole=False)
    if bpm == 0:
        raise fail("bpm", "expected a positive number")
    profile = v.GENRE_PROFILES.get(genre.casefold())
    default_bpm = sum(profile.bpm) // 2 if profile else 120
    return CatalogTrack(
        asset_id=asset_id,
        name=text("name") or "",
        artist=text("artist") or "",
        album=text("album", d.DEFAULT_ALBUM) or d.DEFAULT_ALBUM,
        genre=genre,
        duration=amount("duration", whole=False) or 0.0,
        bpm=bpm if bpm is not None else default_bpm,
        play_count=int(amount("play_count", whole=True) or 0),
        likes=int(amount("likes", whole=True) or 0),
        created=created,
        moods=tuple(m.strip() for m in moods),
        instrument=text("instrument"),
        setting=text("setting"),
    )


def _asset_id_value(asset_id: str, where: str) -> int:
    prefix = f"{where}: " if where else ""
    if not asset_id.isascii() or not asset_id.isdigit():
        raise CatalogError(f"{prefix}asset_id must be a string of digits, got {asset_id!r}")
    if asset_id != str(int(asset_id)):
        raise CatalogError(f"{prefix}asset_id must not have leading zeros, got {asset_id!r}")
    value = int(asset_id)
    if value >= 2**63:
        raise CatalogError(f"{prefix}asset_id is too large, got {asset_id!r}")
    return value


def _derive(track: CatalogTrack) -> tuple[tuple[str, ...], str | None, str | None]:
    """Descriptors for a track that names none, read from its name and genre."""
    weights: dict[tuple[str, str], float] = {}
    for token in v.tokenize(f"{track.name} {track.genre}"):
        for kind, name, weight in v.QUERY_TERMS.get(token, v.QUERY_TERMS.get(v.stem(token), ())):
            weights[kind, name] = max(weights.get((kind, name), 0.0), weight)

    def best(kind: str, count: int) -> list[str]:
        found = sorted((-w, name) for (k, name), w in weights.items() if k == kind)
        return [name for _, name in found[:count]]

    moods = best("mood", d.MAX_MOODS)
    instruments = best("instrument", 1)
    settings = best("setting", 1)
    profile = v.GENRE_PROFILES.get(track.genre.casefold())
    if profile is not None:
        # Spread tracks of a known genre over its usual sound, by asset id, so
        # name-less descriptors don't collapse onto one mood.
        spread = int(track.asset_id)
        if not moods:
            moods = [profile.moods[spread % len(profile.moods)]]
        if not instruments:
            instruments = [profile.instruments[spread % len(profile.instruments)]]
        if not settings:
            settings = [profile.settings[spread % len(profile.settings)]]
    return (
        tuple(track.moods or moods),
        track.instrument or (instruments[0] if instruments else None),
        track.setting or (settings[0] if settings else None),
    )


def _build_from_rows(
    rows: list[CatalogTrack],
    description: str,
    unit: str,
    positions: Sequence[int] | None = None,
    source: str = "",
) -> Catalog:
    where = [f"{source}:{p}" if source else f"{unit} {p}" for p in positions or ()]
    keyed = sorted(
        ((int(track.asset_id), n) for n, track in enumerate(rows)), key=lambda pair: pair[0]
    )
    for (left, n_left), (right, n_right) in itertools.pairwise(keyed):
        if left == right:
            first = where[n_left] if where else f"{unit} {n_left + 1}"
            second = where[n_right] if where else f"{unit} {n_right + 1}"
            raise CatalogError(
                f"{second}: duplicate asset_id {str(right)!r} (first seen at {first})"
            )

    cols = _Columns()
    names, artists, genres = _Interner(), _Interner(), _Interner()
    albums: dict[tuple[str, int], int] = {}
    moods = _Interner(["", *v.MOODS])
    instruments = _Interner(["", *v.INSTRUMENTS])
    settings = _Interner(["", *v.SETTINGS])
    for asset_value, n in keyed:
        track = rows[n]
        track_moods, instrument, setting = _derive(track)
        if len(track_moods) > d.MAX_MOODS:
            raise CatalogError(f"{where[n] if where else f'{unit} {n + 1}'}: too many moods")
        artist = artists.add(track.artist)
        album_key = (track.album, artist)
        album = albums.get(album_key)
        if album is None:
            album = albums[album_key] = len(cols.albums)
            cols.albums.append(track.album)
            cols.album_artist.append(artist)
        cols.asset_ids.append(asset_value)
        cols.name_ids.append(names.add(track.name))
        cols.artist_ids.append(artist)
        cols.album_ids.append(album)
        cols.genre_ids.append(genres.add(track.genre))
        cols.durations.append(float(track.duration))
        cols.bpms.append(float(track.bpm))
        cols.play_counts.append(track.play_count)
        cols.likes.append(track.likes)
        cols.created.append(track.created.toordinal())
        padded = (*track_moods, "", "")
        cols.mood_a.append(moods.add(padded[0]) if padded[0] else 0)
        cols.mood_b.append(moods.add(padded[1]) if padded[1] else 0)
        cols.instrument.append(instruments.add(instrument) if instrument else 0)
        cols.setting.append(settings.add(setting) if setting else 0)
    cols.names, cols.artists, cols.genres = names.values, artists.values, genres.values
    cols.moods, cols.instruments, cols.settings = moods.values, instruments.values, settings.values
    cols.finish()
    return Catalog(cols, description)


def _track_to_row(track: CatalogTrack, *, csv_style: bool) -> dict[str, Any]:
    row: dict[str, Any] = attrs.asdict(track, recurse=False)
    row["created"] = track.created.isoformat()
    row["moods"] = CSV_LIST_SEPARATOR.join(track.moods) if csv_style else list(track.moods)
    if csv_style:
        row["instrument"] = track.instrument or ""
        row["setting"] = track.setting or ""
    return row
