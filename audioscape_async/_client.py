"""`AsyncClient`: wiring, life cycle and the public methods; the work is in the stages.

The constructor settles a `ClientConfig` (`_config`) and the parts every copy
of the client shares (`_pipeline.Shared`: the transport stage with its pool,
the gate). A method checks its arguments, encodes a body (`_models`), merges
its per-call options (`_options`) and hands the rest to the `Pipeline`; walks
hand a page fetcher to `_crawl._pagination`, file crawls to `_crawl._file_crawl`.
"""

from __future__ import annotations

import enum
import functools
import os
from collections.abc import AsyncGenerator, AsyncIterator, Iterable, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any

import httpx

from ._config import ClientConfig, InsecureURLWarning, TimeoutTypes
from ._constants import (
    DEFAULT_LIMIT,
    DEFAULT_MAX_RESPONSE_BYTES,
    DEFAULT_OFFSET,
    DEFAULT_TIMEOUT,
    MAX_LIMIT,
)
from ._context import closed_error
from ._exceptions import AudioScapeError, InvalidParameterError
from ._logs import configure_from_env
from ._models import Filters, SearchResponse, Track, check_search, filters_json, search_body
from ._options import NOT_GIVEN, CallOptions, NotGiven, call_options
from ._pipeline import Pipeline, Shared
from ._retry import RetryPolicy
from ._transport import TransportChoice, TransportStage
from ._validation import check_int_range, check_optional, check_query

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    from ._breaker import CircuitBreaker
    from ._cache import SearchCache
    from ._crawl import Crawl, CrawlStats, ProgressHook, Queries
    from ._crawl._file_crawl import Batch, QueryWalk
    from ._crawl._pagination import FetchPage, WalkOptions
    from ._hooks import EventHooks, WalkWatch
    from ._ratelimit import RateLimit
    from ._telemetry import Telemetry
    from ._warm import WarmReport

__all__ = ["AsyncClient", "InsecureURLWarning"]


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


class AsyncClient:
    """The async client for the AudioScape search API.

    Open it once and share it: it keeps a pool of connections, and it is safe
    to use from many tasks at once (on the event loop it first ran on).

    ```python
    async with AsyncClient() as client:
        page = await client.search("dark cinematic boss tension", limit=1)
        print(page.tracks[0].asset_id)
    ```

    Args:
        api_key: The API key; default: the ``AUDIOSCAPE_API_KEY`` environment variable.
        base_url: Default: ``AUDIOSCAPE_BASE_URL``, else the public API.
        timeout: Seconds for one attempt (an `httpx.Timeout` for finer control,
            None for no limit). An attempt never takes longer in all than the
            largest part of its timeout, even through your own `http_client`.
        max_retries: Retries after the first attempt; shorthand for
            ``retry=RetryPolicy(max_retries=...)`` (default 3).
        retry: The full `RetryPolicy`.
        http_client: Your own `httpx.AsyncClient` (proxies, transports,
            limits). You keep ownership: closing this client leaves it open.
        default_headers: Extra headers for every request.
        rate_limit: A client-side `RateLimit` that every call of this client
            obeys. Whether or not it is set, a 429 or 503 with ``Retry-After``
            pauses every task of the client until that time has passed.
        transport: What carries the requests of the client's own connection
            pool: ``"httpx"`` (httpx's own), ``"aiohttp"`` (faster on asyncio;
            needs the ``aiohttp`` extra), or ``"auto"``: aiohttp when the extra
            is installed and the client's first call runs on asyncio, else
            httpx's own; chosen at the first call, for the client's life.
        max_response_bytes: The largest answer body read, decompressed (8 MiB);
            past it a call raises `APIResponseValidationError`.
        cache: A `SearchCache`: fresh pages answered from it, identical
            searches in flight shared, stale pages served when the API fails.
            `search` uses it unless ``cache=False``; walks only with ``cache=True``.
        circuit_breaker: A `CircuitBreaker`: after repeated failures, calls
            fail at once with `CircuitOpenError` (or are served stale) until a
            probe succeeds.
        trust_env: Honour the environment's proxies (``HTTP_PROXY``,
            ``HTTPS_PROXY``, ``ALL_PROXY``, ``NO_PROXY``) and certificate paths
            (``SSL_CERT_FILE``, ``SSL_CERT_DIR``) as httpx does (default); False
            goes direct. Your own `http_client` keeps its own setting.
        event_hooks: ``{event name: [hook, ...]}``: each hook (sync or async) is
            called with a typed event at every stage of every call, as httpx's
            `event_hooks` (see `RequestEvent` and its siblings); hooks observe only.
        telemetry: The OpenTelemetry switches (`Telemetry`); by default traces
            and metrics go to the providers the application configured, if any.

    Every method also takes per-call options: ``timeout=`` (one attempt),
    ``max_retries=`` / ``retry=``, ``extra_headers=`` and ``deadline=``
    (seconds for the whole call, retries and waits included; a walk's
    deadline covers the whole walk). `with_options` makes a copy with other
    defaults that shares this client's pool (and, for the same API key, its gate).
    """

    def __init__(
        self,
        api_key: str | None = None,
        *,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutTypes = DEFAULT_TIMEOUT,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        http_client: httpx.AsyncClient | None = None,
        default_headers: Mapping[str, str] | None = None,
        rate_limit: RateLimit | None = None,
        transport: TransportChoice = "auto",
        max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES,
        cache: SearchCache | None = None,
        circuit_breaker: CircuitBreaker | None = None,
        trust_env: bool = True,
        event_hooks: EventHooks | None = None,
        telemetry: Telemetry | None = None,
    ) -> None:
        configure_from_env()
        check_optional("http_client", http_client, httpx.AsyncClient, "an httpx.AsyncClient")
        config = ClientConfig.build(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            default_headers=default_headers,
            max_response_bytes=max_response_bytes,
            base_headers=http_client.headers if http_client is not None else None,
            proxy_checked=http_client is None,
            trust_env=trust_env,
        )
        shared = Shared(
            functools.partial(TransportStage, http_client, transport, config),
            _checked("rate_limit", rate_limit, "RateLimit"),
            _checked("cache", cache, "SearchCache"),
            _checked("circuit_breaker", circuit_breaker, "CircuitBreaker"),
        )
        from ._hooks import Observers

        self._pipeline = Pipeline(config, shared, Observers.build(event_hooks, telemetry))
        self._state = _State.UNOPENED
        self._is_copy = False

    def with_options(
        self,
        *,
        api_key: str | None = None,
        base_url: str | httpx.URL | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        default_headers: Mapping[str, str] | None = None,
        max_response_bytes: int | None = None,
        trust_env: bool | None = None,
        event_hooks: EventHooks | None = None,
    ) -> AsyncClient:
        """A copy of this client with other defaults, sharing its pool, cache and breaker.

        ```python
        patient = client.with_options(timeout=60, max_retries=6)
        ```

        Cheap to make and nothing to close: the copy lives as long as this
        client, and closing it does nothing. `default_headers` are added to
        this client's; ``trust_env=False`` sends the copy's calls direct,
        whatever proxy the environment sets; `event_hooks` are added to this
        client's, event by event. A copy with the same API key and
        base URL shares this client's rate gate and 429 pauses too; a copy
        with another `api_key` (or `base_url`) has its own, and its own cache
        entries and calls in flight: two keys never share a page, an error, a
        pause or a rate.
        """
        config = self._pipeline.config.evolve(
            api_key=api_key,
            base_url=base_url,
            timeout=timeout,
            timeout_given=timeout is not NOT_GIVEN,
            max_retries=max_retries,
            retry=retry,
            default_headers=default_headers,
            max_response_bytes=max_response_bytes,
            trust_env=trust_env,
        )
        from ._hooks import Observers

        observers = Observers.extended(self._pipeline.observers, event_hooks)
        copy = object.__new__(AsyncClient)
        copy._pipeline = Pipeline(config, self._pipeline.shared, observers)
        copy._state = _State.OPENED
        copy._is_copy = True
        return copy

    # -- configuration, read-only ------------------------------------------

    @property
    def base_url(self) -> httpx.URL:
        """The base URL every request goes to (without any userinfo: that is sent as a header)."""
        return self._pipeline.config.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._pipeline.config.retry

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeout of one attempt."""
        return self._pipeline.config.timeout

    @property
    def max_response_bytes(self) -> int:
        """The largest answer body read, decompressed."""
        return self._pipeline.config.max_response_bytes

    @property
    def is_closed(self) -> bool:
        """Whether the client is closed (itself, or the client it was copied from)."""
        return self._pipeline.shared.transport.closed

    def __repr__(self) -> str:
        # Never the key, nor the headers that carry it, nor a password in the URL.
        pipeline = getattr(self, "_pipeline", None)
        if pipeline is None:  # a traceback's locals, of a constructor that raised
            return "<AsyncClient (not built)>"
        config = pipeline.config
        state = "closed" if self.is_closed else self._state.value
        return (
            f"<AsyncClient base_url={config.display_url!r} "
            f"max_retries={config.retry.max_retries} state={state}>"
        )

    def __reduce__(self) -> Any:
        raise TypeError("an AsyncClient cannot be pickled: make one in each process")

    # -- life cycle ---------------------------------------------------------

    async def __aenter__(self) -> AsyncClient:
        if self.is_closed:
            raise closed_error()
        if self._state is _State.OPENED and not self._is_copy:
            raise AudioScapeError("this AsyncClient is already open; enter it only once")
        self._state = _State.OPENED
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool (unless it is your own `http_client`). Idempotent.

        The cache's background refreshes started by this client (and its
        copies) are cancelled first. On a `with_options` copy this does
        nothing: the pool is the original's.
        """
        if self._is_copy:
            return
        self._state = _State.CLOSED
        shared = self._pipeline.shared
        if shared.background is not None:
            await shared.background.aclose()  # its refreshes, cancelled before the pool goes
        await shared.transport.aclose()

    # -- the API ------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        offset: int = DEFAULT_OFFSET,
        filters: Filters = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = True,
    ) -> SearchResponse:
        """Search the catalog; return one page of results.

        ```python
        page = await client.search("chill lo-fi beats", limit=5,
                                   filters={"genres": ["electronic"]}, deadline=2.0)
        for track in page.tracks:
            print(track.asset_id, track.name, track.score)
        ```

        With the client's `SearchCache`, a fresh page comes from it
        (``page.cache_status``); ``cache=False`` neither reads nor writes it.

        Raises:
            InvalidParameterError: before sending, if an argument breaks a rule.
            APIStatusError: a subclass per status, once retries are spent.
            APIConnectionError: no answer, once retries are spent.
            APITimeoutError: an attempt ran out of time, or the call of its `deadline`.
            APIResponseValidationError: the answer is not the documented shape.
        """
        checked = check_search(query, limit, offset, filters)
        body = search_body(query, limit, offset, checked)
        options = self._options(timeout, max_retries, retry, extra_headers, deadline)
        key = self._pipeline.cache_key(query, limit, offset, checked) if cache else None
        return await self._pipeline.search(body, options, cache_key=key)

    def iter_pages(
        self,
        query: str,
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = False,
    ) -> AsyncGenerator[SearchResponse, None]:
        """Walk every page of a search up to `meta.total`.

        ```python
        async for page in client.iter_pages("upbeat summer vibes", page_size=100):
            print(page.meta.offset, len(page.tracks))
        ```

        `max_items` caps the tracks fetched in all; the last request asks only
        for what is left. With `concurrency` N > 1, once the first page has
        told `meta.total`, up to N pages are fetched at once; pages still come
        in offset order, the same as a sequential walk. Arguments are checked
        now, before anything is sent. `timeout` and `retry` apply to each
        page, `deadline` to the whole walk.
        """
        from ._crawl._pagination import walk_pages

        options = self._options(timeout, max_retries, retry, extra_headers, deadline)
        fetch, watch = self._page_fetcher(query, filters, options, cache=cache)
        walk_options = _walk_options(page_size, max_items, offset, concurrency)

        async def pages() -> AsyncGenerator[SearchResponse, None]:
            walk = walk_pages(fetch, walk_options, watch=watch)
            async with aclosing(walk):
                async for _, page in walk:
                    yield page

        return pages()

    def iter_tracks(
        self,
        query: str,
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = False,
    ) -> AsyncGenerator[Track, None]:
        """Walk every track of a search, each `asset_id` once, fetching pages as needed.

        ```python
        async for track in client.iter_tracks("chill lo-fi beats", max_items=250):
            print(track.name)
        ```

        `concurrency`, `cache` and the per-call options work as in
        `iter_pages`; the order of the tracks does not depend on `concurrency`.
        """
        from ._crawl._pagination import walk_tracks

        options = self._options(timeout, max_retries, retry, extra_headers, deadline)
        fetch, watch = self._page_fetcher(query, filters, options, cache=cache)
        walk_options = _walk_options(page_size, max_items, offset, concurrency)
        batches = walk_tracks(fetch, walk_options, watch=watch)

        async def tracks() -> AsyncGenerator[Track, None]:
            async with aclosing(batches):
                async for batch, _ in batches:
                    for track in batch:
                        yield track

        return tracks()

    def crawl(
        self,
        query: str,
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
        on_progress: ProgressHook | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        cache: bool = False,
        rate_limit: RateLimit | NotGiven | None = NOT_GIVEN,
    ) -> Crawl:
        """Walk every track like `iter_tracks`, keeping statistics as it goes.

        ```python
        async with client.crawl("chill lo-fi beats", concurrency=8) as crawl:
            async for track in crawl:
                ...
        print(crawl.stats.to_dict())
        ```

        In an ``async with`` block the crawl streams: `concurrency` requests in
        flight, each page delivered as soon as the pages before it were. A
        plain ``async for`` over it works too, fetching in steps.

        `on_progress(stats)` is called after every page (keep it quick: the
        crawl waits for it). `cache` works as in `iter_pages`. `rate_limit`
        paces the crawl: on a client without a `rate_limit` it is
        `RateLimit.auto()`, which finds the API key's tier from its 429s;
        on one with a `rate_limit`, that one; None: the client's own gate,
        unlimited or not. A 429 slows a crawl down and does not spend
        `max_retries` (`RetryPolicy`).
        """
        from ._crawl import Crawl, CrawlStats

        options = self._options(timeout, max_retries, retry, extra_headers, deadline)
        stats = CrawlStats()
        fetch, watch = self._page_fetcher(
            query, filters, options, stats, cache=cache, rate_limit=self._crawl_limit(rate_limit)
        )
        walk_options = _walk_options(page_size, max_items, offset, concurrency)
        return Crawl(fetch, walk_options, stats, on_progress, watch=watch)

    async def crawl_to_file(
        self,
        query: Queries,
        out: str | os.PathLike[str],
        *,
        filters: Filters = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        concurrency: int = 1,
        resume: bool = False,
        overwrite: bool = False,
        format: str | None = None,
        on_progress: ProgressHook | None = None,
        timeout: TimeoutTypes | NotGiven = NOT_GIVEN,
        max_retries: int | None = None,
        retry: RetryPolicy | None = None,
        extra_headers: Mapping[str, str] | None = None,
        deadline: float | None = None,
        rate_limit: RateLimit | NotGiven | None = NOT_GIVEN,
        durable: bool = False,
    ) -> CrawlStats:
        """Write every track of one search or several to `out`, once each; resumable after a crash.

        ```python
        stats = await client.crawl_to_file(["chill lo-fi beats", "sad piano"], "moods.jsonl",
                                           concurrency=8, resume=True)
        ```

        `query` is one query or a list of them (a str, a `CrawlQuery` with
        filters of its own, or a mapping ``{"query": ..., "filters": ...}``);
        `filters` apply to every query without its own, `max_items` to each
        query. A track found by several queries is written once, with the
        query that found it first (`query`, `query_index`, `query_rank`,
        `query_offset`) and `matched_queries`. `format` is ``"jsonl"``,
        ``"jsonl.gz"``, ``"csv"`` or ``"parquet"`` (default: from the
        extension of `out`); ``out="-"`` writes JSON Lines to standard output.

        While it runs ``OUT.lock`` is held, the lines go to ``OUT.part``, with a
        line appended to the checkpoint ``OUT.checkpoint`` after every page (with
        `durable`, both are on disk before the next page: they survive a power
        cut, not only a killed process); `out` itself
        appears, whole, only when the crawl is complete: when every query's
        result set really ended (``stats.complete``; otherwise the checkpoint
        stays, for a resume). With `resume`, an interrupted crawl of the same
        base URL, queries, filters and page size goes on where each query
        stopped. Without it, an existing `out` or checkpoint is an error unless
        `overwrite`. File problems raise `CrawlFileError`, before any request
        where they can be seen then. `deadline` covers the whole crawl.
        """
        from ._crawl._file_crawl import run_crawl_to_file
        from ._crawl._pagination import stream_tracks

        options = self._options(timeout, max_retries, retry, extra_headers, deadline).started()
        limit = self._crawl_limit(rate_limit)

        def open_walk(walk: QueryWalk) -> AbstractAsyncContextManager[AsyncIterator[Batch]]:
            # The streaming window: an interrupted crawl has written every page
            # that was contiguous with what it wrote before.
            fetch, watch = self._page_fetcher(
                walk.query, walk.filters, options, walk.stats, rate_limit=limit
            )
            return stream_tracks(
                fetch,
                _walk_options(page_size, max_items, walk.offset, concurrency),
                stats=walk.stats,
                seen=walk.seen,
                delivered=walk.delivered,
                watch=watch,
            )

        return await run_crawl_to_file(
            open_walk,
            query,
            out,
            base_url=self._pipeline.config.base_url,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            concurrency=concurrency,
            resume=resume,
            overwrite=overwrite,
            format=format,
            on_progress=on_progress,
            durable=durable,
        )

    async def warm(
        self,
        queries: Iterable[str | Mapping[str, Any]],
        *,
        concurrency: int = 4,
        deadline: float | None = None,
    ) -> WarmReport:
        """Load the client's cache with these searches before anyone asks; say what happened.

        ```python
        report = await client.warm(["calm forest exploration", {"query": "boss", "limit": 5}])
        print(report.upstream, report.shared, report.failed)
        ```

        Each item is a query string or a mapping with ``query`` and any of
        ``limit``, ``offset`` and ``filters`` (all checked before anything is
        sent); at most `concurrency` run at once, through the cache like any
        `search`. With a `RedisBackend`, each page is fetched once for the whole
        fleet. The `WarmReport` lists what was loaded, from where ("upstream":
        this process called the API; "shared": the cache or another process
        had it) and what failed, with its error: a failure never stops the
        others, and is not raised. `deadline` covers the whole warm-up.

        Raises:
            InvalidParameterError: an item breaks a rule, or the client has no cache.
        """
        from ._warm import warm, warm_items

        check_int_range("concurrency", concurrency, 1)
        items = warm_items(queries)
        options = self._options(NOT_GIVEN, None, None, None, deadline).started()
        if self._pipeline.shared.cache is None:
            raise InvalidParameterError(
                "cache", "warm() loads the client's SearchCache, and this client has none"
            )
        return await warm(self._pipeline, items, concurrency, options)

    # -- internals ------------------------------------------------------------

    def _options(
        self,
        timeout: object,
        max_retries: object,
        retry: object,
        extra_headers: Mapping[str, str] | None,
        deadline: object,
    ) -> CallOptions:
        if self.is_closed:
            raise closed_error()
        pipeline = self._pipeline
        return call_options(
            pipeline.config,
            pipeline.defaults,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            extra_headers=extra_headers,
            deadline=deadline,
        )

    def _crawl_limit(self, rate_limit: object) -> RateLimit | None:
        """A crawl's own pace (see `crawl`), checked; None: the client's gate."""
        from ._ratelimit import RateLimit

        if rate_limit is NOT_GIVEN:
            return RateLimit.auto() if self._pipeline.shared.rate_limit is None else None
        return check_optional("rate_limit", rate_limit, RateLimit)

    def _page_fetcher(
        self,
        query: str,
        filters: Filters,
        options: CallOptions,
        stats: CrawlStats | None = None,
        *,
        cache: bool = False,
        rate_limit: RateLimit | None = None,
    ) -> tuple[FetchPage, WalkWatch | None]:
        """Check a walk's query and filters now; return its page fetcher (`Pipeline.pages`)
        and the watch of its pages (None: nothing observes them)."""
        query, checked = check_query(query), filters_json(filters)
        watch = self._pipeline.walk_watch(query, checked)
        fetch = self._pipeline.pages(query, checked, options, stats, cache, rate_limit, watch)
        return fetch, watch


def _walk_options(
    page_size: int, max_items: int | None, offset: int, concurrency: int
) -> WalkOptions:
    """A walk's paging, checked now (before anything is sent)."""
    from ._crawl._pagination import WalkOptions

    return WalkOptions(
        start=offset, page_size=page_size, max_items=max_items, concurrency=concurrency
    )


def _checked(parameter: str, value: object, kind: str) -> Any:
    """`value` if it is None or an instance of the SDK class named `kind`."""
    if value is None:
        return None
    from . import _breaker, _cache, _ratelimit

    cls = {
        "RateLimit": _ratelimit.RateLimit,
        "SearchCache": _cache.SearchCache,
        "CircuitBreaker": _breaker.CircuitBreaker,
    }[kind]
    return check_optional(parameter, value, cls)
