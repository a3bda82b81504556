"""`Client`: the async core, driven from blocking code.

The facade has no logic of its own. It owns one anyio blocking portal (one
event-loop thread) for its whole life, runs its `AsyncClient` inside that
loop, and forwards every call. Iterators run the async walk in one task and
hand pages over a stream that holds nothing: the walk is at most one page ahead
of the loop that reads it, and it stops when that loop stops.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import sys
import threading
import weakref
from collections.abc import AsyncGenerator, Callable, Coroutine, Iterable, Iterator, Mapping
from concurrent.futures import Future
from contextlib import aclosing
from types import TracebackType
from typing import Any, TypeVar

import anyio
import httpx
from anyio.from_thread import BlockingPortal

from ._client import AsyncClient, TimeoutTypes
from ._constants import DEFAULT_LIMIT, DEFAULT_OFFSET, DEFAULT_TIMEOUT, MAX_LIMIT
from ._crawl import CrawlStats, ProgressHook, Queries
from ._exceptions import AudioScapeError
from ._models import SearchFilters, SearchResponse, Track
from ._ratelimit import RateLimit
from ._retry import RetryPolicy
from ._transport import TransportChoice

__all__ = ["Client"]

T = TypeVar("T")
U = TypeVar("U")


class Client:
    """The blocking client: the same constructor and methods as `AsyncClient`, no async.

    ```python
    with Client() as client:
        page = client.search("chill lo-fi beats", limit=5)
        for track in client.iter_tracks("chill lo-fi beats", max_items=50):
            print(track.name)
    ```

    It runs an event loop in a thread of its own, so it also works where a
    loop already runs (a notebook). `http_client`, if given, must be an
    `httpx.AsyncClient`: that is what the core runs on; unlike with
    `AsyncClient`, it is closed with this client, since its connections live in
    this client's event loop. Close the client (or leave its ``with`` block) to
    stop the thread.
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
        self._lock = threading.Lock()
        self._loop: _LoopThread | None = None
        # Built here, not in the loop thread: building does no I/O and binds to no
        # loop, a bad argument then starts no thread, and a warning (plain http)
        # names the caller's line rather than the loop thread's.
        self._async = AsyncClient(
            api_key,
            base_url=base_url,
            timeout=timeout,
            max_retries=max_retries,
            retry=retry,
            http_client=http_client,
            default_headers=default_headers,
            rate_limit=rate_limit,
            transport=transport,
        )
        self._loop = _LoopThread()
        _open_clients.add(self)

    def __repr__(self) -> str:
        return repr(self._async).replace("<AsyncClient", "<Client", 1)

    @property
    def base_url(self) -> httpx.URL:
        """The base URL every request goes to."""
        return self._async.base_url

    @property
    def retry_policy(self) -> RetryPolicy:
        """The retry policy in force."""
        return self._async.retry_policy

    @property
    def is_closed(self) -> bool:
        """Whether `close()` has been called."""
        return self._loop is None

    def __enter__(self) -> Client:
        self._require_portal().call(self._async.__aenter__)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool and stop the event-loop thread. Idempotent."""
        with self._lock:
            loop, self._loop = self._loop, None
        if loop is None:
            return
        _open_clients.discard(self)
        try:
            loop.portal.call(self._async.aclose)
            if not self._async._owns_http:
                # Your http_client's connections live in this event loop, which
                # stops now: nothing could close them later, so they close here.
                loop.portal.call(self._async._http.aclose)
        finally:
            loop.stop()

    def __del__(self) -> None:
        # A client dropped without close() must not leave its thread behind.
        # While the interpreter shuts down the loop thread may already be gone
        # (a daemon), and waiting on it would hang the exit: atexit closed it.
        loop = getattr(self, "_loop", None)
        if loop is not None and not loop.is_current() and not sys.is_finalizing():
            self.close()

    def _require_portal(self) -> BlockingPortal:
        loop = self._loop
        if loop is None:
            raise AudioScapeError("this Client is closed; create a new one")
        return loop.portal

    def search(
        self,
        query: str,
        *,
        limit: int = DEFAULT_LIMIT,
        offset: int = DEFAULT_OFFSET,
        filters: SearchFilters | Mapping[str, Any] | None = None,
    ) -> SearchResponse:
        """Search the catalog; return one page. See `AsyncClient.search`."""
        loop = self._loop
        if loop is None:
            raise AudioScapeError("this Client is closed; create a new one")
        return loop.run(self._async.search(query, limit=limit, offset=offset, filters=filters))

    def iter_pages(
        self,
        query: str,
        *,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
    ) -> Iterator[SearchResponse]:
        """Walk every page of a search. See `AsyncClient.iter_pages`."""
        pages = self._async.iter_pages(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
        )
        return self._drain(pages, lambda page: (page,))

    def iter_tracks(
        self,
        query: str,
        *,
        filters: SearchFilters | Mapping[str, Any] | None = None,
        page_size: int = MAX_LIMIT,
        max_items: int | None = None,
        offset: int = DEFAULT_OFFSET,
        concurrency: int = 1,
    ) -> Iterator[Track]:
        """Walk every track of a search, each once. See `AsyncClient.iter_tracks`."""
        batches = self._async._track_batches(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
        )
        return self._drain(batches, _tracks_of)

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
    ) -> SyncCrawl:
        """Walk every track with live statistics. See `AsyncClient.crawl`.

        `on_progress` runs in the client's event-loop thread.
        """
        crawl = self._async.crawl(
            query,
            filters=filters,
            page_size=page_size,
            max_items=max_items,
            offset=offset,
            concurrency=concurrency,
            on_progress=on_progress,
        )
        return SyncCrawl(self._drain(crawl.batches(), lambda batch: batch), crawl.stats)

    def crawl_to_file(
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
        """Write every track of one query or more to `out`. See `AsyncClient.crawl_to_file`."""
        return self._require_portal().call(
            lambda: self._async.crawl_to_file(
                query,
                out,
                filters=filters,
                page_size=page_size,
                max_items=max_items,
                concurrency=concurrency,
                resume=resume,
                overwrite=overwrite,
                format=format,
                on_progress=on_progress,
            )
        )

    def _drain(
        self, source: AsyncGenerator[T, None], explode: Callable[[T], Iterable[U]]
    ) -> Iterator[U]:
        """Run `source` in the loop thread; yield what `explode` makes of each item."""
        portal = self._require_portal()

        def items() -> Iterator[U]:
            send, receive = anyio.create_memory_object_stream[T](0)

            async def pump() -> None:
                async with send, aclosing(source):
                    async for item in source:
                        await send.send(item)

            try:
                future = portal.start_task_soon(pump)
            except RuntimeError:
                send.close()
                receive.close()
                self._require_portal()  # closed before the first item: say so
                raise
            try:
                while True:
                    try:
                        item = portal.call(receive.receive)
                    except anyio.EndOfStream:
                        break
                    except RuntimeError:
                        self._require_portal()  # closed in the middle: say so
                        raise
                    yield from explode(item)
                # The stream ended: either the walk is done or it failed; say which.
                future.result()
            finally:
                # Cancelling the pump closes its end of the stream, which also
                # releases a receive left waiting by a KeyboardInterrupt.
                if not future.done():
                    future.cancel()
                if self._loop is not None:
                    portal.call(receive.aclose)
                else:
                    # The client was closed first and its loop has stopped, so
                    # nothing else can touch the streams: close them here.
                    send.close()
                    receive.close()

        return items()


#: Clients not closed yet; the ones a script forgot are closed at exit, while
#: their loop threads still run (atexit runs before daemon threads are stopped).
_open_clients: weakref.WeakSet[Client] = weakref.WeakSet()


@atexit.register
def _close_forgotten_clients() -> None:
    for client in list(_open_clients):
        client.close()


class _LoopThread:
    """One event loop in a daemon thread, reachable through a blocking portal.

    A daemon thread, unlike anyio's `start_blocking_portal`, never keeps a
    script from exiting when its client was not closed.
    """

    def __init__(self) -> None:
        ready: Future[BlockingPortal] = Future()

        async def serve() -> None:
            self._loop = asyncio.get_running_loop()
            async with BlockingPortal() as portal:
                ready.set_result(portal)
                await portal.sleep_until_stopped()

        def run() -> None:
            try:
                anyio.run(serve, backend="asyncio")
            except BaseException as error:
                if not ready.done():
                    ready.set_exception(error)

        self._thread = threading.Thread(target=run, name="audioscape-client-loop", daemon=True)
        self._thread.start()
        self.portal = ready.result()

    def run(self, call: Coroutine[Any, Any, T]) -> T:
        """Run one coroutine in the loop and wait for its result; cancel it if the wait fails.

        The short way for a single call: a portal call costs about 3x as much
        (its task group and cancel scope), which `Client.search` pays per call.
        """
        future = asyncio.run_coroutine_threadsafe(call, self._loop)
        try:
            return future.result()
        except BaseException:
            future.cancel()  # a KeyboardInterrupt here must not leave the call running
            raise

    def is_current(self) -> bool:
        """Whether the caller runs in this loop's own thread."""
        return threading.current_thread() is self._thread

    def stop(self) -> None:
        """Cancel what still runs in the loop, stop it, and wait for the thread to end."""
        self.portal.call(self.portal.stop, True)
        self._thread.join()


class SyncCrawl:
    """A blocking iterator over every track of a crawl, with live `stats`."""

    def __init__(self, tracks: Iterator[Track], stats: CrawlStats) -> None:
        self._tracks = tracks
        self.stats = stats

    def __iter__(self) -> Iterator[Track]:
        return self._tracks

    def close(self) -> None:
        """Stop the crawl early; nothing keeps running."""
        close = getattr(self._tracks, "close", None)
        if close is not None:
            close()


def _tracks_of(batch: tuple[list[Track], int]) -> list[Track]:
    return batch[0]
