"""The emulator's live state, which tests observe and steer.

`Emulator` owns everything that changes while an app runs: the catalog and
its ranker, the fault configuration and its seeded RNG, faults forced on the
next requests, the rate-limit buckets, the request-id counter and the request
log. The ASGI app (`_app`) is a thin HTTP skin over it. Every method is
thread-safe, because a test thread steers an app that a server thread runs.
"""

from __future__ import annotations

import hashlib
import random
import secrets
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import attrs

from audioscape_async import _constants as c
from audioscape_async import _json

from . import _defaults as d
from ._catalog import Catalog
from ._faults import FAULT_NAMES, Faults
from ._ranking import Method, Ranked, Ranker
from ._ratelimit import KeyRateLimit, TokenBuckets
from ._validation import SearchRequest, parse_search


@attrs.frozen
class RequestRecord:
    """One search request as the emulator saw it.

    `key_id` is a short hash of the API key (never the key itself), None when
    no key was sent. `status` is None when no answer was delivered: "drop",
    "hang", or `client_disconnected` (the client left before its answer went
    out, say while a "latency" fault held it). `offset`, `limit`, `query`,
    `filters` and `search_method` are None when the request did not get that
    far (refused, faulted before validation); `filters` is the `filters`
    object exactly as sent. `headers` are the request's headers, lower-cased,
    without `x-api-key`, `authorization` and `cookie`. `traceparent` is the
    W3C trace context the client sent (its ``traceparent`` header), if any: the
    client's span this request belongs to.
    """

    time: float
    request_id: str
    key_id: str | None
    status: int | None
    faults: tuple[str, ...]
    offset: int | None = None
    limit: int | None = None
    query: str | None = None
    search_method: str | None = None
    # Dicts cannot be hashed: a record hashes by the rest.
    filters: dict[str, Any] | None = attrs.field(default=None, hash=False)
    headers: dict[str, str] = attrs.field(factory=dict, hash=False)
    client_disconnected: bool = False
    traceparent: str | None = None
    #: About how many bytes the record holds, for the log's byte bound.
    size: int = attrs.field(default=0, repr=False, eq=False)

    def to_json(self) -> dict[str, Any]:
        """The record as the admin endpoint shows it."""
        shown = attrs.asdict(self, recurse=False, filter=lambda a, _: a.name != "size")
        return shown | {"faults": list(self.faults)}


@attrs.frozen
class Begun:
    """What `Emulator.begin` decides for a new search request."""

    arrival: float
    request_id: str
    faults: tuple[str, ...]
    generation: int


class Emulator:
    """The observable, steerable state of one emulated AudioScape API.

    Reach it as `app.state.emulator` (or `EmulatorServer.emulator`):

        >>> emulator = create_app(tracks=100).state.emulator
        >>> emulator.force_fault("503")       # the next request gets a 503
        >>> emulator.requests                 # what was asked so far
        []
    """

    def __init__(
        self,
        catalog: Catalog,
        *,
        seed: int = d.DEFAULT_SEED,
        api_keys: Sequence[str] = (d.DEMO_API_KEY,),
        rate_limit: KeyRateLimit | None = None,
        faults: Faults | Mapping[str, float] | None = None,
        semantic: bool = True,
        clock: Callable[[], float] = time.monotonic,
        admin_token: str | None = None,
        log_limit: int = d.REQUEST_LOG_LIMIT,
        log_max_bytes: int = d.REQUEST_LOG_MAX_BYTES,
    ) -> None:
        if isinstance(api_keys, str):
            raise TypeError("api_keys must be a sequence of keys, not one string")
        keys = tuple(api_keys)
        if not keys or not all(isinstance(k, str) and k for k in keys):
            raise ValueError("api_keys must hold at least one non-empty string")
        if admin_token is not None and (not isinstance(admin_token, str) or not admin_token):
            raise ValueError("admin_token must be a non-empty string")
        for name, bound in (("log_limit", log_limit), ("log_max_bytes", log_max_bytes)):
            if isinstance(bound, bool) or not isinstance(bound, int) or bound < 1:
                raise ValueError(f"{name} must be a positive integer, got {bound!r}")
        self.seed = seed
        self.api_keys = keys
        self._admin_token = admin_token or secrets.token_urlsafe(d.ADMIN_TOKEN_BYTES)
        self._log_limit = log_limit
        self._log_max_bytes = log_max_bytes
        self._log_bytes = 0
        self.semantic = semantic
        self._clock = clock
        self._lock = threading.Lock()
        self._initial = (catalog, rate_limit, Faults.coerce(faults))
        self._key_ids = {key: self.key_id(key) for key in keys}
        self._ranker = Ranker(catalog)
        self._log: deque[RequestRecord] = deque()
        # Bumped by every reset, so a request that began before it (a "hang" whose
        # client gives up later) cannot land in the fresh log.
        self._generation = 0
        # A live measure, not history: a reset leaves it alone.
        self._in_flight = 0
        self._restore()

    def _restore(self) -> None:
        catalog, rate_limit, faults = self._initial
        if self._ranker.catalog is not catalog:
            self._ranker = Ranker(catalog)
        self._faults = faults
        self._buckets = TokenBuckets(rate_limit, self._clock) if rate_limit else None
        self._rng = random.Random(f"audioscape-faults:{self.seed}")
        self._forced: deque[str] = deque()
        self._log.clear()
        self._log_bytes = 0
        self._count = 0
        self._status_counts: Counter[str] = Counter()
        self._fault_counts: Counter[str] = Counter()
        self._search_ids = 0
        self._other_ids = 0
        self._generation += 1

    # ----------------------------------------------------------------- public steering

    @property
    def admin_token(self) -> str:
        """What the admin endpoints want as `Authorization: Bearer <token>`."""
        return self._admin_token

    @property
    def catalog(self) -> Catalog:
        """The catalog being searched now."""
        return self._ranker.catalog

    @property
    def faults(self) -> Faults:
        """The fault configuration in force."""
        return self._faults

    @property
    def rate_limit(self) -> KeyRateLimit | None:
        """The per-key rate limit in force, if any."""
        return self._buckets.limit if self._buckets else None

    @property
    def requests(self) -> list[RequestRecord]:
        """The search requests so far, oldest first.

        The newest are kept: at most 100,000 records and about 32 MB (set with
        `log_limit` and `log_max_bytes`); the counters of `summary` count all.
        """
        with self._lock:
            return list(self._log)

    @property
    def in_flight(self) -> int:
        """How many search requests are being handled now (a "hang" stays until it ends)."""
        with self._lock:
            return self._in_flight

    def reset(self) -> None:
        """Back to the state at creation: catalog, faults and rate limit as given, empty
        log, full buckets, no forced faults, request ids and fault draws from the start.

        Requests still in flight finish as they began, but no longer reach the log."""
        with self._lock:
            self._restore()

    def set_faults(self, faults: Faults | Mapping[str, float] | None) -> None:
        """Replace the fault configuration (a `Faults`, a rate mapping, or None for none)."""
        checked = Faults.coerce(faults)
        with self._lock:
            self._faults = checked

    def force_fault(self, name: str, count: int = 1) -> None:
        """Give the next `count` search requests the fault `name`, whatever the rates say."""
        if name not in FAULT_NAMES:
            raise ValueError(f"unknown fault {name!r} (known: {', '.join(FAULT_NAMES)})")
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"count must be a positive integer, got {count!r}")
        with self._lock:
            self._forced.extend([name] * count)

    def replace_catalog(self, catalog: Catalog) -> None:
        """Search `catalog` from now on (as when the real catalog changes mid-crawl).

        Cached results belong to the old catalog and are dropped with it.
        """
        ranker = Ranker(catalog)
        with self._lock:
            self._ranker = ranker

    def set_rate_limit(self, rate_limit: KeyRateLimit | None) -> None:
        """Replace the per-key rate limit (None: no limit); every bucket starts full."""
        with self._lock:
            self._buckets = TokenBuckets(rate_limit, self._clock) if rate_limit else None

    @staticmethod
    def key_id(api_key: str) -> str:
        """The short, non-reversible id under which `api_key` appears in the log."""
        return "key_" + hashlib.sha256(api_key.encode()).hexdigest()[:10]

    def search(
        self,
        query: str,
        *,
        limit: int = c.DEFAULT_LIMIT,
        offset: int = c.DEFAULT_OFFSET,
        filters: Mapping[str, Any] | None = None,
        semantic: bool | None = None,
    ) -> dict[str, Any]:
        """Answer a search directly, as the endpoint would (no faults, no rate limit, no log).

        Raises `ValueError` with the endpoint's error message for an invalid request.
        """
        body: dict[str, Any] = {"query": query, "limit": limit, "offset": offset}
        if filters is not None:
            body["filters"] = dict(filters)
        request = parse_search(body)
        use_semantic = self.semantic if semantic is None else semantic
        method: Method = "semantic" if use_semantic else "text"
        ranker = self.ranker()
        ranked = ranker.rank(request.query, request.filters, method)
        answer: dict[str, Any] = _json.loads(self.answer(request, ranker, ranked))
        return answer

    def summary(self, last: int | None = None) -> dict[str, Any]:
        """The request log in brief, as `GET /_emulator/requests` returns it."""
        with self._lock:
            records = list(self._log)
            body = {
                "count": self._count,
                "by_status": dict(sorted(self._status_counts.items())),
                "by_fault": dict(sorted(self._fault_counts.items())),
            }
        shown = records if last is None else records[max(0, len(records) - last) :]
        body["requests"] = [record.to_json() for record in shown]
        return body

    def state(self) -> dict[str, Any]:
        """The configuration in force, as `GET /_emulator/state` returns it."""
        with self._lock:
            return {
                "catalog": {"tracks": len(self.catalog), "description": self.catalog.description},
                "seed": self.seed,
                "semantic": self.semantic,
                "api_key_ids": sorted(set(self._key_ids.values())),
                "faults": self._faults.to_json(),
                "forced": list(self._forced),
                "rate_limit": self._buckets.limit.to_json() if self._buckets else None,
                "cached_results": self._ranker.cache_size(),
                "in_flight": self._in_flight,
            }

    # ----------------------------------------------------------------- used by the app

    def begin(self, forced: tuple[str, ...] | None) -> Begun:
        """A new search request: its arrival time, request id and faults.

        The RNG is drawn for every request, forced or not, so forcing one
        request's fault leaves the faults of the others where they were.
        """
        with self._lock:
            arrival = self._clock()
            request_id = _request_id(self.seed, "search", self._search_ids)
            self._search_ids += 1
            self._in_flight += 1
            drawn = self._faults.draw(self._rng)
            if forced is not None:
                faults = forced
            elif self._forced:
                faults = (self._forced.popleft(),)
            else:
                faults = drawn
            return Begun(arrival, request_id, faults, self._generation)

    def other_request_id(self) -> str:
        """A request id for an answer outside the search endpoint (404, 405, admin)."""
        with self._lock:
            self._other_ids += 1
            return _request_id(self.seed, "other", self._other_ids - 1)

    def authorize(self, api_key: str | None) -> str | None:
        """The key id of a known key, else None."""
        return self._key_ids.get(api_key) if api_key else None

    def take_token(self, key_id: str) -> int | None:
        """Spend a rate-limit token: None if allowed, else seconds for `Retry-After`."""
        with self._lock:
            return self._buckets.take(key_id) if self._buckets else None

    def ranker(self) -> Ranker:
        """The ranker of the catalog being searched now."""
        with self._lock:
            return self._ranker

    @staticmethod
    def answer(request: SearchRequest, ranker: Ranker, ranked: Ranked) -> bytes:
        """The JSON body of a successful search, from the ranker that ranked it."""
        body = {
            "tracks": ranker.page(ranked, request.offset, request.limit),
            "artists": ranked.artists,
            "albums": ranked.albums,
            "meta": {
                "total": ranked.total,
                "limit": request.limit,
                "offset": request.offset,
                "search_method": ranked.method,
                "matched_artist": ranked.matched_artist,
            },
        }
        return _json.dumps(body)

    def finish(self) -> None:
        """A search request's handler is done (answered, dropped, or given up on)."""
        with self._lock:
            self._in_flight = max(0, self._in_flight - 1)

    def record(self, record: RequestRecord, generation: int) -> None:
        """Log a finished search request (unless a reset came since it began)."""
        with self._lock:
            if generation != self._generation:
                return
            log = self._log
            log.append(record)
            self._log_bytes += record.size + _RECORD_OVERHEAD
            while len(log) > self._log_limit or (
                self._log_bytes > self._log_max_bytes and len(log) > 1
            ):
                self._log_bytes -= log.popleft().size + _RECORD_OVERHEAD
            self._count += 1
            if record.client_disconnected:
                status = "client_disconnected"
            else:
                status = str(record.status) if record.status else "none"
            self._status_counts[status] += 1
            for fault in record.faults:
                self._fault_counts[fault] += 1


#: What a record costs beyond its body and headers (the object, ids, numbers).
_RECORD_OVERHEAD = 400


def _request_id(seed: int, kind: str, number: int) -> str:
    """Request ids look random but follow from the seed and the request's number."""
    digest = hashlib.blake2b(f"{seed}:{kind}:{number}".encode(), digest_size=12).hexdigest()
    return f"req_{digest}"
