"""The emulator's musical knowledge: genres, descriptors, title words, synonyms.

One table drives both sides of the emulator so they agree: the catalog
generator draws a track's moods, instrument and setting from its genre's
profile and builds its title from words of those descriptors, and the ranker
maps the words of a query onto the same descriptors through `QUERY_TERMS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Final, Literal

import attrs

Kind = Literal["genre", "mood", "instrument", "setting", "tempo"]

#: A query word's meaning: (kind, descriptor, weight) triples.
Concepts = tuple[tuple[Kind, str, float], ...]


@attrs.frozen
class GenreProfile:
    """How tracks of one genre sound: the pool the generator draws from."""

    bpm: tuple[int, int]
    moods: tuple[str, ...]
    instruments: tuple[str, ...]
    settings: tuple[str, ...]


GENRE_PROFILES: Final[Mapping[str, GenreProfile]] = {
    "electronic": GenreProfile(
        (118, 132),
        ("upbeat", "energetic", "dreamy", "playful"),
        ("synth", "drums", "bass", "vocals"),
        ("city", "night", "party", "space"),
    ),
    "pop": GenreProfile(
        (95, 125),
        ("happy", "upbeat", "romantic", "playful", "hopeful", "dark", "whispery", "sad"),
        ("vocals", "synth", "piano", "drums"),
        ("summer", "city", "party", "beach"),
    ),
    "hip-hop": GenreProfile(
        (80, 100),
        ("chill", "aggressive", "funky", "dark"),
        ("808", "drums", "bass", "vocals"),
        ("city", "night", "lobby"),
    ),
    "rock": GenreProfile(
        (110, 150),
        ("energetic", "aggressive", "triumphant", "upbeat"),
        ("electric-guitar", "drums", "bass", "vocals"),
        ("racing", "city", "party", "boss-battle"),
    ),
    "ambient": GenreProfile(
        (60, 85),
        ("calm", "dreamy", "mysterious", "relaxed", "eerie"),
        ("synth", "piano", "strings", "bells"),
        ("space", "forest", "ocean", "rain", "night"),
    ),
    "cinematic": GenreProfile(
        (70, 120),
        ("epic", "tense", "dark", "triumphant", "mysterious", "eerie"),
        ("strings", "brass", "choir", "drums"),
        ("boss-battle", "dungeon", "space", "horror", "desert"),
    ),
    "lo-fi": GenreProfile(
        (70, 90),
        ("chill", "relaxed", "nostalgic", "melancholic", "dreamy", "sad"),
        ("piano", "drums", "bass", "acoustic-guitar"),
        ("cafe", "rain", "night", "city"),
    ),
    "jazz": GenreProfile(
        (90, 140),
        ("relaxed", "romantic", "funky", "nostalgic", "chill"),
        ("saxophone", "piano", "bass", "drums", "brass"),
        ("cafe", "city", "night"),
    ),
    "classical": GenreProfile(
        (60, 120),
        ("calm", "romantic", "melancholic", "triumphant", "hopeful"),
        ("piano", "violin", "strings", "flute"),
        ("forest", "winter", "lobby"),
    ),
    "metal": GenreProfile(
        (140, 190),
        ("aggressive", "dark", "energetic", "epic"),
        ("electric-guitar", "drums", "bass", "vocals"),
        ("boss-battle", "dungeon", "horror", "racing"),
    ),
    "funk": GenreProfile(
        (100, 120),
        ("funky", "upbeat", "happy", "playful"),
        ("bass", "brass", "electric-guitar", "drums"),
        ("party", "city", "summer"),
    ),
    "orchestral": GenreProfile(
        (70, 130),
        ("epic", "triumphant", "hopeful", "tense", "dark"),
        ("strings", "brass", "choir", "flute"),
        ("boss-battle", "forest", "winter", "desert", "lobby"),
    ),
    "synthwave": GenreProfile(
        (90, 120),
        ("nostalgic", "dreamy", "energetic", "dark"),
        ("synth", "drums", "bass", "electric-guitar"),
        ("night", "city", "racing", "sunset"),
    ),
    "house": GenreProfile(
        (120, 128),
        ("upbeat", "energetic", "happy", "funky"),
        ("synth", "drums", "bass", "vocals"),
        ("party", "summer", "beach", "night"),
    ),
    "drum-and-bass": GenreProfile(
        (165, 178),
        ("energetic", "aggressive", "dark", "tense"),
        ("drums", "bass", "synth"),
        ("racing", "city", "night", "space"),
    ),
    "trap": GenreProfile(
        (130, 160),
        ("aggressive", "dark", "energetic"),
        ("808", "drums", "synth", "vocals"),
        ("city", "night", "boss-battle"),
    ),
    "chiptune": GenreProfile(
        (120, 160),
        ("playful", "happy", "upbeat", "nostalgic"),
        ("8-bit", "synth", "drums"),
        ("lobby", "dungeon", "racing", "party"),
    ),
    "acoustic": GenreProfile(
        (80, 115),
        ("happy", "romantic", "hopeful", "relaxed", "sad", "whispery"),
        ("acoustic-guitar", "vocals", "piano", "violin"),
        ("summer", "beach", "forest", "sunset", "cafe"),
    ),
    "reggae": GenreProfile(
        (70, 95),
        ("relaxed", "happy", "chill", "upbeat"),
        ("bass", "electric-guitar", "drums", "brass"),
        ("beach", "summer", "sunset"),
    ),
    "dubstep": GenreProfile(
        (138, 145),
        ("aggressive", "energetic", "dark", "tense"),
        ("synth", "bass", "drums", "808"),
        ("boss-battle", "racing", "party", "space"),
    ),
}

GENRES: Final = tuple(GENRE_PROFILES)

#: Each mood with the title words it lends a track: adjectives, then nouns.
MOOD_WORDS: Final[Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]]] = {
    "upbeat": (("Bright", "Bouncy", "Sunny", "Golden"), ("Groove", "Bounce", "Good Times")),
    "happy": (("Happy", "Sunny", "Lucky", "Sweet"), ("Smiles", "Sunshine", "Daydream")),
    "energetic": (("Electric", "Turbo", "Wild", "Rapid"), ("Rush", "Overdrive", "Voltage")),
    "chill": (("Chill", "Mellow", "Easy", "Lazy"), ("Vibes", "Haze", "Afternoon")),
    "relaxed": (("Gentle", "Slow", "Soft", "Quiet"), ("Breeze", "Drift", "Sunday")),
    "calm": (("Calm", "Still", "Serene", "Tranquil"), ("Stillness", "Silence", "Reverie")),
    "dark": (("Dark", "Obsidian", "Shadow", "Black"), ("Shadows", "Nightfall", "Abyss")),
    "tense": (("Tense", "Restless", "Uneasy", "Critical"), ("Tension", "Countdown", "Standoff")),
    "epic": (("Epic", "Mighty", "Legendary", "Titan"), ("Legends", "Glory", "Ascension")),
    "sad": (("Lonely", "Broken", "Fading", "Empty"), ("Tears", "Goodbye", "Rainfall")),
    "melancholic": (("Blue", "Faded", "Distant", "Pale"), ("Memories", "Echoes", "Yesterday")),
    "mysterious": (("Hidden", "Secret", "Veiled", "Arcane"), ("Mystery", "Riddles", "Enigma")),
    "dreamy": (("Dreamy", "Floating", "Hazy", "Velvet"), ("Dreams", "Clouds", "Stardust")),
    "aggressive": (("Savage", "Brutal", "Feral", "Raging"), ("Fury", "Rampage", "Havoc")),
    "romantic": (("Tender", "Sweet", "Crimson", "Lovely"), ("Hearts", "Romance", "Serenade")),
    "playful": (("Silly", "Bubbly", "Funny", "Tiny"), ("Games", "Mischief", "Playtime")),
    "funky": (("Funky", "Groovy", "Slick", "Smooth"), ("Funk", "Strut", "Boogie")),
    "triumphant": (("Victorious", "Heroic", "Rising", "Royal"), ("Victory", "Triumph", "Anthem")),
    "eerie": (("Eerie", "Haunted", "Ghostly", "Hollow"), ("Whispers", "Phantoms", "Specters")),
    "nostalgic": (("Retro", "Vintage", "Old", "Neon"), ("Nostalgia", "Cassette", "Summers Past")),
    "hopeful": (("Hopeful", "New", "Brave", "Shining"), ("Hope", "Dawn", "Horizons")),
    "whispery": (
        ("Whispered", "Hushed", "Breathless", "Softly"),
        ("Lullaby", "Secrets", "Murmurs"),
    ),
}
MOODS: Final = tuple(MOOD_WORDS)

#: Each setting with the nouns it lends a title.
SETTING_WORDS: Final[Mapping[str, tuple[str, ...]]] = {
    "summer": ("Summer", "Heatwave", "July", "Poolside"),
    "beach": ("Beach", "Shoreline", "Waves", "Lagoon"),
    "city": ("City", "Skyline", "Streets", "Metro"),
    "night": ("Night", "Midnight", "Moonlight", "Nightshift"),
    "space": ("Nebula", "Orbit", "Galaxy", "Starship"),
    "forest": ("Forest", "Woods", "Grove", "Canopy"),
    "ocean": ("Ocean", "Tides", "Deep Sea", "Reef"),
    "rain": ("Rain", "Raindrops", "Storm", "Drizzle"),
    "winter": ("Winter", "Snowfall", "Frost", "Blizzard"),
    "desert": ("Desert", "Dunes", "Mirage", "Oasis"),
    "sunset": ("Sunset", "Dusk", "Golden Hour", "Twilight"),
    "party": ("Party", "Dancefloor", "Club", "Festival"),
    "cafe": ("Cafe", "Coffee", "Rooftop", "Bookshop"),
    "dungeon": ("Dungeon", "Catacombs", "Crypt", "Labyrinth"),
    "boss-battle": ("Boss Fight", "Showdown", "Arena", "Final Stage"),
    "racing": ("Race", "Highway", "Speedway", "Drift"),
    "lobby": ("Lobby", "Menu", "Waiting Room", "Hub"),
    "horror": ("Asylum", "Manor", "Graveyard", "Basement"),
}
SETTINGS: Final = tuple(SETTING_WORDS)

INSTRUMENTS: Final = (
    "synth",
    "piano",
    "acoustic-guitar",
    "electric-guitar",
    "strings",
    "drums",
    "bass",
    "brass",
    "choir",
    "saxophone",
    "violin",
    "808",
    "flute",
    "bells",
    "vocals",
    "8-bit",
)

#: Moods that pull a track's tempo up or down within its genre's range, in bpm.
MOOD_TEMPO_SHIFT: Final[Mapping[str, int]] = {
    "upbeat": 12,
    "energetic": 15,
    "aggressive": 15,
    "happy": 6,
    "playful": 6,
    "tense": 8,
    "chill": -12,
    "relaxed": -12,
    "calm": -15,
    "sad": -10,
    "melancholic": -10,
    "dreamy": -8,
    "whispery": -8,
}

#: Tempo bands a query word can ask for, as (bpm fully in band, bpm half in band).
TEMPO_BANDS: Final[Mapping[str, tuple[tuple[int, int], tuple[int, int]]]] = {
    "fast": ((128, 400), (115, 128)),
    "mid": ((95, 125), (85, 135)),
    "slow": ((0, 90), (90, 102)),
}


def _concepts(spec: str) -> Concepts:
    """Parse "kind:name*weight ..." (weight defaults to 1) into concept triples."""
    out: list[tuple[Kind, str, float]] = []
    for item in spec.split():
        target, _, weight = item.partition("*")
        kind, _, name = target.partition(":")
        if kind not in ("genre", "mood", "instrument", "setting", "tempo"):
            raise ValueError(f"bad concept kind in {item!r}")
        out.append((kind, name, float(weight) if weight else 1.0))  # type: ignore[arg-type]
    return tuple(out)


# Words (and hyphenated phrases: "lo fi" is looked up as "lo-fi") a query may use,
# beyond the descriptor names themselves, which always mean themselves.
_TERM_SPECS: Final = {
    # tempo and energy
    "upbeat": "mood:upbeat mood:happy*.5 mood:energetic*.5 tempo:fast*.6",
    "energetic": "mood:energetic mood:upbeat*.5 tempo:fast*.6",
    "fast": "tempo:fast mood:energetic*.4",
    "hype": "mood:energetic mood:aggressive*.4 tempo:fast*.6",
    "intense": "mood:tense*.8 mood:aggressive*.6 mood:energetic*.5 tempo:fast*.4",
    "chill": "mood:chill mood:relaxed*.7 genre:lo-fi*.5 tempo:slow*.6",
    "chilled": "mood:chill mood:relaxed*.7 tempo:slow*.6",
    "relaxing": "mood:relaxed mood:calm*.7 mood:chill*.6 tempo:slow*.6",
    "slow": "tempo:slow mood:calm*.4",
    "mellow": "mood:chill mood:relaxed*.8 tempo:slow*.5",
    "peaceful": "mood:calm mood:relaxed*.6 tempo:slow*.4",
    "moderate": "tempo:mid",
    # moods
    "cheerful": "mood:happy mood:upbeat*.6",
    "joyful": "mood:happy mood:upbeat*.6",
    "fun": "mood:playful mood:happy*.7",
    "funny": "mood:playful mood:happy*.5",
    "cute": "mood:playful mood:happy*.6",
    "sunny": "mood:happy setting:summer*.6 mood:upbeat*.4",
    "dark": "mood:dark mood:eerie*.5 mood:mysterious*.4 setting:night*.3",
    "tension": "mood:tense mood:dark*.3",
    "suspense": "mood:tense mood:mysterious*.5",
    "suspenseful": "mood:tense mood:mysterious*.5",
    "scary": "mood:eerie setting:horror*.8 mood:dark*.6 mood:tense*.4",
    "spooky": "mood:eerie setting:horror*.7 mood:mysterious*.5",
    "creepy": "mood:eerie setting:horror*.7 mood:dark*.5",
    "haunting": "mood:eerie mood:melancholic*.4",
    "heroic": "mood:triumphant mood:epic*.7",
    "victory": "mood:triumphant mood:epic*.5",
    "triumph": "mood:triumphant",
    "emotional": "mood:sad*.7 mood:melancholic*.7 mood:romantic*.4",
    "melancholy": "mood:melancholic mood:sad*.6",
    "nostalgia": "mood:nostalgic",
    "retro": "mood:nostalgic genre:synthwave*.6 genre:chiptune*.5",
    "vintage": "mood:nostalgic genre:jazz*.3",
    "love": "mood:romantic",
    "dreamlike": "mood:dreamy",
    "angry": "mood:aggressive genre:metal*.5",
    "heavy": "mood:aggressive genre:metal*.7 instrument:electric-guitar*.4",
    "mystery": "mood:mysterious",
    "groovy": "mood:funky genre:funk*.6",
    "whisper": "mood:whispery",
    "soft": "mood:whispery*.5 mood:calm*.5 tempo:slow*.3",
    # genres and styles
    "cinematic": "genre:cinematic genre:orchestral*.6 mood:epic*.3 instrument:strings*.3",
    "movie": "genre:cinematic genre:orchestral*.5",
    "film": "genre:cinematic genre:orchestral*.5",
    "trailer": "genre:cinematic mood:epic*.7 mood:tense*.4",
    "soundtrack": "genre:cinematic*.8 genre:orchestral*.8",
    "score": "genre:orchestral*.8 genre:cinematic*.8",
    "orchestra": "genre:orchestral instrument:strings*.6 instrument:brass*.5",
    "symphonic": "genre:orchestral genre:classical*.5",
    "lofi": "genre:lo-fi mood:chill*.5",
    "lo-fi": "genre:lo-fi mood:chill*.5",
    "beats": "instrument:drums*.5 genre:hip-hop*.4 genre:lo-fi*.4",
    "beat": "instrument:drums*.5 genre:hip-hop*.4 genre:lo-fi*.4",
    "hiphop": "genre:hip-hop",
    "rap": "genre:hip-hop genre:trap*.6 instrument:vocals*.3",
    "edm": "genre:electronic genre:house*.7 genre:dubstep*.5 tempo:fast*.4",
    "techno": "genre:electronic genre:house*.6 tempo:fast*.4",
    "dance": "genre:house genre:electronic*.7 setting:party*.6 mood:upbeat*.4",
    "club": "setting:party genre:house*.6",
    "dnb": "genre:drum-and-bass",
    "drum-and-bass": "genre:drum-and-bass",
    "8bit": "genre:chiptune instrument:8-bit",
    "8-bit": "genre:chiptune instrument:8-bit",
    "arcade": "genre:chiptune mood:playful*.5",
    "pixel": "genre:chiptune*.7",
    "guitar": "instrument:acoustic-guitar*.8 instrument:electric-guitar*.8",
    "sax": "instrument:saxophone",
    "synths": "instrument:synth",
    "synthesizer": "instrument:synth",
    "orchestral": "genre:orchestral instrument:strings*.5",
    "retrowave": "genre:synthwave mood:nostalgic*.5",
    "outrun": "genre:synthwave setting:racing*.5",
    "vaporwave": "genre:synthwave*.7 mood:dreamy*.6 mood:nostalgic*.6",
    "classic": "genre:classical*.7",
    "unplugged": "genre:acoustic instrument:acoustic-guitar*.6",
    "folk": "genre:acoustic instrument:acoustic-guitar*.6",
    "singing": "instrument:vocals",
    "vocal": "instrument:vocals",
    "instrumental": "instrument:piano*.3 instrument:synth*.3 instrument:strings*.3",
    # settings and game moments
    "boss": "setting:boss-battle mood:epic*.4 mood:tense*.4",
    "boss-fight": "setting:boss-battle mood:epic*.4 mood:tense*.4",
    "boss-battle": "setting:boss-battle mood:epic*.4 mood:tense*.4",
    "battle": "setting:boss-battle*.8 mood:epic*.5 mood:aggressive*.4",
    "fight": "setting:boss-battle*.8 mood:aggressive*.5",
    "combat": "setting:boss-battle*.8 mood:aggressive*.5 mood:tense*.4",
    "war": "mood:epic setting:boss-battle*.5 genre:orchestral*.4",
    "summertime": "setting:summer mood:happy*.4",
    "tropical": "setting:beach setting:summer*.7 genre:reggae*.4",
    "island": "setting:beach genre:reggae*.4",
    "vacation": "setting:beach setting:summer*.7 mood:happy*.4",
    "sea": "setting:ocean setting:beach*.5",
    "underwater": "setting:ocean mood:dreamy*.4",
    "urban": "setting:city genre:hip-hop*.4",
    "downtown": "setting:city",
    "nighttime": "setting:night",
    "midnight": "setting:night mood:dark*.3",
    "evening": "setting:sunset setting:night*.5",
    "cosmic": "setting:space mood:dreamy*.4",
    "galaxy": "setting:space",
    "sci-fi": "setting:space genre:electronic*.4 instrument:synth*.4",
    "woods": "setting:forest",
    "nature": "setting:forest setting:ocean*.4 mood:calm*.4",
    "rainy": "setting:rain mood:melancholic*.4",
    "snow": "setting:winter",
    "christmas": "setting:winter instrument:bells*.7 mood:happy*.4",
    "holiday": "setting:winter*.6 setting:beach*.4 mood:happy*.5",
    "coffee": "setting:cafe genre:jazz*.4 genre:lo-fi*.4",
    "study": "genre:lo-fi mood:chill*.6 setting:cafe*.5 tempo:slow*.3",
    "studying": "genre:lo-fi mood:chill*.6 setting:cafe*.5 tempo:slow*.3",
    "focus": "genre:lo-fi*.7 genre:ambient*.6 mood:calm*.5",
    "sleep": "mood:calm genre:ambient*.7 tempo:slow*.6",
    "meditation": "mood:calm genre:ambient*.8 tempo:slow*.5",
    "race": "setting:racing tempo:fast*.5 mood:energetic*.5",
    "driving": "setting:racing genre:synthwave*.4",
    "cave": "setting:dungeon mood:mysterious*.5",
    "quest": "setting:dungeon mood:epic*.5",
    "adventure": "mood:epic mood:hopeful*.5 setting:forest*.3",
    "exploration": "mood:mysterious*.6 mood:hopeful*.4 setting:forest*.4",
    "menu": "setting:lobby mood:chill*.3",
    "waiting": "setting:lobby",
    "hangout": "setting:lobby mood:chill*.6",
    "obby": "mood:playful mood:upbeat*.6 setting:lobby*.3",
    "tycoon": "mood:happy*.6 mood:playful*.6 setting:lobby*.5",
    "horror": "setting:horror mood:eerie*.8 mood:dark*.6",
    "halloween": "setting:horror mood:eerie*.8 mood:playful*.3",
}


def _build_terms() -> dict[str, Concepts]:
    """Every descriptor name means itself; the specs above add synonyms."""
    terms: dict[str, Concepts] = {}
    for genre in GENRES:
        terms[genre] = (("genre", genre, 1.0),)
    for mood in MOODS:
        terms[mood] = (("mood", mood, 1.0),)
    for instrument in INSTRUMENTS:
        terms[instrument] = (("instrument", instrument, 1.0),)
    for setting in SETTINGS:
        terms[setting] = (("setting", setting, 1.0),)
    for word, spec in _TERM_SPECS.items():
        terms[word] = _concepts(spec)
    return terms


#: Query word (already tokenized and lower-cased) to the concepts it asks for.
QUERY_TERMS: Final[Mapping[str, Concepts]] = _build_terms()

#: Words that carry no musical meaning in a query; keyword search skips them too.
STOPWORDS: Final = frozenset(
    {
        "a",
        "an",
        "and",
        "any",
        "as",
        "at",
        "by",
        "for",
        "from",
        "in",
        "into",
        "like",
        "me",
        "music",
        "of",
        "on",
        "or",
        "play",
        "playlist",
        "please",
        "similar",
        "some",
        "something",
        "song",
        "songs",
        "sound",
        "sounding",
        "sounds",
        "style",
        "the",
        "to",
        "track",
        "tracks",
        "tune",
        "tunes",
        "vibe",
        "vibes",
        "with",
    }
)

#: Well-known artists who are not in any generated catalog, with the sound they stand
#: for, so a query naming them gets sound-alike tracks ("smart substitution").
STYLE_ARTISTS: Final[Mapping[str, Concepts]] = {
    "Daft Punk": _concepts(
        "genre:electronic genre:house*.8 genre:funk*.6 mood:funky mood:upbeat*.8 "
        "instrument:synth*.6 tempo:fast*.4"
    ),
    "Hans Zimmer": _concepts(
        "genre:cinematic genre:orchestral*.9 mood:epic mood:tense*.7 instrument:strings*.6 "
        "instrument:brass*.5"
    ),
    "John Williams": _concepts(
        "genre:orchestral genre:cinematic*.8 mood:triumphant mood:epic*.8 instrument:brass*.7"
    ),
    "Billie Eilish": _concepts(
        "genre:pop mood:dark mood:whispery instrument:vocals*.6 tempo:slow*.4"
    ),
    "Taylor Swift": _concepts(
        "genre:pop genre:acoustic*.6 mood:romantic mood:happy*.6 instrument:vocals*.6"
    ),
    "Deadmau5": _concepts(
        "genre:electronic genre:house*.9 mood:dreamy*.6 mood:energetic*.6 instrument:synth*.7"
    ),
    "Skrillex": _concepts(
        "genre:dubstep genre:electronic*.6 mood:aggressive mood:energetic*.8 tempo:fast*.5"
    ),
    "Metallica": _concepts(
        "genre:metal genre:rock*.6 mood:aggressive mood:dark*.6 instrument:electric-guitar*.8"
    ),
    "Nujabes": _concepts(
        "genre:lo-fi genre:hip-hop*.6 genre:jazz*.5 mood:chill mood:nostalgic*.7 "
        "instrument:piano*.5"
    ),
    "Kavinsky": _concepts(
        "genre:synthwave mood:nostalgic mood:dark*.5 setting:racing*.6 setting:night*.5"
    ),
    "Ludovico Einaudi": _concepts(
        "genre:classical mood:melancholic mood:calm*.8 instrument:piano tempo:slow*.4"
    ),
    "Bob Marley": _concepts("genre:reggae mood:relaxed mood:happy*.7 setting:beach*.5"),
    "Miles Davis": _concepts(
        "genre:jazz mood:relaxed*.7 mood:nostalgic*.6 instrument:saxophone*.5 instrument:brass*.8"
    ),
    "Koji Kondo": _concepts("genre:chiptune mood:playful mood:happy*.7 instrument:8-bit*.8"),
}

#: Words and hyphenated words; apostrophes inside a word are kept ("don't").
_TOKEN = re.compile(r"[^\W_]+(?:['\u2019-][^\W_]+)*")


def tokenize(text: str) -> list[str]:
    """Split text into lower-case word tokens, keeping inner hyphens ("lo-fi")."""
    return _TOKEN.findall(text.casefold())


def stem(token: str) -> str:
    """Fold a plain English plural onto its singular, so "beats" finds "Beat"."""
    if len(token) > 3 and token.endswith("s") and not token.endswith("ss"):
        return token[:-1]
    return token


#: Parts a generated artist's name is made of: "{first} {second}".
ARTIST_FIRST: Final = (
    "Neon", "Lunar", "Crystal", "Static", "Velvet", "Solar", "Midnight", "Pixel", "Echo",
    "Silver", "Cosmic", "Arctic", "Golden", "Hollow", "Crimson", "Electric", "Digital",
    "Wild", "Paper", "Glass", "Cloud", "Amber", "Ivory", "Shadow", "Sonic", "Atomic",
    "Coral", "Copper", "Indigo", "Jade", "Marble", "Nova", "Onyx", "Polar", "Quartz",
    "Retro", "Scarlet", "Tidal", "Ultra", "Violet", "Winter", "Zenith", "Aurora", "Blaze",
    "Cinder", "Drift", "Ember", "Frost", "Galactic", "Harbor", "Iron", "Jet", "Kinetic",
    "Lucid", "Mystic", "Night", "Orbit", "Prism", "Rogue", "Stellar",
)  # fmt: skip
ARTIST_SECOND: Final = (
    "Collective", "Audio", "Sound", "Waves", "Pulse", "Echoes", "Beats", "Studio",
    "Orchestra", "Project", "Machine", "Theory", "Signal", "Dreams", "Lights", "Kids",
    "Club", "Syndicate", "Riders", "Division", "Ensemble", "Crew", "Society", "Records",
    "Tapes", "Radio", "Circuit", "Garden", "Empire", "Motion", "Avenue", "Harmonics",
    "Frequency", "Atlas", "Loop", "Mirage", "Voyage", "Parade", "Factory", "District",
    "Horizon", "Union", "Method", "Rhythm", "Season",
)  # fmt: skip
#: Parts of a generated album's name: "{first} {second}".
ALBUM_FIRST: Final = (
    "Midnight", "Summer", "Endless", "Lost", "Neon", "Silent", "Distant", "Broken",
    "Golden", "Hidden", "Electric", "Frozen", "Infinite", "Parallel", "Open", "Northern",
    "Secret", "Velvet", "Wandering", "Final",
)  # fmt: skip
ALBUM_SECOND: Final = (
    "Sessions", "Tapes", "Stories", "Chapters", "Signals", "Horizons", "Diaries",
    "Journeys", "Nights", "Dreams", "Frequencies", "Anthems", "Sketches", "Worlds",
    "Seasons", "Memories", "Waves", "Letters", "Rooms", "Vol. 1",
)  # fmt: skip
