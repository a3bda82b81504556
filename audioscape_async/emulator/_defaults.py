"""Every fixed value of the emulator, in one place.

Facts of the real API (paths, header names, paging limits) live in
`audioscape_async._constants`; this module holds only what belongs to the
emulator itself: its demo key, its steering header, its defaults and limits.
"""

from __future__ import annotations

import datetime as _dt
from typing import Final
from urllib.parse import urlsplit

from audioscape_async import _constants as _c

#: The key every emulator accepts unless it is given keys of its own.
DEMO_API_KEY: Final = "demo-key-audioscape-emulator"

#: Request header, honoured only by the emulator, that forces faults on one request.
#: Its value is a fault name, several joined by commas, or "none".
FAULT_HEADER: Final = "x-emulator-fault"
#: The value of `FAULT_HEADER` that forces a clean answer, whatever the fault rates say.
NO_FAULT: Final = "none"

#: Where the search endpoint is mounted: the path of the real base URL plus the endpoint.
SEARCH_ROUTE: Final = urlsplit(_c.DEFAULT_BASE_URL).path + _c.SEARCH_PATH
#: The base path the SDK must be pointed at (appended to "http://host:port").
BASE_PATH: Final = urlsplit(_c.DEFAULT_BASE_URL).path
#: Prefix of the admin endpoints that steer an emulator in another process.
ADMIN_PREFIX: Final = "/_emulator"

#: The header that carries the request id on every answer.
REQUEST_ID_HEADER: Final = _c.REQUEST_ID_HEADERS[0]

#: Network defaults: loopback only, unless the user insists.
LOOPBACK_HOST: Final = "127.0.0.1"
LOOPBACK_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost"})
DEFAULT_PORT: Final = 8080
#: Seconds to wait for a server to accept connections before giving up.
STARTUP_TIMEOUT: Final = 15.0
#: A child process also generates its catalog before it listens, so it gets longer.
PROCESS_STARTUP_TIMEOUT: Final = 120.0
#: Seconds a stopping server waits for answers in flight before cancelling them.
SHUTDOWN_GRACE: Final = 2
#: Seconds to wait for a server thread or child process to end.
STOP_TIMEOUT: Final = 10.0

#: Catalog defaults.
DEFAULT_TRACKS: Final = 10_000
DEFAULT_SEED: Final = 0
#: Creation dates of generated tracks fall in this window.
FIRST_CREATED: Final = _dt.date(2019, 1, 1)
LAST_CREATED: Final = _dt.date(2025, 12, 31)
#: The creation date of a loaded track that has none (the day Roblox launched).
DEFAULT_CREATED: Final = _dt.date(2006, 9, 1)
#: The album of a loaded track that names none.
DEFAULT_ALBUM: Final = "Singles"
#: Tempo lookups treat any bpm above this as this.
MAX_TEMPO_BUCKET: Final = 300
#: Descriptor slots per track: two moods, one instrument, one setting.
MAX_MOODS: Final = 2
#: How many tracks a generated artist has, on average.
TRACKS_PER_ARTIST: Final = 30
#: How many tracks a generated album has, on average.
TRACKS_PER_ALBUM: Final = 10
#: Generated asset ids start here, like recent Roblox audio assets, and are spaced by
#: up to this stride so they are unique, increasing and not consecutive.
ASSET_ID_BASE: Final = 1_818_000_000
ASSET_ID_STRIDE: Final = 97

#: How many artists and albums an answer lists; both are counted over the whole
#: result set, but a catalog of a million tracks must not put 100k albums on every page.
GROUP_LIMIT: Final = 25
#: The ranked-result cache: at most this many queries, holding at most this many
#: track positions in all (a million-track result costs about 12 MB).
CACHE_MAX_ENTRIES: Final = 256
CACHE_MAX_ITEMS: Final = 8_000_000
#: The request log keeps this many newest records (its counters count every request)...
REQUEST_LOG_LIMIT: Final = 100_000
#: ...and at most about this many bytes of them (queries, filters and headers included).
REQUEST_LOG_MAX_BYTES: Final = 32 * 1024 * 1024
#: Request bodies larger than this are refused with 413 (the admin endpoints' too).
MAX_BODY_BYTES: Final = 64 * 1024
#: A request head (request line and headers) larger than this is refused with 400.
MAX_HEAD_BYTES: Final = 16 * 1024
#: The largest offset accepted: the largest integer a JSON number holds exactly.
MAX_OFFSET: Final = _c.MAX_JSON_INT
#: Seconds a request body may take to arrive in full; a slower one gets 408.
BODY_TIMEOUT: Final = 10.0
#: Seconds a connection may sit idle, or halfway through a request's head, before it is
#: closed (a keep-alive connection between requests, or a client that stopped mid-request).
IDLE_TIMEOUT: Final = 10.0

#: The admin endpoints want `Authorization: Bearer <token>`; the token is random per
#: emulator unless given, and `audioscape serve` prints it on this line.
ADMIN_TOKEN_LINE_PREFIX: Final = "admin token: "
#: Bytes of randomness in a generated admin token.
ADMIN_TOKEN_BYTES: Final = 24

#: Fault defaults.
DEFAULT_FAULT_LATENCY: Final = 1.0
#: A 429 carries no Retry-After unless asked: the documented 429 has none.
DEFAULT_RETRY_AFTER: Final = None
#: How a Retry-After is written when one is asked for: delta-seconds or an HTTP date.
RETRY_AFTER_FORMATS: Final = ("seconds", "date")

#: Answer bodies, as the real API words them.
ERROR_INVALID_KEY: Final = "Invalid API key"
ERROR_MISSING_QUERY: Final = "Missing required field: query"
ERROR_INTERNAL: Final = "Internal server error"
MESSAGE_TOO_MANY_REQUESTS: Final = "Too Many Requests"

#: Lines the serve command prints, which `EmulatorProcess` reads back.
URL_LINE_PREFIX: Final = "url: "
API_KEY_LINE_PREFIX: Final = "api key: "
