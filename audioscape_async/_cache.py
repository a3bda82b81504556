"""`SearchCache`: serve repeated searches from memory, share identical ones in flight.

One stage of the request pipeline, entered once per `search` with the key of
the request as sent (`cache_key`) and the rest of the pipeline as `call`::

    page = await cache.fetch(key, call, deadline=deadline)

What `fetch` does, in order:

1. **Hit.** A fresh entry (younger than `ttl`) comes back at once with
   ``cache_status == "hit"``. In process this is a dict lookup under a lock,
   with nothing awaited, and every hit gets the same page: pages are frozen,
   so no caller can change it for another (see benchmarks/results.md for its
   cost). With a backend the read is a Redis round trip, made by the leader of
   step 2, so identical searches arriving meanwhile wait for that one read.
2. **Coalescing.** Otherwise, if the same key is already in flight *on the
   caller's event loop*, the caller waits for that call (``"coalesced"``);
   else it becomes the leader and awaits `call()` itself (``"miss"``).
   Everything runs in the callers' own tasks: no task is spawned. If the
   leader is cancelled before `call()` returns, its followers wake up and the
   first of them leads a new call, so a cancelled caller never takes the page
   away from the others. A follower waits no longer than its own `deadline`,
   and then raises `DeadlineExceededError`.
3. **Errors are never cached.** The leader's error reaches every follower,
   except its `DeadlineExceededError` (its own budget, not the server's word:
   the followers go on as if it were cancelled). If it is transient
   (`is_transient`: 429, 5xx, connection errors, timeouts, an open circuit),
   an expired entry younger than ``ttl + stale_if_error`` is
   served instead with ``cache_status == "stale"``, logged at WARNING once per
   key until the key is refreshed. Any other error (400, 401, validation) is
   raised.

4. **Stale while revalidate.** With ``stale_while_revalidate=S`` (RFC 5861's
   meaning), an entry between ``ttl`` and ``ttl + S`` old is served at once
   with ``cache_status == "stale"``, and one refresh of its key starts in the
   background, however many callers find it: in the task group of the client
   whose call found it (`_background.Background`, at most `max_refreshes` at
   once per client), on that client's loop, with the client's own defaults
   (not the caller's deadline). Closing that client cancels it; the next
   lookup by any client starts another. A refresh's failure is logged
   (WARNING once per key until one succeeds) and counted
   (``refresh_failures``), never raised, and the key is not refreshed again
   in this process for `REFRESH_PAUSE` seconds (a failing API gets one call
   per key per pause, not one per lookup); the stale page is served until
   ``ttl + S``, then the key is a miss (or stale-if-error).

**One call per key for the whole fleet.** With a `RedisBackend`, a miss is
fetched by one process: the leader of each process's flight asks Redis for
the key's lease (`_scripts.LEAD`, which also reads the entry). The process
that takes it calls and stores the page, then lets go; the others read the
store until the page appears (``cache_status == "coalesced"``), each within
its own deadline, and take the lease over if it is let go with no page (its
call failed) or expires (its process died: after `LEASE` seconds at most).
Refreshes take the same lease, and a process that takes it and finds the
entry fresh (another refreshed it meanwhile) does not call. So N processes
missing or refreshing one key at once make one upstream call.

``fetch(..., refresh=True)`` is a second look (a walk's re-ask of a page that
looked wrong): it neither reads the entry nor joins a call in flight, always
calls, and its page replaces the entry; its error is raised, never a stale page.

**Threads and event loops.** One cache may serve several event loops at once
(two sync `Client`s in two threads, ``asyncio.run`` in two threads, asyncio
and trio side by side). Its state (entries, flights, counters) is guarded by
one `threading.Lock`, held only for a few dict operations and never across an
await. A flight belongs to the loop of its leader: flights are keyed by
``(key, loop)``, and a follower only ever waits on an event of its own loop.
A caller on another loop does not wait for that flight: it leads one of its
own. So at most one call per key is in flight *per loop*, and a primitive of
one loop is never touched from another (which would hang or raise). The
pages themselves are shared across loops through the entries: once one loop
has stored a page, every loop gets hits.

**Bounds.** Entries live in an LRU of at most `max_entries` pages and
`max_bytes` bytes in process, or, with a `RedisBackend`, in Redis with a
time to live of ``ttl + max(stale_if_error, stale_while_revalidate)``, the
entry's lifetime. A
page counts as the length of its JSON body, decompressed (`_page_bytes`); a
decoded page takes about three times that in memory (tracemalloc, 100-track
pages of the emulator), so the default 64 MiB hold about 200 MB. A page
larger than `max_bytes` is served but not kept. Entries past their lifetime
are swept on each store, oldest first (store order is
expiry order, since every entry lives as long), so memory is not held by
entries nobody reads again. Ages are measured with the
module's `clock` in process, and with wall time (`wall_clock`) in Redis,
whose entries are shared by hosts whose monotonic clocks have nothing in
common.
"""

from __future__ import annotations

import hashlib
import math
import secrets
import threading
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs

from ._context import current_loop, fork_generation
from ._exceptions import (
    AudioScapeError,
    BackendUnavailableError,
    DeadlineExceededError,
    is_transient,
)
from ._hooks import emit_cache
from ._json import dumps, dumps_sorted, loads
from ._logs import logger
from ._models import SearchResponse
from ._options import deadline_error
from ._validation import (
    check_int_range,
    check_optional,
    check_seconds,
    check_store_lifetime,
)

if TYPE_CHECKING:
    import anyio

    from ._background import Background
    from ._redis import RedisBackend

__all__ = ["SearchCache", "cache_key"]

#: The in-process store's clock, looked up at each call so tests can replace it.
clock: Callable[[], float] = time.monotonic
#: The clock of entries shared through a backend (seconds since the epoch).
wall_clock: Callable[[], float] = time.time

#: Bumped when the stored form of an entry changes; older entries are misses.
_FORMAT = 1

#: The default bound of the in-process store, in bytes of JSON bodies (64 MiB).
DEFAULT_MAX_BYTES = 64 * 2**20

#: The default number of refreshes one client runs at once (`stale_while_revalidate`).
DEFAULT_MAX_REFRESHES = 16

#: Seconds after a failed background refresh of a key before this process tries it again:
#: a failing API gets one refresh call per key per pause, not one per lookup.
REFRESH_PAUSE = 1.0

#: Seconds a fleet's fetcher holds a key's lease: how long the others wait for it at
#: most if its process dies (it lets go as soon as its call ends, either way).
LEASE = 10.0

#: Seconds a lease's release may run past its caller's deadline: one small command, sent
#: even then (Redis runs it whether or not its answer is awaited), which spares the fleet
#: a wait of up to `LEASE` for a lease nobody holds.
_RELEASE_GRACE = 0.1

#: The first and the longest pause between two reads of the store while another
#: process fetches a page (doubling in between).
_POLL_FIRST, _POLL_MAX = 0.005, 0.05

#: A call of the pipeline, as the cache stage runs it.
Call = Callable[[], Awaitable[SearchResponse]]


def cache_key(
    owner: str, query: str, limit: int, offset: int, filters_json: Mapping[str, Any] | None
) -> str:
    """The cache key of one search request as sent, by one owner.

    `owner` is the fingerprint of the base URL and API key the request is sent
    with (`_fingerprint`): two keys never share a page or a call in flight.
    The query is stripped of white space at its ends and nothing else (the
    API's rules for case are unknown); filters are the API's JSON object,
    written with sorted keys, so equal filters make equal keys.
    """
    return dumps_sorted([owner, query.strip(), limit, offset, filters_json]).decode()


def _as(page: SearchResponse, status: str) -> SearchResponse:
    # Pages are frozen: one that already says `status` is served as is, to every caller.
    return page if page.cache_status == status else attrs.evolve(page, cache_status=status)


def _page_bytes(page: SearchResponse) -> int:
    """What a page counts against `max_bytes`: the length of its JSON body, decompressed.

    The answer's own ``Content-Length`` when it came uncompressed (exact, and
    free); otherwise the length of the page written again as JSON by msgspec,
    which encodes the frozen models by their fields, named as the API names them
    (paid once per store, never per hit).
    """
    headers = page.headers
    if headers is not None and "content-encoding" not in headers:
        length = headers.get("content-length", "")
        if length.isascii() and length.isdigit():
            return int(length)
    fields = {"tracks": page.tracks, "artists": page.artists, "albums": page.albums}
    return len(dumps({**fields, "meta": page.meta}))


@attrs.define(slots=True)
class _Entry:
    page: SearchResponse
    stored_at: float
    shared: bool  # from a backend: `stored_at` is wall time
    size: int = 0  # what it counts against `max_bytes` (in process)

    def age(self) -> float:
        return (wall_clock() if self.shared else clock()) - self.stored_at


class _Flight:
    """One call in flight for a key on one event loop: its leader's outcome, once there is one."""

    __slots__ = ("abandoned", "done", "entry", "error", "page", "status", "traceback")

    def __init__(self, done: anyio.Event) -> None:
        self.done = done  # an event of the leader's loop: only its followers wait on it
        self.page: SearchResponse | None = None
        self.error: Exception | None = None
        self.traceback: TracebackType | None = None
        self.abandoned = False
        self.entry: _Entry | None = None  # what the leader found in a backend
        #: What the followers' pages say: "coalesced" (the leader called, or another
        #: process did), "hit" or "stale" (the leader found it in the store).
        self.status = "coalesced"


#: A flight's place: the request's key and the event loop of its leader.
_FlightKey = tuple[str, object]


class SearchCache:
    """A cache of search pages with request coalescing, stale-while-revalidate and stale-if-error.

    >>> cache = SearchCache(ttl=300, max_entries=10_000, stale_while_revalidate=60)
    >>> cache.stats()["hits"]
    0

    `ttl`: seconds a page is served as fresh. `max_entries` and `max_bytes`:
    the in-process LRU's bounds, in pages and in bytes of their JSON bodies
    (64 MiB by default; a decoded page takes about three times its body in
    memory). `stale_while_revalidate`: seconds past `ttl` that an expired
    page is still served at once while one background refresh per key gets a
    new one (0: never), at most `max_refreshes` at once per client.
    `stale_if_error`: seconds past `ttl` that an expired page may still be
    served when a refresh fails transiently (0: never). `backend`: a
    `RedisBackend` whose store holds the entries instead, for every process
    that uses it, and which elects one process to fetch each missing or stale
    page. `stats()` counts the pages served each way, and the refreshes. One
    cache may be shared by clients on several threads and event loops. See
    the module docstring for the details.
    """

    __slots__ = (
        "_backend",
        "_bytes",
        "_entries",
        "_flights",
        "_lock",
        "_refreshing",
        "_stored",
        "_warned",
        "coalesced",
        "hits",
        "max_bytes",
        "max_entries",
        "max_refreshes",
        "misses",
        "refresh_failures",
        "refreshes",
        "stale",
        "stale_if_error",
        "stale_while_revalidate",
        "ttl",
    )

    def __init__(
        self,
        ttl: float = 300.0,
        max_entries: int = 10_000,
        stale_if_error: float = 0.0,
        backend: RedisBackend | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        stale_while_revalidate: float = 0.0,
        max_refreshes: int = DEFAULT_MAX_REFRESHES,
    ) -> None:
        self.ttl = check_seconds("cache.ttl", ttl)
        self.max_entries = check_int_range("cache.max_entries", max_entries, 1)
        self.max_bytes = check_int_range("cache.max_bytes", max_bytes, 1)
        self.stale_if_error = check_seconds("cache.stale_if_error", stale_if_error, zero=True)
        self.stale_while_revalidate = check_seconds(
            "cache.stale_while_revalidate", stale_while_revalidate, zero=True
        )
        self.max_refreshes = check_int_range("cache.max_refreshes", max_refreshes, 1)
        check_store_lifetime(self.ttl, self.stale_if_error)
        check_store_lifetime(self.ttl, self.stale_while_revalidate, window="stale_while_revalidate")
        if backend is not None:
            from ._redis import RedisBackend

            check_optional("cache.backend", backend, RedisBackend)
        self._backend = backend
        # Guards everything below; held for a few dict operations, never across an await.
        self._lock = threading.Lock()
        #: The in-process entries, least recently used first.
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        #: The same entries, least recently stored first: the order they expire in.
        self._stored: OrderedDict[str, _Entry] = OrderedDict()
        self._bytes = 0
        self._flights: dict[_FlightKey, _Flight] = {}
        #: The keys with a refresh running in this process (or paused after one failed):
        #: the process's fork generation then (a forked child does not wait for its
        #: parent's refreshes), and the `clock` instant the claim lasts until.
        self._refreshing: dict[str, tuple[int, float]] = {}
        self._warned: set[str] = set()
        self.hits = 0
        self.misses = 0
        self.coalesced = 0
        self.stale = 0
        self.refreshes = 0
        self.refresh_failures = 0

    def __repr__(self) -> str:
        return (
            f"SearchCache(ttl={self.ttl:g}, max_entries={self.max_entries}, "
            f"max_bytes={self.max_bytes}, stale_while_revalidate="
            f"{self.stale_while_revalidate:g}, stale_if_error={self.stale_if_error:g}, "
            f"backend={self._backend!r})"
        )

    @property
    def backend(self) -> RedisBackend | None:
        """The shared store, or None for the in-process one."""
        return self._backend

    @property
    def lifetime(self) -> float:
        """Seconds an entry is kept: ``ttl`` plus the longer of its two stale windows."""
        return self.ttl + max(self.stale_if_error, self.stale_while_revalidate)

    def stats(self) -> dict[str, int]:
        """The counters, and the entries the in-process store holds now, in number and bytes.

        ``hits``, ``misses``, ``coalesced`` and ``stale`` count the pages served
        each way; ``refreshes`` the background refreshes that stored a page, and
        ``refresh_failures`` those that failed (logged, never raised).
        """
        with self._lock:
            return {
                "hits": self.hits,
                "misses": self.misses,
                "coalesced": self.coalesced,
                "stale": self.stale,
                "refreshes": self.refreshes,
                "refresh_failures": self.refresh_failures,
                "entries": len(self._entries),
                "bytes": self._bytes,
            }

    def clear(self) -> None:
        """Forget every in-process entry (a backend's entries expire on their own)."""
        with self._lock:
            self._entries.clear()
            self._stored.clear()
            self._bytes = 0
            self._warned.clear()

    async def fetch(
        self,
        key: str,
        call: Call,
        *,
        deadline: float | None,
        refresh: bool = False,
        background: Background | None = None,
        refresh_call: Call | None = None,
    ) -> SearchResponse:
        """The page for `key`: from the cache, from a call in flight, or from `call()`.

        `deadline` is a `time.monotonic()` instant (the caller's whole budget) or
        None; it bounds how long this caller waits for another's call or for a
        backend's read. With `refresh`, the page comes from `call()` and
        replaces the entry (see the module docstring). `background` (the
        calling client's task group) and `refresh_call` (the same request under
        the client's defaults), given together, let a stale entry be served
        while it is refreshed; without them, an entry past `ttl` is not served
        at once.
        """
        entry: _Entry | None = None
        if self._backend is None and not refresh:
            stale: SearchResponse | None = None
            # acquire/release: cheaper than `with` here, on the path whose cost counts.
            lock = self._lock
            lock.acquire()
            try:
                entry = self._entries.get(key)
                if entry is not None:
                    age = clock() - entry.stored_at
                    if age < self.ttl:
                        self._entries.move_to_end(key)
                        self.hits += 1
                        return entry.page  # stored as a "hit"
                    if age >= self.lifetime:
                        self._drop(key)
                        entry = None
                    elif background is not None and age < self.ttl + self.stale_while_revalidate:
                        self._entries.move_to_end(key)
                        self.stale += 1
                        stale = entry.page
            finally:
                lock.release()
            if stale is not None:
                assert background is not None
                assert refresh_call is not None
                self._revalidate_soon(key, background, refresh_call)
                return _as(stale, "stale")
        flight_key = (key, current_loop())
        while True:
            with self._lock:
                flight = self._flights.get(flight_key)
                leading = flight is None or refresh
                if leading:
                    flight = self._flights[flight_key] = _Flight(_new_event())
            assert flight is not None
            if leading:
                return await self._lead(
                    key,
                    call,
                    entry,
                    flight_key,
                    flight,
                    deadline,
                    refresh,
                    background,
                    refresh_call,
                )
            try:
                page = await self._follow(flight, deadline)
            except Exception as error:
                return self._stale_or_raise(key, entry or flight.entry, error)
            if page is not None:
                return self._counted(page, flight.status)
            # The leader was cancelled: the first follower to get here leads anew.

    async def _lead(
        self,
        key: str,
        call: Call,
        entry: _Entry | None,
        flight_key: _FlightKey,
        flight: _Flight,
        deadline: float | None,
        refresh: bool,
        background: Background | None,
        refresh_call: Call | None,
    ) -> SearchResponse:
        token: str | None = None
        try:
            try:
                if self._backend is not None and not refresh:
                    # Read the shared store as the leader, so that identical
                    # searches arriving meanwhile wait for this one read.
                    entry = flight.entry = await self._load_fresh(key, deadline)
                    if entry is not None:
                        age = entry.age()
                        if age < self.ttl:
                            return self._served(flight, entry.page, "hit")
                        if (
                            background is not None
                            and refresh_call is not None
                            and age < self.ttl + self.stale_while_revalidate
                        ):
                            self._revalidate_soon(key, background, refresh_call)
                            return self._served(flight, entry.page, "stale")
                    if self._fleet():
                        elected = await self._elect(key, deadline)
                        if isinstance(elected, _Entry):  # another process fetched it
                            return self._served(flight, elected.page, "coalesced")
                        token = elected
                page = await call()
                flight.page = page
                with self._lock:
                    # A refresh begun meanwhile holds a newer page: this one is not kept.
                    current = self._flights.get(flight_key) is flight
                if current:
                    await self._store(key, page, deadline)
            except Exception as error:
                if not isinstance(error, DeadlineExceededError):
                    # Out of time is this leader's own budget, not the server's word: as
                    # if cancelled, its followers wake and one of them calls again.
                    flight.error, flight.traceback = error, error.__traceback__
                if refresh:
                    raise  # a second look wants the server's word, not the page it doubts
                return self._stale_or_raise(key, entry, error)
            with self._lock:
                self.misses += 1
            return _as(page, "miss")
        finally:
            if token is not None:  # after the store: the others read it next
                await self._release(key, token, deadline)
            # On cancellation with no page yet, nobody has the outcome: the
            # followers wake to an abandoned flight and one of them calls again.
            if flight.page is None and flight.error is None:
                flight.abandoned = True
            with self._lock:
                if self._flights.get(flight_key) is flight:
                    del self._flights[flight_key]
            flight.done.set()  # in the leader's loop, the loop of every follower

    def _served(self, flight: _Flight, page: SearchResponse, status: str) -> SearchResponse:
        """The leader's page from the store or from another process, counted, for all."""
        flight.page, flight.status = page, status
        return self._counted(page, status)

    def _counted(self, page: SearchResponse, status: str) -> SearchResponse:
        """`page` as served with `status` ("hit", "stale" or "coalesced"), counted."""
        with self._lock:
            if status == "hit":
                self.hits += 1
            elif status == "stale":
                self.stale += 1
            else:
                self.coalesced += 1
        return _as(page, status)

    async def _follow(self, flight: _Flight, deadline: float | None) -> SearchResponse | None:
        """Wait for a leader's outcome: its page, its error raised, or None if it gave up."""
        import anyio

        if deadline is None:
            await flight.done.wait()
        else:
            with anyio.move_on_after(deadline - time.monotonic()):
                await flight.done.wait()
            if not flight.done.is_set():
                raise deadline_error("while waiting for an identical search already in flight")
        if flight.error is not None:
            # From the leader's traceback each time, or every follower's raise
            # would add its frames to the one before.
            raise flight.error.with_traceback(flight.traceback)
        if flight.page is not None:
            return flight.page
        assert flight.abandoned
        return None

    def _stale_or_raise(self, key: str, entry: _Entry | None, error: Exception) -> SearchResponse:
        if entry is None or not is_transient(error):
            raise error
        age = entry.age()
        if age >= self.ttl + self.stale_if_error:
            raise error  # kept for stale-while-revalidate, past what an error may serve
        with self._lock:
            first = _first(self._warned, key, self.max_entries)
            self.stale += 1
        if first:
            logger.warning(
                "serving a stale page (%.0f s old) for search %s after: %s", age, key, error
            )
        return _as(entry.page, "stale")

    # -- the fleet and the background ---------------------------------------------------

    def _fleet(self) -> bool:
        """Whether the entries live in Redis now (not in process, falling back)."""
        backend = self._backend
        return backend is not None and not backend.use_local_store()

    async def _elect(self, key: str, deadline: float | None) -> _Entry | str | None:
        """Take the fleet's lease on fetching `key` (its token), or the page another fetched.

        While another process holds the lease, the store is read again at
        growing intervals until its page appears, the lease is free (its call
        failed, or its process died and the lease expired) or `deadline` passes.
        None: Redis refused the lease (out of memory, say), or fails and the
        backend falls back: this process calls, with no lease to let go.
        """
        import anyio

        backend = self._backend
        assert backend is not None
        name = _shared_key(key)
        token = secrets.token_hex(16)
        pause = _POLL_FIRST
        while True:
            try:
                taken, raw = await backend.lead(name, token, LEASE, deadline=deadline)
            except (anyio.get_cancelled_exc_class(), DeadlineExceededError):
                # Cancelled or out of time while Redis ran the script: the lease may be
                # this token's, and the fleet would wait for it until it expires.
                await self._release(key, token, deadline)
                raise
            except BackendUnavailableError as error:
                # No answer in time: Redis may have run the script all the same.
                await self._release(key, token, deadline)
                if backend.fall_back(error):
                    return None
                raise
            except AudioScapeError as error:  # reachable, but it refused: a call of our own
                logger.debug("no lease for search %s: %s", key, error)
                return None
            found = _decode(raw) if raw is not None else None
            if found is not None and found.age() < self.ttl:
                if taken:
                    await self._release(key, token, deadline)
                return found
            if taken:
                return token
            if deadline is not None:
                left = deadline - time.monotonic()
                if left <= pause:
                    await anyio.sleep(max(left, 0.0))
                    raise deadline_error("while another process fetched the same search")
            await anyio.sleep(pause)
            pause = min(pause * 2, _POLL_MAX)

    async def _release(self, key: str, token: str, deadline: float | None = None) -> None:
        """Let go of the fleet's lease on `key`, even in a cancelled task, within `deadline`
        (or `_RELEASE_GRACE` seconds, if that leaves less)."""
        import anyio

        if deadline is not None:
            deadline = max(deadline, time.monotonic() + _RELEASE_GRACE)
        backend = self._backend
        assert backend is not None
        with anyio.CancelScope(shield=True):  # bounded: every command has its own bound
            try:
                await backend.release(_shared_key(key), token, deadline=deadline)
            except AudioScapeError as error:  # it expires on its own, after LEASE seconds
                logger.debug("the lease of search %s was not let go: %s", key, error)

    def _revalidate_soon(self, key: str, background: Background, call: Call) -> None:
        """Start the refresh of `key` in `background`, unless one runs in this process."""
        generation, now = fork_generation(), clock()
        with self._lock:
            claims = self._refreshing
            claim = claims.get(key)
            if claim is not None and claim[0] == generation and now < claim[1]:
                return
            if len(claims) >= self.max_entries:  # bounded: forget the pauses that are over
                for old in [
                    k for k, (g, until) in claims.items() if g != generation or now >= until
                ]:
                    del claims[old]
            claims[key] = (generation, math.inf)

        def unclaim() -> None:  # refused, or dropped: its loop ended before it began
            with self._lock:
                self._refreshing.pop(key, None)

        if not background.start(lambda: self._revalidate(key, call), unclaim):
            unclaim()  # the client is closed, or runs its most refreshes already

    async def _revalidate(self, key: str, call: Call) -> None:
        """One background refresh of `key`: a new page stored, or the failure logged (and
        the key not refreshed again for `REFRESH_PAUSE` seconds)."""
        token: str | None = None
        failed = False
        try:
            if self._fleet():
                # While another process refreshes it, wait here (one task per key in
                # this process) for its page, rather than ask again at every lookup.
                elected = await self._elect(key, None)
                if isinstance(elected, _Entry):
                    return  # refreshed by another process
                token = elected
            page = await call()
            await self._store(key, page, None)
            await emit_cache("refreshed")
        except Exception as error:
            failed = True
            with self._lock:
                self.refresh_failures += 1
                first = _first(self._warned, "refresh " + key, self.max_entries)
            (logger.warning if first else logger.debug)(
                "could not refresh the stale page of search %s (served until it is %g s old): %s",
                key,
                self.ttl + self.stale_while_revalidate,
                error,
            )
        else:
            with self._lock:
                self.refreshes += 1
        finally:
            if token is not None:
                await self._release(key, token)
            with self._lock:
                if failed:
                    self._refreshing[key] = (fork_generation(), clock() + REFRESH_PAUSE)
                else:
                    self._refreshing.pop(key, None)

    # -- the stores ---------------------------------------------------------------------

    async def _store(self, key: str, page: SearchResponse, deadline: float | None) -> None:
        with self._lock:
            self._warned.discard(key)
            self._warned.discard("refresh " + key)
        backend = self._backend
        if backend is not None and not backend.use_local_store():
            value = _encode(page, wall_clock())
            try:
                await backend.set(_shared_key(key), value, self.lifetime, deadline=deadline)
                await emit_cache("stored")
                return
            except AudioScapeError as error:  # the page arrived: a lost store never fails its call
                if not (isinstance(error, BackendUnavailableError) and backend.fall_back(error)):
                    backend.store_failed(error)
                    return
        size = _page_bytes(page)
        entry = _Entry(_as(page, "hit"), clock(), shared=False, size=size)
        with self._lock:
            self._sweep(entry.stored_at)
            if key in self._entries:
                self._drop(key)  # the new page replaces it, kept or not
            if size > self.max_bytes:
                return  # served, not kept: it alone would push everything else out
            self._entries[key] = self._stored[key] = entry
            self._bytes += size
            entries = self._entries
            while len(entries) > self.max_entries or self._bytes > self.max_bytes:
                self._drop(next(iter(entries)))
        await emit_cache("stored")

    def _sweep(self, now: float) -> None:
        """Drop the entries past their lifetime, oldest stored first (lock held)."""
        stored = self._stored
        limit = self.lifetime
        while stored:
            key, entry = next(iter(stored.items()))
            if now - entry.stored_at < limit:
                return
            self._drop(key)

    def _drop(self, key: str) -> None:
        """Forget one in-process entry (lock held)."""
        entry = self._entries.pop(key)
        del self._stored[key]
        self._bytes -= entry.size

    async def _load_fresh(self, key: str, deadline: float | None) -> _Entry | None:
        """The backend's entry for `key` if it may still be served (fresh or stale)."""
        entry = await self._load(key, deadline)
        if entry is not None and entry.age() >= self.lifetime:
            return None
        return entry

    async def _load(self, key: str, deadline: float | None) -> _Entry | None:
        backend = self._backend
        assert backend is not None
        if not backend.use_local_store():
            try:
                raw = await backend.get(_shared_key(key), deadline=deadline)
            except BackendUnavailableError as error:
                if not backend.fall_back(error):
                    raise
            else:
                return _decode(raw) if raw is not None else None
        with self._lock:
            return self._entries.get(key)


def _first(warned: set[str], key: str, bound: int) -> bool:
    """Whether `key` is new to `warned` (added now; lock held): WARNING once, until a store."""
    if key in warned:
        return False
    if len(warned) >= bound:
        warned.clear()
    warned.add(key)
    return True


def _new_event() -> anyio.Event:
    import anyio

    return anyio.Event()


def _shared_key(key: str) -> str:
    # Bounded, and the query text is not left lying about in a shared store.
    return "cache:" + hashlib.sha256(key.encode()).hexdigest()


def _encode(page: SearchResponse, stored_at: float) -> bytes:
    """An entry as stored in a backend: a JSON header line, then the page as the API's JSON."""
    header = {"format": _FORMAT, "stored_at": stored_at, "request_id": page.request_id}
    return dumps(header) + b"\n" + dumps(page.to_dict())


def _decode(raw: bytes) -> _Entry | None:
    """An entry from a backend, or None for one this version cannot read (a miss)."""
    from ._decode import decode_search_response

    head, _, body = raw.partition(b"\n")
    try:
        header = loads(head)
        if not isinstance(header, dict) or header.get("format") != _FORMAT:
            return None
        stored_at = float(header["stored_at"])
        if not math.isfinite(stored_at):  # foreign: an age of -inf would be fresh for ever
            return None
        request_id = header.get("request_id")
        page = decode_search_response(body, request_id if isinstance(request_id, str) else None)
    except (KeyError, TypeError, ValueError, AudioScapeError):  # JSONError is a ValueError
        return None
    return _Entry(page, stored_at, shared=True)
