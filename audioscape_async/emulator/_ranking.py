"""Ranking: what a query means, which tracks fit it, in what order.

Two rankers share one shape. The semantic ranker maps query words onto
genres, moods, instruments, settings and tempo bands (`_vocabulary`), and
scores a track by how much of that meaning it carries. The keyword ranker,
the API's documented fallback, only counts query words found in a track's
name, artist, album, genre and descriptor tags. Either way a score is a
sum of per-column weights, so a query turns into a handful of small lookup
lists and one pass over the catalog's columns: no per-track objects.

A ranked result depends only on (query words, filters, method), so it is
computed once and kept in a bounded LRU cache: page 500 of a deep walk costs
a slice, and every page of one query comes from the same ordering (stable,
disjoint pages; a consistent `total`).
"""

from __future__ import annotations

import datetime as _dt
import heapq
import threading
from array import array
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, Literal

import attrs

from . import _defaults as d
from . import _vocabulary as v
from ._catalog import Catalog, _Columns, number

Method = Literal["semantic", "text"]

#: Score shares: how well a track fits, and a pinch of popularity to order equals.
_FIT_SHARE = 0.95
_POPULARITY_SHARE = 0.05
#: A named artist's own tracks score in [_ARTIST_FLOOR, 1]; sound-alikes stay below it.
_ARTIST_FLOOR = 0.9
_SOUND_ALIKE_CEILING = 0.89
#: Weights of an artist's usual sound, when their name stands for it.
_PROFILE_WEIGHTS = {"genre": 1.0, "mood": 0.7, "instrument": 0.4, "setting": 0.3}
#: Keyword weights: a query word found in a name counts more than in an album title.
_KEYWORD_NAME = 1.0
_KEYWORD_ARTIST = 1.0
_KEYWORD_ALBUM = 0.5
_KEYWORD_GENRE = 1.0
_KEYWORD_TAG = 0.5
#: In semantic mode, words the vocabulary doesn't know still count when a title has them.
_SEMANTIC_TITLE_WORD = 0.6
#: The longest phrase (in words) tried as an artist name or a hyphenated term.
_MAX_PHRASE = 6
_SCORE_DIGITS = 4


@attrs.frozen
class RankFilters:
    """The validated `filters` object of a request; hashable, so it can key the cache.

    The ranker's view of them; the SDK's `SearchFilters` is what a client sends.
    """

    genres: frozenset[str] | None = None
    duration_min: float | None = None
    duration_max: float | None = None
    min_play_count: float | None = None
    min_likes: float | None = None
    created_after: _dt.date | None = None


NO_FILTERS = RankFilters()


@attrs.frozen
class Ranked:
    """One query's whole ordered result set, with its artist and album groups."""

    rows: array[int]
    scores: array[float]
    artists: list[dict[str, Any]]
    albums: list[dict[str, Any]]
    matched_artist: str | None
    method: Method

    @property
    def total(self) -> int:
        return len(self.rows)


class Ranker:
    """Ranks one catalog's tracks for queries, caching whole result sets (thread-safe)."""

    def __init__(self, catalog: Catalog) -> None:
        self.catalog = catalog
        self._cols: _Columns = catalog._columns
        self._lock = threading.Lock()
        self._cache: OrderedDict[tuple[object, ...], Ranked] = OrderedDict()
        self._cached_items = 0
        # Indexes built on first use: a catalog served only semantically never pays
        # for the keyword index, and one served only by keyword never for profiles.
        self._index_lock = threading.Lock()
        self._name_index: dict[str, array[int]] | None = None
        self._artist_index: dict[str, array[int]] | None = None
        self._album_index: dict[str, array[int]] | None = None
        self._artist_phrases: dict[tuple[str, ...], int] | None = None
        self._profiles: dict[int, dict[tuple[str, str], float]] = {}

    # ----------------------------------------------------------------- cache

    def cached(self, query: str, filters: RankFilters, method: Method) -> Ranked | None:
        """The cached result for this search, if there is one."""
        key = (tuple(v.tokenize(query)), filters, method)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
            return found

    def rank(self, query: str, filters: RankFilters, method: Method) -> Ranked:
        """The whole ordered result set for a search, from the cache or computed now."""
        tokens = v.tokenize(query)
        key = (tuple(tokens), filters, method)
        with self._lock:
            found = self._cache.get(key)
            if found is not None:
                self._cache.move_to_end(key)
                return found
        result = self._compute(tokens, filters, method)
        with self._lock:
            if key not in self._cache:
                self._cache[key] = result
                self._cached_items += result.total
                while self._cache and (
                    len(self._cache) > d.CACHE_MAX_ENTRIES or self._cached_items > d.CACHE_MAX_ITEMS
                ):
                    _, evicted = self._cache.popitem(last=False)
                    self._cached_items -= evicted.total
        return result

    def cache_size(self) -> int:
        """How many results the cache holds."""
        with self._lock:
            return len(self._cache)

    def page(self, ranked: Ranked, offset: int, limit: int) -> list[dict[str, Any]]:
        """The API's track objects for one page of a ranked result."""
        c = self._cols
        return [
            {
                "asset_id": str(c.asset_ids[row]),
                "name": c.names[c.name_ids[row]],
                "artist": c.artists[c.artist_ids[row]],
                "album": c.albums[c.album_ids[row]],
                "duration": number(c.durations[row]),
                "genre": c.genres[c.genre_ids[row]],
                "bpm": number(c.bpms[row]),
                "score": score,
            }
            for row, score in zip(
                ranked.rows[offset : offset + limit],
                ranked.scores[offset : offset + limit],
                strict=True,
            )
        ]

    # ----------------------------------------------------------------- ranking

    def _compute(self, tokens: list[str], filters: RankFilters, method: Method) -> Ranked:
        artist, rest = self._find_catalog_artist(tokens)
        matched_artist: str | None = None
        style: v.Concepts = ()
        if artist is not None:
            matched_artist = self._cols.artists[artist]
        elif method == "semantic":
            found = _find_style_artist(tokens)
            if found is not None:
                matched_artist, style, rest = found

        if method == "semantic":
            concepts, keywords = _analyze(rest)
            for kind, name, weight in style:
                concepts[kind, name] = max(concepts.get((kind, name), 0.0), weight)
            fit = self._semantic_fit(concepts, keywords)
        else:
            fit = self._keyword_fit(_keywords(rest))

        if artist is not None:
            own = self._artist_rows(artist)
            if method == "semantic":
                profile = dict(self._profile(artist))
                concepts, keywords = _analyze(rest)
                for key, weight in concepts.items():
                    profile[key] = max(profile.get(key, 0.0), weight)
                around = self._semantic_fit(profile, keywords)
            else:
                around = fit
            rows, scores = self._artist_first(own, fit, around)
        elif fit is None:
            rows, scores = array("I"), array("d")
        else:
            rows, scores = self._score(fit)
        rows, scores = self._filter(rows, scores, filters)
        return Ranked(
            rows=rows,
            scores=scores,
            artists=self._artist_groups(rows),
            albums=self._album_groups(rows),
            matched_artist=matched_artist,
            method=method,
        )

    def _semantic_fit(
        self, concepts: dict[tuple[str, str], float], keywords: Sequence[str]
    ) -> list[float] | None:
        """Per-row fit in 0..1 for a semantic query, or None if nothing can fit."""
        c = self._cols
        genre_w = [concepts.get(("genre", g.casefold()), 0.0) for g in c.genres]
        mood_w = [concepts.get(("mood", m.casefold()), 0.0) if m else 0.0 for m in c.moods]
        instrument_w = [
            concepts.get(("instrument", i.casefold()), 0.0) if i else 0.0 for i in c.instruments
        ]
        setting_w = [concepts.get(("setting", s.casefold()), 0.0) if s else 0.0 for s in c.settings]
        tempo_w = _tempo_weights(concepts)
        name_w = self._table_weights(self._names(), keywords, _SEMANTIC_TITLE_WORD, len(c.names))
        best = (
            max(genre_w, default=0.0)
            + sum(heapq.nlargest(2, mood_w))
            + max(instrument_w, default=0.0)
            + max(setting_w, default=0.0)
            + max(tempo_w)
            + max(name_w, default=0.0)
        )
        if best <= 0:
            return None
        scale = 1.0 / best
        return [
            (
                genre_w[g]
                + mood_w[a]
                + mood_w[b]
                + instrument_w[i]
                + setting_w[s]
                + tempo_w[t]
                + name_w[n]
            )
            * scale
            for g, a, b, i, s, t, n in zip(
                c.genre_ids,
                c.mood_a,
                c.mood_b,
                c.instrument,
                c.setting,
                c.tempo,
                c.name_ids,
                strict=True,
            )
        ]

    def _keyword_fit(self, words: Sequence[str]) -> list[float] | None:
        """Per-row fit in 0..1 for a keyword query: the share of its words a track has."""
        if not words:
            return None
        c = self._cols
        query = set(words)
        name_w = self._table_weights(self._names(), words, _KEYWORD_NAME, len(c.names))
        artist_w = self._table_weights(self._artists(), words, _KEYWORD_ARTIST, len(c.artists))
        album_w = self._table_weights(self._albums(), words, _KEYWORD_ALBUM, len(c.albums))
        genre_w = [_KEYWORD_GENRE * _hits(g, query) for g in c.genres]
        mood_w = [_KEYWORD_TAG * _hits(m, query) for m in c.moods]
        instrument_w = [_KEYWORD_TAG * _hits(i, query) for i in c.instruments]
        setting_w = [_KEYWORD_TAG * _hits(s, query) for s in c.settings]
        scale = 1.0 / len(query)
        return [
            min(
                1.0,
                (
                    name_w[n]
                    + artist_w[ar]
                    + album_w[al]
                    + genre_w[g]
                    + mood_w[a]
                    + mood_w[b]
                    + instrument_w[i]
                    + setting_w[s]
                )
                * scale,
            )
            for n, ar, al, g, a, b, i, s in zip(
                c.name_ids,
                c.artist_ids,
                c.album_ids,
                c.genre_ids,
                c.mood_a,
                c.mood_b,
                c.instrument,
                c.setting,
                strict=True,
            )
        ]

    def _score(self, fit: list[float]) -> tuple[array[int], array[float]]:
        pop = self._cols.popularity
        rows = [row for row, f in enumerate(fit) if f > 0]
        final = {
            row: round(
                _FIT_SHARE * min(fit[row], 1.0) + _POPULARITY_SHARE * pop[row], _SCORE_DIGITS
            )
            for row in rows
        }
        return _ordered(rows, final.__getitem__)

    def _artist_first(
        self, own: array[int], fit: list[float] | None, around: list[float] | None
    ) -> tuple[array[int], array[float]]:
        """The named artist's tracks first, then tracks that sound like them."""
        pop = self._cols.popularity
        own_set = set(own)
        span = 1.0 - _ARTIST_FLOOR
        final: dict[int, float] = {}
        for row in own:
            share = fit[row] if fit is not None and fit[row] > 0 else pop[row]
            final[row] = round(_ARTIST_FLOOR + span * min(share, 1.0), _SCORE_DIGITS)
        if around is not None:
            for row, f in enumerate(around):
                if f > 0 and row not in own_set:
                    value = _FIT_SHARE * min(f, 1.0) + _POPULARITY_SHARE * pop[row]
                    final[row] = round(_SOUND_ALIKE_CEILING * value, _SCORE_DIGITS)
        return _ordered(sorted(final), final.__getitem__)

    def _filter(
        self, rows: array[int], scores: array[float], filters: RankFilters
    ) -> tuple[array[int], array[float]]:
        if filters == NO_FILTERS:
            return rows, scores
        c = self._cols
        checks: list[Callable[[int], bool]] = []
        if filters.genres is not None:
            wanted = {i for i, g in enumerate(c.genres) if g.casefold() in filters.genres}
            checks.append(lambda row: c.genre_ids[row] in wanted)
        if filters.duration_min is not None:
            low = filters.duration_min
            checks.append(lambda row: c.durations[row] >= low)
        if filters.duration_max is not None:
            high = filters.duration_max
            checks.append(lambda row: c.durations[row] <= high)
        if filters.min_play_count is not None:
            plays = filters.min_play_count
            checks.append(lambda row: c.play_counts[row] >= plays)
        if filters.min_likes is not None:
            likes = filters.min_likes
            checks.append(lambda row: c.likes[row] >= likes)
        if filters.created_after is not None:
            day = filters.created_after.toordinal()
            checks.append(lambda row: c.created[row] >= day)
        keep = [k for k, row in enumerate(rows) if all(check(row) for check in checks)]
        return array("I", (rows[k] for k in keep)), array("d", (scores[k] for k in keep))

    def _artist_groups(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        c = self._cols
        counts = Counter(map(c.artist_ids.__getitem__, rows))
        top = heapq.nsmallest(
            d.GROUP_LIMIT, counts.items(), key=lambda kv: (-kv[1], c.artists[kv[0]])
        )
        return [{"name": c.artists[a], "track_count": n} for a, n in top]

    def _album_groups(self, rows: Iterable[int]) -> list[dict[str, Any]]:
        c = self._cols
        counts = Counter(map(c.album_ids.__getitem__, rows))
        top = heapq.nsmallest(
            d.GROUP_LIMIT,
            counts.items(),
            key=lambda kv: (-kv[1], c.albums[kv[0]], c.artists[c.album_artist[kv[0]]]),
        )
        return [
            {"name": c.albums[al], "artist": c.artists[c.album_artist[al]], "track_count": n}
            for al, n in top
        ]

    # ----------------------------------------------------------------- artists

    def _find_catalog_artist(self, tokens: list[str]) -> tuple[int | None, list[str]]:
        """A catalog artist named in the query, and the query's other words."""
        phrases = self._phrases()
        meaningful = [t for t in tokens if t not in v.STOPWORDS]
        # A one-word artist name only counts when it is the whole query, so an artist
        # called "Chill" doesn't swallow every chill query.
        if len(meaningful) == 1 and (meaningful[0],) in phrases:
            return phrases[meaningful[0],], []
        span = _find_phrase(tokens, phrases, min_words=2)
        if span is None:
            return None, tokens
        start, end = span
        return phrases[tuple(tokens[start:end])], tokens[:start] + tokens[end:]

    def _artist_rows(self, artist: int) -> array[int]:
        return array("I", (row for row, a in enumerate(self._cols.artist_ids) if a == artist))

    def _profile(self, artist: int) -> dict[tuple[str, str], float]:
        """An artist's usual sound: their commonest genre, moods, instrument and setting."""
        with self._index_lock:
            found = self._profiles.get(artist)
        if found is not None:
            return found
        c = self._cols
        rows = self._artist_rows(artist)
        genres = Counter(c.genres[c.genre_ids[r]].casefold() for r in rows)
        moods = Counter(c.moods[m].casefold() for r in rows for m in (c.mood_a[r], c.mood_b[r]))
        instruments = Counter(c.instruments[c.instrument[r]].casefold() for r in rows)
        settings = Counter(c.settings[c.setting[r]].casefold() for r in rows)
        profile: dict[tuple[str, str], float] = {}
        for kind, counter, keep in (
            ("genre", genres, 1),
            ("mood", moods, 2),
            ("instrument", instruments, 1),
            ("setting", settings, 1),
        ):
            for name, _ in sorted(counter.items(), key=lambda kv: (-kv[1], kv[0]))[:keep]:
                if name:
                    profile[kind, name] = _PROFILE_WEIGHTS[kind]
        with self._index_lock:
            self._profiles[artist] = profile
        return profile

    # ----------------------------------------------------------------- indexes

    def _phrases(self) -> dict[tuple[str, ...], int]:
        with self._index_lock:
            if self._artist_phrases is None:
                phrases: dict[tuple[str, ...], int] = {}
                for artist, name in enumerate(self._cols.artists):
                    words = tuple(v.tokenize(name))
                    if words and len(words) <= _MAX_PHRASE:
                        phrases.setdefault(words, artist)
                self._artist_phrases = phrases
            return self._artist_phrases

    def _names(self) -> dict[str, array[int]]:
        with self._index_lock:
            if self._name_index is None:
                self._name_index = _inverted(self._cols.names)
            return self._name_index

    def _artists(self) -> dict[str, array[int]]:
        with self._index_lock:
            if self._artist_index is None:
                self._artist_index = _inverted(self._cols.artists)
            return self._artist_index

    def _albums(self) -> dict[str, array[int]]:
        with self._index_lock:
            if self._album_index is None:
                self._album_index = _inverted(self._cols.albums)
            return self._album_index

    @staticmethod
    def _table_weights(
        index: dict[str, array[int]], words: Iterable[str], weight: float, size: int
    ) -> list[float]:
        weights = [0.0] * size
        for word in set(words):
            for entry in index.get(word, ()):
                weights[entry] += weight
        return weights


# --------------------------------------------------------------------------- helpers


def _analyze(tokens: Sequence[str]) -> tuple[dict[tuple[str, str], float], list[str]]:
    """A query's concepts (strongest weight wins) and its words the vocabulary lacks."""
    concepts: dict[tuple[str, str], float] = {}
    unknown: list[str] = []
    i = 0
    while i < len(tokens):
        # "drum and bass", "hip hop", "lo fi" are looked up as their hyphenated forms.
        for size in (3, 2, 1):
            phrase = "-".join(tokens[i : i + size])
            meaning = v.QUERY_TERMS.get(phrase) if i + size <= len(tokens) else None
            if meaning is None and size == 1:
                meaning = v.QUERY_TERMS.get(v.stem(phrase))
            if meaning is not None:
                for kind, name, weight in meaning:
                    concepts[kind, name] = max(concepts.get((kind, name), 0.0), weight)
                i += size
                break
        else:
            if tokens[i] not in v.STOPWORDS:
                unknown.append(v.stem(tokens[i]))
            i += 1
    return concepts, unknown


def _find_phrase(
    tokens: Sequence[str], phrases: dict[tuple[str, ...], Any], *, min_words: int
) -> tuple[int, int] | None:
    """The longest, then leftmost, run of query words that is a key of `phrases`."""
    for size in range(min(_MAX_PHRASE, len(tokens)), min_words - 1, -1):
        for start in range(len(tokens) - size + 1):
            if tuple(tokens[start : start + size]) in phrases:
                return start, start + size
    return None


_STYLE_PHRASES: dict[tuple[str, ...], str] = {
    tuple(v.tokenize(name)): name for name in v.STYLE_ARTISTS
}


def _find_style_artist(tokens: list[str]) -> tuple[str, v.Concepts, list[str]] | None:
    """A well-known artist from the style table named in the query."""
    span = _find_phrase(tokens, _STYLE_PHRASES, min_words=1)
    if span is None:
        return None
    start, end = span
    name = _STYLE_PHRASES[tuple(tokens[start:end])]
    return name, v.STYLE_ARTISTS[name], tokens[:start] + tokens[end:]


_TEMPO_TABLE_SIZE = d.MAX_TEMPO_BUCKET + 1


def _tempo_weights(concepts: dict[tuple[str, str], float]) -> list[float]:
    weights = [0.0] * _TEMPO_TABLE_SIZE
    for (kind, band), weight in concepts.items():
        if kind != "tempo" or band not in v.TEMPO_BANDS:
            continue
        (full_lo, full_hi), (half_lo, half_hi) = v.TEMPO_BANDS[band]
        for bpm in range(_TEMPO_TABLE_SIZE):
            if full_lo <= bpm < full_hi:
                share = 1.0
            elif half_lo <= bpm < half_hi:
                share = 0.5
            else:
                continue
            weights[bpm] = max(weights[bpm], weight * share)
    return weights


def _keywords(tokens: Iterable[str]) -> list[str]:
    """The words of a query keyword search looks for: no stopwords, plurals folded."""
    return [v.stem(t) for t in tokens if t not in v.STOPWORDS and v.stem(t) not in v.STOPWORDS]


def _hits(label: str, query: set[str]) -> int:
    """How many query words a genre or tag names ("lo-fi" matches "lo-fi" and "lo")."""
    if not label:
        return 0
    words = {v.stem(t) for t in v.tokenize(label)} | {label.casefold()}
    return len(words & query)


def _inverted(table: Sequence[str]) -> dict[str, array[int]]:
    index: dict[str, array[int]] = {}
    for entry, text in enumerate(table):
        for word in {v.stem(t) for t in v.tokenize(text)}:
            posting = index.get(word)
            if posting is None:
                posting = index[word] = array("I")
            posting.append(entry)
    return index


def _ordered(rows: list[int], score_of: Callable[[int], float]) -> tuple[array[int], array[float]]:
    """Rows by score, high first; `rows` ascend, so a stable sort breaks ties by asset id."""
    rows.sort(key=score_of, reverse=True)
    return array("I", rows), array("d", map(score_of, rows))
