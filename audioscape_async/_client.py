"""`AsyncClient`: the one place that talks to the API.

Everything that does not depend on the request (the URL, the merged headers,
the timeout, the retry policy) is settled once in the constructor; a call only
checks its arguments, encodes a body and sends it.
"""

from __future__ import annotations

import contextlib
import enum
import ipaddress
import math
import os
import sys
import warnings
from collections import deque
from collections.abc import AsyncGenerator, AsyncIterator, Iterator, Mapping
from contextlib import aclosing
from types import TracebackType
from typing import TYPE_CHECKING, Any

import attrs
import httpx
import orjson

from ._constants import (
    API_KEY_ENV,
    API_KEY_HEADER,
    BASE_URL_ENV,
    DEFAULT_BASE_URL,
    DEFAULT_LIMIT,
    DEFAULT_OFFSET,
    DEFAULT_TIMEOUT,
    JSON_CONTENT_TYPE,
    MAX_CONCURRENCY,
    MAX_LIMIT,
    REQUEST_ID_HEADERS,
    RETRY_AFTER_HEADER,
    SEARCH_PATH,
)
from ._decode import decode_search_response
from ._exceptions import (
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AudioScapeError,
    InvalidParameterError,
    RateLimitError,
    status_error_class,
)
from ._gate import Gate
from ._models import SearchFilters, SearchResponse, Track, coerce_filters
from ._retry import RetryPolicy, call_with_retries, parse_retry_after
from ._transport import _LIMITS as POOL_LIMITS
from ._transport import TransportChoice, default_transport
from ._validation import (
    check_headers,
    check_int_range,
    check_limit,
    check_max_items,
    check_offset,
    check_query,
)
from ._version import __version__

if TYPE_CHECKING:
    from contextlib import AbstractAsyncContextManager

    import anyio

    from ._crawl import Batch, Crawl, CrawlStats, ProgressHook, Queries, QueryWalk
    from ._pagination import FetchPage
    from ._ratelimit import RateLimit

__all__ = ["AsyncClient", "InsecureURLWarning"]

#: What a `timeout` argument may be.
TimeoutTypes = float | httpx.Timeout | None

_USER_AGENT = (
    f"audioscape-async/{__version__} httpx/{httpx.__version__} "
    f"{sys.implementation.name}/{'.'.join(map(str, sys.version_info[:3]))}"
)


class InsecureURLWarning(UserWarning):
    """The base URL is plain http to a host off this machine: the key would travel in clear."""


class _State(enum.Enum):
    UNOPENED = "unopened"
    OPENED = "opened"
    CLOSED = "closed"


def _resolve_base_url(base_url: str | httpx.URL | None) -> httpx.URL:
    raw = base_url if base_url is not None else os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, TypeError) as error:
        raise InvalidParameterError("base_url", f"is not a URL: {raw!r} ({error})") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidParameterError(
            "base_url", f"must be an absolute http(s) URL, got {str(raw)!r}"
        )
    if url.query or url.fragment:
        raise InvalidParameterError("base_url", "must not have a query string or a fragment")
    if url.scheme == "http" and not _is_loopback(url.host):
        warnings.warn(
            f"base_url {str(url)!r} is plain http to a host off this machine: "
            "the API key would cross the network unencrypted; use https",
            InsecureURLWarning,
            stacklevel=_caller_stacklevel(),
        )
    return url


def _caller_stacklevel() -> int:
    """The `warnings.warn` stacklevel, counted from the caller, of the first frame outside the SDK.

    So a warning names the user's line, however deep in the SDK it was raised
    (``AsyncClient(...)`` directly, or through the sync ``Client``).
    """
    package = os.path.dirname(__file__) + os.sep
    frame = sys._getframe(1)
    level = 1
    while frame.f_back is not None and frame.f_code.co_filename.startswith(package):
        frame = frame.f_back
        level += 1
    return level


def _is_loopback(host: str) -> bool:
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _resolve_timeout(timeout: object) -> httpx.Timeout:
    if isinstance(timeout, httpx.Timeout):
        return timeout
    if timeout is None:
        return httpx.Timeout(None)
    if (
        isinstance(timeout, (int, float))
        and not isinstance(timeout, bool)
        and math.isfinite(timeout)  # no limit is None; inf overflows aiohttp's timers
        and timeout > 0
    ):
        return httpx.Timeout(float(timeout))
    raise InvalidParameterError(
        "timeout",
        f"must be a finite number of seconds > 0, an httpx.Timeout or None, got {timeout!r}",
    )


def _resolve_retry(max_retries: int | None, retry: RetryPolicy | None) -> RetryPolicy:
    if retry is not None and not isinstance(retry, RetryPolicy):
        raise InvalidParameterError("retry", f"must be a RetryPolicy, got {type(retry).__name__}")
    policy = retry if retry is not None else RetryPolicy()
    # 3.0 or True equal 3 and 1, yet are not a count: only an equal int keeps the policy.
    if max_retries is not None and not (
        type(max_retries) is int and max_retries == policy.max_retries
    ):
        policy = attrs.evolve(policy, max_retries=max_retries)
    return policy


def _request_id(response: httpx.Response) -> str | None:
    headers = response.headers
    for name in REQUEST_ID_HEADERS:
        value: str | None = headers.get(name)
        if value:
            return value
    return None


def _error_message(response: httpx.Response, body: object) -> str:
    """A readable message from any error body: the API's JSON, or a proxy's HTML page."""
    if isinstance(body, dict):
        for key in ("error", "message"):
            value = body.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
    phrase = response.reason_phrase or "error"
    text = response.content[:2048].decode("utf-8", "replace").strip()
    if not text or body is not None:
        return phrase
    lowered = text.lower()
    start = lowered.find("<title>")
    if start != -1:
        end = lowered.find("</title>", start)
        title = text[start + len("<title>") : end if end != -1 else None].strip()
        if title:
            return f"{phrase}: {title[:200]}"
    if lowered.startswith("<"):
        return phrase
    first_line = text.splitlines()[0]
    return f"{phrase}: {first_line[:200]}"


def _status_error(response: httpx.Response) -> APIStatusError:
    status = response.status_code
    try:
        body: object = orjson.loads(response.content) if response.content else None
    except orjson.JSONDecodeError:
        body = None
    message = _error_message(response, body)
    kwargs: dict[str, Any] = {
        "status_code": status,
        "body": body if body is not None else response.text[:2048],
        "response": response,
        "request_id": _request_id(response),
    }
    if status == 429:
        retry_after = parse_retry_after(response.headers.get(RETRY_AFTER_HEADER))
        return RateLimitError(message, retry_after=retry_after, **kwargs)
    if 300 <= status < 400:
        location = response.headers.get("location", "nowhere")
        message = (
            f"the API redirected to {location}; redirects are not followed, since that would "
            "send the API key to another address: check base_url"
        )
    return status_error_class(status)(message, **kwargs)


class AsyncClient:
    """The async client for the AudioScape search API.

    Open it once and share it: it keeps a pool of connections, and it is safe
    to use from many tasks at once.

    ```python
    async with AsyncClient() as client:
        page = await client.search("dark cinematic boss tension", limit=1)
        print(page.tracks[0].asset_id)
    ```

    Args:
        api_key: The API key; default: the ``AUDIOSCAPE_API_KEY`` environment variable.
        base_url: Default: ``AUDIOSCAPE_BASE_URL``, else the public API.
        timeout: Seconds for one attempt (an `httpx.Timeout` for finer control,
            None for no limit). It applies to every request, even through your
            own `http_client`.
        max_retries: Retries after the first attempt; shorthand for
            ``retry=RetryPolicy(max_retries=...)`` (default 3).
        retry: The full `RetryPolicy`.
        http_client: Your own `httpx.AsyncClient` (proxies, transports,
            limits). You keep ownership: closing this client leaves it open.
        default_headers: Extra headers for every request.
        rate_limit: A client-side `RateLimit` that every call of this client
            obeys. Whether or not it is set, a 429 with ``Retry-After`` pauses
            every task of the client until that time has passed.
        transport: What carries the requests of the client's own connection
            pool: ``"httpx"`` (httpx's own), ``"aiohttp"`` (faster on asyncio;
            needs the ``aiohttp`` extra), or ``"auto"``: aiohttp when the extra
            is installed and the call runs on asyncio, else httpx's own.
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
    ) -> None:
        key = api_key if api_key is not None else os.environ.get(API_KEY_ENV)
        if not key:
            raise AudioScapeError(
                f"no API key: pass api_key=... or set the {API_KEY_ENV} environment variable"
            )
        if not isinstance(key, str) or not key.isprintable() or key != key.strip():
            # Say what is wrong without echoing the secret back.
            raise InvalidParameterError(
                "api_key", "must be a string of printable characters without surrounding spaces"
            )
        if http_client is not None and not isinstance(http_client, httpx.AsyncClient):
            raise InvalidParameterError(
                "http_client", f"must be an httpx.AsyncClient, got {type(http_client).__name__}"
            )
        self._base_url = _resolve_base_url(base_url)
        self._search_url = self._base_url.copy_with(
            path=self._base_url.path.rstrip("/") + SEARCH_PATH
        )
        self._timeout = _resolve_timeout(timeout)
        # A number bounds the whole attempt too: httpx's own timeouts are per
        # read, so a server that trickles bytes could otherwise hold a call forever.
        self._deadline = (
            float(timeout)
            if isinstance(self._timeout, httpx.Timeout) and isinstance(timeout, (int, float))
            else None
        )
        self._retry = _resolve_retry(max_retries, retry)
        self._owns_http = http_client is None
        chosen = default_transport(transport, own_http_client=not self._owns_http)
        self._http = (
            http_client
            if http_client is not None
            else httpx.AsyncClient(
                follow_redirects=False, timeout=self._timeout, transport=chosen, limits=POOL_LIMITS
            )
        )
        # Calls beyond the pool's size wait here, not in httpcore's pool, which
        # rescans every queued request at every turn: 1,000 calls queued there took
        # 25 s (and timed out) where this queue takes 3. Your own http_client keeps
        # its own limits, unknown here.
        self._slots: _Slots | None = None
        if self._owns_http and POOL_LIMITS.max_connections is not None:
            self._slots = _Slots(POOL_LIMITS.max_connections)
        headers = httpx.Headers(self._http.headers)
        for name, value in check_headers("default_headers", default_headers).items():
            if name.lower() == API_KEY_HEADER:
                raise InvalidParameterError(
                    "default_headers", f"must not set {API_KEY_HEADER}; pass api_key instead"
                )
            headers[name] = value
        headers["user-agent"] = _USER_AGENT
        headers["content-type"] = JSON_CONTENT_TYPE
        headers["accept"] = JSON_CONTENT_TYPE
        headers[API_KEY_HEADER] = key
        self._headers = headers
        self._extensions = {"timeout": self._timeout.as_dict()}
        if rate_limit is not None:
            from ._ratelimit import RateLimit

            if not isinstance(rate_limit, RateLimit):
                raise InvalidParameterError(
                    "rate_limit", f"must be a RateLimit, got {type(rate_limit).__name__}"
                )
        self._gate = Gate(rate_limit)
        self._state = _State.UNOPENED

    # -- configuration, read-only ------------------------------------------

    @property
    def base_url(self) -> httpx.URL:
        """The base URL every request goes to."""
        return self._base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._retry

    @property
    def timeout(self) -> httpx.Timeout:
        """The timeout of one attempt."""
        return self._timeout

    @property
    def is_closed(self) -> bool:
        """Whether `aclose()` has been called."""
        return self._state is _State.CLOSED

    def __repr__(self) -> str:
        # Never the key, nor the headers that carry it.
        return (
            f"<AsyncClient base_url={str(self._base_url)!r} "
            f"max_retries={self._retry.max_retries} state={self._state.value}>"
        )

    # -- life cycle ---------------------------------------------------------

    async def __aenter__(self) -> AsyncClient:
        if self._state is _State.CLOSED:
            raise AudioScapeError("this AsyncClient is closed; create a new one")
        if self._state is _State.OPENED:
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
        """Close the connection pool (unless it is your own `http_client`). Idempotent."""
        if self._state is _State.CLOSED:
            return
        self._state = _State.CLOSED
        if self._owns_http:
            import anyio  # imported where used: `import audioscape_async` stays light

            with anyio.CancelScope(shield=True):
                await self._http.aclose()

    # -- the API ------------------------------------------------------------

    async def search(
        self,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        offset: int = DEFAULT_OFFSET,
        filters: SearchFilters | Mapping[str, Any] | None = None,
    ) -> SearchResponse:
        """Search the catalog; return one page of results.

        ```python
        page = await client.search("chill lo-fi beats", limit=5,
                                   filters={"genres": ["electronic"]})
        for track in page.tracks:
            print(track.asset_id, track.name, track.score)
        ```

        Raises:
            InvalidParameterError: before sending, if an argument breaks a rule.
            APIStatusError: a subclass per status, once retries are spent.
            APIConnectionError: no answer, once retries are spent.
            APIResponseValidationError: the answer is not the documented shape.
        """
        body = _encode(query, limit=limit, offset=offset, filters=filters)
        return await self._search(body)

    def iter_pages(
        self,
        query: str,
        *,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
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
        now, before anything is sent.
        """
        fetch = self._prepare_walk(query, filters, page_size, max_items, offset, concurrency)
        received = 0

        def budget() -> int | None:
            return None if max_items is None else max_items - received

        async def pages() -> AsyncGenerator[SearchResponse, None]:
            from ._pagination import walk_pages

            nonlocal received
            walk = walk_pages(
                fetch, start=offset, page_size=page_size, budget=budget, concurrency=concurrency
            )
            async with aclosing(walk):
                async for _, page in walk:
                    received += len(page.tracks)
                    yield page

        return pages()

    def iter_tracks(
        self,
        query: str,
        *,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
    ) -> AsyncGenerator[Track, None]:
        """Walk every track of a search, each `asset_id` once, fetching pages as needed.

        ```python
        async for track in client.iter_tracks("chill lo-fi beats", max_items=250):
            print(track.name)
        ```

        `concurrency` works as in `iter_pages`; the order of the tracks does
        not depend on it.
        """
        batches = self._track_batches(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
        )

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
        filters: SearchFilters | Mapping[str, Any] | None = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
        on_progress: ProgressHook | None = None,
    ) -> Crawl:
        """Walk every track like `iter_tracks`, keeping statistics as it goes.

        ```python
        crawl = client.crawl("chill lo-fi beats", concurrency=8)
        async for track in crawl:
            ...
        print(crawl.stats.to_dict())
        ```

        `on_progress(stats)` is called after every page (keep it quick: the
        crawl waits for it).
        """
        from ._crawl import Crawl, CrawlStats

        stats = CrawlStats()
        batches = self._track_batches(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
            stats=stats,
        )
        return Crawl(batches, stats, on_progress)

    async def crawl_to_file(
        self,
        query: Queries,
        out: str | os.PathLike[str],
        *,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        concurrency: int = 1,
        resume: bool = False,
        overwrite: bool = False,
        format: str | None = None,
        on_progress: ProgressHook | None = None,
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
        checkpoint in ``OUT.checkpoint`` after every page; `out` itself
        appears, whole, only when the crawl is complete. With `resume`, an
        interrupted crawl of the same base URL, queries, filters and page size
        goes on where each query stopped. Without it, an existing `out` or
        checkpoint is an error unless `overwrite`. File problems raise
        `CrawlFileError`, before any request where they can be seen then.
        """
        from ._crawl import run_crawl_to_file

        def open_walk(walk: QueryWalk) -> AbstractAsyncContextManager[AsyncIterator[Batch]]:
            return aclosing(
                self._track_batches(
                    walk.query,
                    filters=walk.filters,
                    page_size=page_size,
                    max_items=max_items,
                    offset=walk.offset,
                    concurrency=concurrency,
                    stats=walk.stats,
                    seen=walk.seen,
                    delivered=walk.delivered,
                )
            )

        return await run_crawl_to_file(
            open_walk,
            query,
            out,
            base_url=self._base_url,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            concurrency=concurrency,
            resume=resume,
            overwrite=overwrite,
            format=format,
            on_progress=on_progress,
        )

    # -- internals shared with the sync facade -------------------------------

    def _track_batches(
        self,
        query: str,
        *,
        filters: SearchFilters | Mapping[str, Any] | None,
        page_size: int,
        max_items: int | None,
        offset: int,
        concurrency: int,
        stats: CrawlStats | None = None,
        seen: set[str] | None = None,
        delivered: int = 0,
    ) -> AsyncGenerator[tuple[list[Track], int], None]:
        from ._pagination import walk_tracks

        fetch = self._prepare_walk(query, filters, page_size, max_items, offset, concurrency, stats)
        return walk_tracks(
            fetch,
            start=offset,
            page_size=page_size,
            max_items=max_items,
            concurrency=concurrency,
            stats=stats,
            seen=seen,
            delivered=delivered,
        )

    def _prepare_walk(
        self,
        query: str,
        filters: SearchFilters | Mapping[str, Any] | None,
        page_size: int,
        max_items: int | None,
        offset: int,
        concurrency: int,
        stats: CrawlStats | None = None,
    ) -> FetchPage:
        """Check a walk's arguments now and return its page fetcher."""
        check_query(query)
        check_limit("page_size", page_size)
        check_offset(offset)
        check_max_items(max_items)
        check_int_range("concurrency", concurrency, 1, MAX_CONCURRENCY)
        filters_json = _filters_json(filters)

        async def fetch(offset: int, limit: int) -> SearchResponse:
            return await self._search(_payload(query, limit, offset, filters_json), stats)

        return fetch

    async def _search(self, body: bytes, stats: CrawlStats | None = None) -> SearchResponse:
        if self._state is _State.CLOSED:
            raise AudioScapeError("this AsyncClient is closed; create a new one")
        gate = self._gate
        slept_until = 0.0

        def on_retry(error: BaseException, delay: float) -> None:
            nonlocal slept_until
            if isinstance(error, RateLimitError):
                # One 429 holds every task of this client, not just this one;
                # this task's own retry sleep already waits it out.
                slept_until = gate.pause(delay)
                if stats is not None:
                    stats.rate_limited += 1
            if stats is not None:
                stats.record_retry(error, delay)

        async def attempt() -> SearchResponse:
            waited = await gate.wait(slept_until=slept_until, max_pause=self._retry.max_retry_after)
            if stats is not None:
                stats.rate_wait_seconds += waited
            return await self._attempt(body)

        try:
            page = await call_with_retries(self._retry, attempt, on_retry=on_retry)
        except RateLimitError as error:
            if error.response is not None:
                # A 429 not retried (spent, or Retry-After past the policy's
                # limit): the server's word still holds for the client's other tasks.
                if error.retry_after is not None:
                    gate.pause(error.retry_after)
                if stats is not None:
                    stats.rate_limited += 1
            raise
        gate.succeeded()
        return page

    async def _send(self, request: httpx.Request) -> httpx.Response:
        """Send one request through the pool; after a failure, reclaim what it left behind."""
        try:
            if self._slots is None:
                return await self._http.send(request, follow_redirects=False)
            async with self._slots:
                return await self._http.send(request, follow_redirects=False)
        except BaseException:
            if self._owns_http:
                await _close_orphans(self._http, request.stream)
            raise

    async def _attempt(self, body: bytes) -> SearchResponse:
        outer = sys.exc_info()[1]  # what the caller was handling, if anything
        request = httpx.Request(
            "POST",
            self._search_url,
            headers=self._headers,
            content=body,
            extensions=self._extensions,
        )
        request.stream = _Body(body)  # content and Content-Length are set already
        import anyio  # see aclose(); after the first call, a dictionary lookup

        try:
            with anyio.fail_after(self._deadline):
                response = await self._send(request)
        except TimeoutError as error:
            _forget_locals(error, outer)
            raise APITimeoutError(
                f"no complete answer from {self._search_url.host} within {self._deadline} s",
                request=request,
            ) from error
        except httpx.TimeoutException as error:
            _forget_locals(error, outer)
            raise APITimeoutError(
                f"no answer from {self._search_url.host} in time ({type(error).__name__})",
                request=request,
            ) from error
        except (httpx.HTTPError, OSError) as error:
            _forget_locals(error, outer)
            raise APIConnectionError(
                f"could not reach {self._search_url.host}: {_describe(error)}", request=request
            ) from error
        if response.status_code >= 300 or response.status_code < 200:
            raise _status_error(response)
        try:
            return decode_search_response(response.content, _request_id(response))
        except APIResponseValidationError as error:
            error.response = response
            raise


async def _close_orphans(http: httpx.AsyncClient, body: object) -> None:
    """Release what a cancelled request (the one sending `body`) left in httpcore's pool.

    asyncio's own cancellation (``Task.cancel()``, ``asyncio.wait_for``) is not
    stopped by httpcore's shields, and can land where httpcore does not clean up:
    just after a connection opened (it stays neither idle nor closed nor used:
    encode/httpcore#1093), or while a finished answer is being closed (its request
    stays queued, its connection busy). Either keeps a socket and a pool slot for
    good, and enough of them starve the pool. Private attributes, read
    defensively: another transport finds nothing here.
    """
    transport = getattr(http, "_transport", None)
    transport = getattr(transport, "_chosen", transport)  # the SDK's deferred choice
    pool: Any = getattr(transport, "_pool", None)
    try:
        for left in [waiting for waiting in pool._requests if waiting.request.stream is body]:
            pool._requests.remove(left)
        used = {id(waiting.connection) for waiting in pool._requests}
        orphans = [
            connection
            for connection in pool._connections
            if id(connection) not in used and not (connection.is_idle() or connection.is_closed())
        ]
        for connection in orphans:
            pool._connections.remove(connection)
    except (AttributeError, TypeError, ValueError):
        return
    if orphans:
        import anyio

        with anyio.CancelScope(shield=True):
            for connection in orphans:
                with contextlib.suppress(Exception):
                    await connection.aclose()


class _Slots:
    """At most `size` requests in the pool at once; the others wait here, in turn.

    Unlike an anyio Semaphore, taking a free slot does not yield to the event
    loop (that cost a seventh of a cached search); a freed slot goes straight to
    the longest waiter.
    """

    __slots__ = ("_free", "_waiters")

    def __init__(self, size: int) -> None:
        self._free = size
        self._waiters: deque[anyio.Event] = deque()

    async def __aenter__(self) -> None:
        if self._free > 0:
            self._free -= 1
            return
        import anyio

        granted = anyio.Event()
        self._waiters.append(granted)
        try:
            await granted.wait()
        except BaseException:
            if granted.is_set():
                self._release()  # handed a slot while being cancelled: pass it on
            else:
                self._waiters.remove(granted)
            raise

    async def __aexit__(self, *exc_info: object) -> None:
        self._release()

    def _release(self) -> None:
        if self._waiters:
            self._waiters.popleft().set()
        else:
            self._free += 1


class _Body(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A request body sent as one chunk, iterated by a plain object.

    httpx's own body stream iterates with an async generator; a request
    cancelled while it is sent leaves that generator unfinished, and trio
    warns (ResourceWarning) when it is collected (encode/httpx#3686).
    """

    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body = body

    def __iter__(self) -> Iterator[bytes]:
        return iter((self._body,))

    def __aiter__(self) -> AsyncIterator[bytes]:
        return _OneChunk(self._body)


class _OneChunk:
    __slots__ = ("_body",)

    def __init__(self, body: bytes) -> None:
        self._body: bytes | None = body

    def __aiter__(self) -> _OneChunk:
        return self

    async def __anext__(self) -> bytes:
        body, self._body = self._body, None
        if body is None:
            raise StopAsyncIteration
        return body


def _describe(error: BaseException) -> str:
    """``Type: message`` of an error; an empty message is taken from the first cause with one.

    httpx on trio says nothing of its own about a refused certificate
    (``ConnectError: ``): the reason is three causes down its chain.
    """
    cause: BaseException | None = error
    for _ in range(10):
        if cause is None:
            break
        text = str(cause)
        if text:
            source = "" if cause is error else f" ({type(cause).__name__})"
            return f"{type(error).__name__}: {text}{source}"
        cause = cause.__cause__ or cause.__context__
    return type(error).__name__


def _forget_locals(error: BaseException, outer: BaseException | None) -> None:
    """Clear the local variables of the finished frames under an attempt that failed.

    The HTTP stack's frames hold the request's headers, API key included (aiohttp's
    ``headers``, a socket write's ``data``), and a traceback shown with its locals
    (``capture_locals=True``, rich, Sentry) would print them. The frames stay in
    the traceback, file and line; only their values go. `outer`, the exception
    the caller was handling, and what it chains are the caller's: left alone.
    """
    import traceback

    pending: list[BaseException] = [error]
    seen: set[int] = set()
    while pending:
        exc = pending.pop()
        if exc is outer or id(exc) in seen:
            continue
        seen.add(id(exc))
        traceback.clear_frames(exc.__traceback__)  # frames still running are skipped
        pending.extend(e for e in (exc.__cause__, exc.__context__) if e is not None)
        pending.extend(getattr(exc, "exceptions", ()))


def _filters_json(filters: SearchFilters | Mapping[str, Any] | None) -> dict[str, object] | None:
    checked = coerce_filters(filters)
    return checked.to_json() if checked is not None else None


def _payload(query: str, limit: int, offset: int, filters_json: dict[str, object] | None) -> bytes:
    payload: dict[str, object] = {"query": query, "limit": limit, "offset": offset}
    if filters_json:
        payload["filters"] = filters_json
    return orjson.dumps(payload)


def _encode(
    query: str,
    *,
    limit: int,
    offset: int,
    filters: SearchFilters | Mapping[str, Any] | None,
) -> bytes:
    """Check the arguments of one search and return its JSON body."""
    check_query(query)
    check_limit("limit", limit)
    check_offset(offset)
    return _payload(query, limit, offset, _filters_json(filters))
