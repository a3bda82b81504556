"""One search, down the stages: options, cache, retry, then breaker, gate, transport, decode.

`Pipeline.search` takes a JSON body already checked and encoded (`_models`)
and the call's settled `CallOptions` (`_options`), and runs it down the
stages, each a module of its own:

- cache (`_cache`, when the client has a `SearchCache` and the call uses it):
  a fresh page, a share of an identical call in flight, or, when the rest
  fails transiently, a stale page;
- retry (`_retry`): attempts under the call's `RetryPolicy`, each sleep
  checked against the deadline first;
- circuit breaker (`_breaker`, when the client has one), per attempt: an open
  circuit fails at once, with `CircuitOpenError`;
- gate (`_gate`, or `_redis.SharedGate` for a limit shared through Redis): the
  client-wide pause after a 429 or 503, and the client-side rate limit;
- transport (`_transport`): the bytes on the wire, a bounded body back, or an
  SDK error;
- observers (`_hooks`, when the client has event hooks or OpenTelemetry
  listens): each stage above tells its `CallWatch` what it did, at one point
  per stage; a call nobody observes pays an ``is not None`` test per stage;
- an error status becomes its exception (`_exceptions.error_from_response`),
  a 2xx body becomes a `SearchResponse` (`_decode`), told of its exchange.

What is shared between a client and its `with_options` copies (the pool, the
cache, the breaker, and one gate per API key) is one `Shared`; what a copy may
change is its `ClientConfig`. Everything a call shares with other calls is
told apart by its owner, the fingerprint of its base URL and API key. A new
capability is a new stage here, not a branch in the client.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from ._background import Background
from ._config import ClientConfig
from ._context import closed_error, fork_generation, keep_inherited
from ._decode import decode_search_response
from ._exceptions import (
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    DeadlineExceededError,
    InvalidParameterError,
    error_from_response,
    request_id,
)
from ._fingerprint import DEFAULT_KEY_SECRET, fingerprint
from ._gate import Gate
from ._logs import logger
from ._models import SearchResponse, search_body
from ._options import CallOptions
from ._retry import call_with_retries
from ._transport import Outgoing, TransportStage

if TYPE_CHECKING:
    from ._breaker import CircuitBreaker
    from ._cache import SearchCache
    from ._crawl._stats import CrawlStats
    from ._crawl._walk import FetchPage
    from ._hooks import CallWatch, Observers, WalkWatch
    from ._ratelimit import RateLimit
    from ._redis import SharedGate

__all__ = ["Pipeline", "Shared"]


class Shared:
    """What a client shares with its `with_options` copies: pool, cache, breaker and gates.

    The pool and the breaker judge the server, so every copy shares them. The
    rate gate and a 429's pause are one API key's pace: there is one gate per
    owner (`_fingerprint`), made at the first copy of that owner.

    In a process forked from the one that built them, the first call builds a
    pool and gates of the child's own (`renew`), and leaves the parent's
    alone: never closed, since their sockets are the parent's too.

    `own_timeout` and `own_bound` are the timeout of the client that made
    this (its first `Pipeline`): the breaker counts a timeout under any other
    limit (a call's deadline, a per-call or a copy's timeout) only if the
    attempt had already run longer than `own_bound` (`_breaker`).
    """

    __slots__ = (
        "_gates",
        "_make_transport",
        "background",
        "breaker",
        "cache",
        "generation",
        "own_bound",
        "own_timeout",
        "rate_limit",
        "secret",
        "transport",
    )

    def __init__(
        self,
        transport: Callable[[], TransportStage],
        rate_limit: RateLimit | None,
        cache: SearchCache | None,
        breaker: CircuitBreaker | None,
    ) -> None:
        self.cache = cache
        self.breaker = breaker
        self.rate_limit = rate_limit
        #: The client's task group: its cache's stale-while-revalidate refreshes.
        self.background = None if cache is None else Background(cache.max_refreshes)
        self.secret = _secret(rate_limit, cache)
        self._make_transport = transport
        self.transport = transport()
        self._gates: dict[tuple[str, RateLimit | None], Gate | SharedGate] = {}
        #: The process these were built in (`_context.fork_generation`).
        self.generation = fork_generation()
        self.own_timeout: object = None
        self.own_bound: float | None = None

    def gate(
        self, owner: str, limit: RateLimit | None = None, *, name: str | None = None
    ) -> Gate | SharedGate:
        """The gate of one owner: its rate and its pauses, shared by its copies only.

        With a `limit` (a crawl's own pace), the gate of that owner under that
        limit: crawls of one owner with equal limits share it (and what it
        learns), and it shares the owner's pause and last success (`GateState`).
        `name` names it in Redis when its backend has a `key_secret` of its own.
        """
        key = (owner, limit)
        gate = self._gates.get(key)
        if gate is None:
            state = None if limit is None else self.gate(owner).state
            if limit is None:
                limit = self.rate_limit
            if limit is not None and limit.backend is not None:
                from ._redis import SharedGate

                gate = SharedGate(limit, limit.backend, name or owner, state)
            else:
                gate = Gate(limit, state)
            gate = self._gates.setdefault(key, gate)  # one winner if threads race
        return gate

    def renew(self) -> None:
        """In a forked child, once: a pool and gates of its own (not for your own
        `http_client`, whose connections are the parent's: its transport says so)."""
        if self.generation == fork_generation():
            return  # renewed already, by another copy's call
        self.generation = fork_generation()
        if self.transport.owns_http and not self.transport.closed:
            keep_inherited((self.transport, self._gates))
            self.transport = self._make_transport()
            self._gates = {}


def _secret(rate_limit: RateLimit | None, cache: SearchCache | None) -> bytes:
    """The fingerprint secret of the client's Redis backends (they must agree)."""
    secrets = {
        backend.key_secret
        for backend in (
            rate_limit.backend if rate_limit is not None else None,
            cache.backend if cache is not None else None,
        )
        if backend is not None
    }
    if len(secrets) > 1:
        raise InvalidParameterError(
            "cache", "its backend's key_secret differs from the rate limit backend's"
        )
    return secrets.pop() if secrets else DEFAULT_KEY_SECRET


class Pipeline:
    """The stages of a search under one config; see the module docstring."""

    __slots__ = ("config", "defaults", "gate", "generation", "observers", "owner", "shared")

    def __init__(
        self, config: ClientConfig, shared: Shared, observers: Observers | None = None
    ) -> None:
        self.config = config
        self.shared = shared
        #: Its event hooks and OpenTelemetry (`_hooks`); None when nothing observes.
        self.observers = observers
        self.defaults = CallOptions.defaults(config)
        if shared.own_timeout is None:  # the client's own pipeline, made before any copy
            shared.own_timeout = self.defaults.extensions["timeout"]
            shared.own_bound = config.bound
        #: Whose answers, flights, pace and Redis entries these are (`_fingerprint`).
        self.owner = fingerprint(str(config.base_url), config.api_key, shared.secret)
        self.gate = shared.gate(self.owner)
        self.generation = shared.generation

    def cache_key(
        self, query: str, limit: int, offset: int, filters: dict[str, object] | None
    ) -> str | None:
        """The key of a request in the client's cache, by this owner; None: the client has none."""
        if self.shared.cache is None:
            return None
        from ._cache import cache_key

        return cache_key(self.owner, query, limit, offset, filters)

    async def search(
        self,
        body: bytes,
        options: CallOptions,
        stats: CrawlStats | None = None,
        *,
        cache_key: str | None = None,
        gate: Gate | SharedGate | None = None,
        walk: WalkWatch | None = None,
    ) -> SearchResponse:
        """Run one search; return its page or raise its SDK error.

        With a `cache_key` (the call uses the client's cache), the cache stage
        answers or runs the rest; a single search (not a walk's page) may be
        answered stale while the client's task group refreshes it (`_refresh`).
        A `gate` (`gate_for`: a crawl's own pace) stands in for the owner's;
        `walk` is the watch of the walk it is a page of.
        """
        if self.generation != fork_generation():
            self._renew()
        self.shared.transport.check_context()
        options = options.started()
        if self.observers is not None:
            watch = self.observers.call(body, walk)
            if watch is not None:
                return await watch.run(self._watched(watch, body, options, stats, cache_key, gate))
        cache = self.shared.cache
        if cache is not None and cache_key is not None:
            return await self._cached(cache, cache_key, body, options, stats, gate, None)
        return await self._send(body, options, stats, gate)

    async def _watched(
        self,
        watch: CallWatch,
        body: bytes,
        options: CallOptions,
        stats: CrawlStats | None,
        cache_key: str | None,
        gate: Gate | SharedGate | None,
    ) -> SearchResponse:
        """`search`'s stages for a call someone observes (`_hooks`)."""
        cache = self.shared.cache
        if cache is not None and cache_key is not None:
            page = await self._cached(cache, cache_key, body, options, stats, gate, watch)
            await watch.cache(page.cache_status)
            return page
        return await self._send(body, options, stats, gate, watch)

    def _cached(
        self,
        cache: SearchCache,
        cache_key: str,
        body: bytes,
        options: CallOptions,
        stats: CrawlStats | None,
        gate: Gate | SharedGate | None,
        watch: CallWatch | None,
    ) -> Awaitable[SearchResponse]:
        """The cache stage, with the rest behind it; stale-while-revalidate for a search.

        Returns the cache's own awaitable (no coroutine of its own: a hit is on the
        path whose cost counts).
        """
        call = lambda: self._send(body, options, stats, gate, watch)  # noqa: E731
        if options.walk or not cache.stale_while_revalidate:
            return cache.fetch(cache_key, call, deadline=options.deadline_at)
        return cache.fetch(
            cache_key,
            call,
            deadline=options.deadline_at,
            background=self.shared.background,
            refresh_call=lambda: self._refresh(body),
        )

    async def _refresh(self, body: bytes) -> SearchResponse:
        """A background refresh (`_cache`): this request under the client's own options.

        Observed as a call of its own, not the caller's: its own span, and the
        rest of its background task (the cache's "stored" and "refreshed"
        events) reports to its watch.
        """
        watch = None if self.observers is None else self.observers.call(body, None)
        if watch is None:
            return await self._send(body, self.defaults, None)
        watch.adopt()
        return await watch.run(self._send(body, self.defaults, None, None, watch))

    def pages(
        self,
        query: str,
        filters: dict[str, object] | None,
        options: CallOptions,
        stats: CrawlStats | None,
        cache: bool,
        rate_limit: RateLimit | None,
        watch: WalkWatch | None = None,
    ) -> FetchPage:
        """A walk's page fetcher: each page down the stages, under one deadline for all.

        The walk's clock starts at its first page, and its pages are patient with
        429s (`CallOptions.walking`); `cache` lets the cache stage answer them, and a
        `rate_limit` paces them at a gate of their own (`gate_for`). `watch`
        (`walk_watch`) observes the walk's pages.
        """
        walk_options: CallOptions | None = None
        gate = None if rate_limit is None else self.gate_for(rate_limit)

        async def fetch(offset: int, limit: int, *, fresh: bool = False) -> SearchResponse:
            nonlocal walk_options
            if walk_options is None:
                walk_options = options.walking()
            body = search_body(query, limit, offset, filters)
            key = self.cache_key(query, limit, offset, filters) if cache else None
            store = self.shared.cache
            if fresh and key is not None and store is not None:
                # A second look (`_walk`): the cache stage with `refresh`, the rest uncached.
                started = walk_options
                return await store.fetch(
                    key,
                    lambda: self.search(body, started, stats, gate=gate, walk=watch),
                    deadline=started.deadline_at,
                    refresh=True,
                )
            return await self.search(
                body, walk_options, stats, cache_key=key, gate=gate, walk=watch
            )

        return fetch

    def walk_watch(self, query: str, filters: dict[str, object] | None) -> WalkWatch | None:
        """The watch of a walk of `query` (its page events and span); None: nothing observes."""
        return None if self.observers is None else self.observers.walk(query, filters)

    def gate_for(self, limit: RateLimit | None) -> Gate | SharedGate:
        """The gate of this owner under `limit` (a crawl's own pace; None: the owner's).

        A limit the client has already is the owner's gate, not a second one beside
        it (which would double the rate). A backend with a `key_secret` of its own
        names the limit in Redis with it, as the client's own backends do theirs.
        """
        own = self.shared.rate_limit
        if limit is None or (own is not None and limit == own and limit.backend is own.backend):
            return self.gate
        name = None
        if limit.backend is not None and limit.backend.key_secret != self.shared.secret:
            config = self.config
            name = fingerprint(str(config.base_url), config.api_key, limit.backend.key_secret)
        return self.shared.gate(self.owner, limit, name=name)

    def _renew(self) -> None:
        """In a forked child: the pool and this owner's gate of the child's own."""
        self.shared.renew()
        self.gate = self.shared.gate(self.owner)
        self.generation = self.shared.generation

    async def _send(
        self,
        body: bytes,
        options: CallOptions,
        stats: CrawlStats | None,
        pace: Gate | SharedGate | None = None,
        watch: CallWatch | None = None,
    ) -> SearchResponse:
        transport = self.shared.transport
        if transport.wire is None:
            await self._open_wire(transport, options)
        gate = self.gate if pace is None else pace
        breaker = self.shared.breaker
        policy = options.retry
        slept_until = 0.0
        attempts = 0
        last_success = None
        if options.walk:
            started_at = time.monotonic()

            def last_success() -> float:
                return max(started_at, gate.last_success)

        def check_wait(error: BaseException, delay: float) -> None:
            try:
                options.wait_fits(delay, f"the retry after {error}")
            except DeadlineExceededError as refused:
                raise refused from error

        def on_retry(error: BaseException, delay: float) -> Awaitable[None] | None:
            if stats is not None:
                if isinstance(error, APIStatusError) and error.status_code == 429:
                    stats.rate_limited += 1  # with or without a Retry-After
                stats.record_retry(error, delay)
            return None if watch is None else watch.retry(error, delay, attempts)

        async def attempt() -> SearchResponse:
            nonlocal attempts, slept_until
            attempts += 1
            if self.shared.transport.closed:  # closed during a retry's sleep
                raise closed_error(during_call=True)
            if breaker is not None:
                changed = breaker.before_attempt()
                if watch is not None:
                    await watch.breaker(changed)
            try:
                if not gate.ready():
                    wait = gate.wait(
                        slept_until=slept_until,
                        max_pause=policy.max_retry_after,
                        budget=options if options.deadline_at is not None else None,
                    )
                    if stats is None:
                        waited = await wait
                    else:
                        with stats.rate_wait():  # wall-clock, and live for a progress display
                            waited = await wait
                    if watch is not None and waited > 0:
                        await watch.rate_limit("wait", waited)
                bound, by_deadline = options.attempt_bound()
            except BaseException:
                if breaker is not None:
                    breaker.record_neutral()  # never sent: it says nothing of the server
                raise
            started = time.perf_counter() if breaker is not None else 0.0
            # Its turn, taken now: a 429 is judged by the rate in force when it went out (a
            # turn given before a cut is given again, so this one came after the last cut).
            sent_at = time.monotonic()
            try:
                page = await self._attempt(body, options, attempts, bound, by_deadline, watch)
            except BaseException as error:
                if isinstance(error, APIStatusError) and error.status_code == 429:
                    await gate.throttled(sent_at)  # a rate that learns its tier learns from it
                if breaker is not None:
                    changed = breaker.record_failure(
                        error,
                        caller_limited=by_deadline or self._callers_timeout(options),
                        ran=time.perf_counter() - started,
                        own_timeout=self.shared.own_bound,
                    )
                    if watch is not None:
                        await watch.breaker(changed)
                if isinstance(error, APIStatusError) and error.retry_after is not None:
                    # The server's word holds for every task of this owner, whatever this
                    # call does next (retry, give up, or fail on its deadline): paused here,
                    # first and once. This call's own retry sleep then waits it out.
                    pause = min(error.retry_after, policy.max_retry_after)
                    slept_until = await gate.pause(pause)
                    if watch is not None:
                        await watch.rate_limit("pause", pause)
                raise
            if breaker is not None:
                changed = breaker.record_success()
                if watch is not None:
                    await watch.breaker(changed)
            return page

        try:
            page = await call_with_retries(
                policy,
                attempt,
                on_retry=on_retry,
                check_wait=check_wait,
                last_success=last_success,
                paced=gate.learns,
            )
        except APIStatusError as error:
            if stats is not None and error.response is not None and error.status_code == 429:
                stats.rate_limited += 1
            raise
        gate.succeeded()
        return page

    async def _open_wire(self, transport: TransportStage, options: CallOptions) -> None:
        """The first call settles its wire before its turn at the gate, within its deadline.

        It imports the wire's library in a worker thread: a turn spent waiting for
        that would reach the server late, bunched with the turns after it, past the
        rate. A deadline that runs out meanwhile ends the call; the import goes on,
        and the next call finds it done.
        """
        import anyio

        left = options.remaining()
        if left is None:
            await transport.open(self.config.proxy)
            return
        with anyio.move_on_after(left):
            await transport.open(self.config.proxy)
            return
        raise options.deadline_error("while the client set up its connection pool (first call)")

    def _callers_timeout(self, options: CallOptions) -> bool:
        """Whether the call's timeout is one of its own, not that of the client holding the pool."""
        timeout = options.extensions.get("timeout")
        return timeout is not self.shared.own_timeout and timeout != self.shared.own_timeout

    async def _attempt(
        self,
        body: bytes,
        options: CallOptions,
        number: int,
        bound: float | None,
        by_deadline: bool,
        watch: CallWatch | None = None,
    ) -> SearchResponse:
        config = self.config
        outgoing = Outgoing(
            config.search_url, options.headers, body, options.extensions, config.proxy
        )
        if watch is not None:
            traced = await watch.request(number, config.search_url, options.headers)
            if traced is not None:
                outgoing.headers = traced

        def on_bound() -> APITimeoutError:
            error: APITimeoutError
            if by_deadline:
                error = options.deadline_error(f"during attempt {number}")
            else:
                host = config.search_url.host
                error = APITimeoutError(f"no complete answer from {host} within {bound:g} s")
            error.request = outgoing.request()
            return error

        started = time.perf_counter()
        try:
            answer = await self.shared.transport.send(
                outgoing,
                bound=bound,
                max_bytes=config.max_response_bytes,
                on_bound=on_bound,
            )
        except BaseException as error:
            if watch is not None:
                watch.failed(error)
            if isinstance(error, Exception) and logger.isEnabledFor(logging.DEBUG):
                logger.debug(
                    "POST %s failed after %.1f ms (attempt %d): %s",
                    config.search_url.path, (time.perf_counter() - started) * 1000, number, error,
                )  # fmt: skip
            raise
        if config.insecure is not None and answer.networked:
            config.insecure.warn()  # plain http that really crossed a network: said once
        status = answer.status_code
        rid = request_id(answer.headers)
        if watch is not None:
            await watch.response(
                number, config.search_url, status, answer.headers, answer.elapsed, rid
            )
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "POST %s -> %d in %.1f ms (attempt %d, request id %s)",
                config.search_url.path, status, answer.elapsed * 1000, number, rid,
            )  # fmt: skip
        if status >= 300 or status < 200:
            raise error_from_response(answer.response, shown_url=config.display_url)
        try:
            return decode_search_response(
                answer.content, rid, status_code=status, headers=answer.headers,
                elapsed=answer.elapsed, attempts=number,
            )  # fmt: skip
        except APIResponseValidationError as error:
            error.response = answer.response
            raise
